"""The refund ledger: what was asked to be paid back, to which payment method, and what the gateway did.

One `Refund` is one step of paying a case back (a case may be refunded in several steps). Its
`RefundItem`s are the ledger rows: one per case line and per original payment method, each with its
own status and gateway reference. Each time an item is sent to a gateway a `RefundAttempt` is written
first, with an idempotency key of its own, so a retry after a timeout can ask the gateway what became
of that exact attempt before sending anything again.

`LineRefundTotal` is the running total of everything committed to be refunded on one order line,
across all cases; its CHECK constraint is the last line of defence against paying a line twice.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.core.models import StoreScopedModel

ZERO = Decimal("0")


class RefundStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", _("Waiting for finance approval")
    REQUESTED = "requested", _("Requested")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    # Every row of the step failed and finance cancelled them: nothing of it will be paid.
    CANCELLED = "cancelled", _("Cancelled")


class ItemStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    # A failed row finance gave up on: its amount is released from the line's and the payment's totals.
    CANCELLED = "cancelled", _("Cancelled")


class RefundPurpose(models.TextChoices):
    GOODS = "goods", _("Goods returned or refunded")
    EXCHANGE_DIFFERENCE = "exchange_difference", _("Cheaper replacement: the difference")
    RETURN_SHIPPING = "return_shipping", _("Return shipping the shop pays")
    OUTBOUND_SHIPPING = "outbound_shipping", _("Original shipping fee")


class AttemptStatus(models.TextChoices):
    # Written before the gateway is called: if the process dies or the call times out, the attempt
    # stays here and the next retry asks the gateway by its key what happened.
    SENDING = "sending", _("Sending")
    ACCEPTED = "accepted", _("Accepted by the gateway")
    UNKNOWN = "unknown", _("Unknown (timeout)")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")

    @classmethod
    def final(cls) -> tuple[str, str]:
        return (cls.SUCCEEDED, cls.FAILED)


class RefundSettings(StoreScopedModel):
    """Per-store refund configuration."""

    store = models.OneToOneField("stores.Store", on_delete=models.CASCADE, related_name="refund_settings")
    # A refund step above this amount waits for a finance user's approval; null means never.
    approval_threshold = models.DecimalField(_("finance approval above"), max_digits=12, decimal_places=2,
                                             null=True, blank=True, default=Decimal("5000.00"))
    gateway = models.CharField(_("payment gateway"), max_length=20, default="sandbox")
    # The most the shop pays back for one case's return shipping when the decision says the shop pays it
    # (the buyer's courier receipt is rarely more than a domestic parcel).
    return_shipping_ceiling = models.DecimalField(_("return shipping refunded at most"), max_digits=12,
                                                  decimal_places=2, default=Decimal("30.00"))


class Refund(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="refunds")
    number = models.PositiveSmallIntegerField(_("step"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=20, choices=RefundStatus.choices)
    to_store_credit = models.BooleanField(_("as store credit"), default=False)
    # True when this step completes the case: the case moves to refunded once every final step's items
    # succeeded; a step with final=False leaves room for more steps.
    final = models.BooleanField(default=True)
    # When the buyer must have the money back by (from the policy decision); null when no rule sets one.
    due_at = models.DateTimeField(_("due by"), null=True, blank=True)
    due_rule = models.CharField(max_length=80, blank=True)
    split_basis = models.CharField(max_length=20)  # "decision" or "pro_rata"
    purpose = models.CharField(_("refund for"), max_length=20, choices=RefundPurpose.choices, default=RefundPurpose.GOODS)
    # For a cheaper replacement: the exchange whose difference this pays back (once, see the constraint).
    exchange = models.ForeignKey("logistics.Exchange", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    requested_by = models.CharField(max_length=150)
    requested_at = models.DateTimeField()
    approved_by = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="refund_unique_step"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive"),
            # An exchange's difference is paid back by one live step; a cancelled one may be asked again.
            models.UniqueConstraint(fields=["exchange"], condition=models.Q(exchange__isnull=False)
                                    & ~models.Q(status="cancelled"), name="refund_one_per_exchange"),
        ]
        indexes = [models.Index(fields=["store", "status"], name="refund_store_status")]


class RefundItem(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="+")
    # None for shipping, which belongs to no line.
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="+", null=True,
                                   blank=True)
    payment = models.ForeignKey("orders.Payment", on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    method = models.CharField(_("method"), max_length=20)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    status = models.CharField(_("status"), max_length=12, choices=ItemStatus.choices, default=ItemStatus.REQUESTED)
    gateway = models.CharField(max_length=20)
    gateway_reference = models.CharField(_("gateway reference"), max_length=100, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="refunditem_amount_positive")]
        indexes = [models.Index(fields=["store", "status"], name="refunditem_store_status")]


class GatewayAttempt(StoreScopedModel):
    """One sending of money to or from a payment gateway (a refund, a charge, a charge paid back), under
    its own key. A retry after a known failure is a new attempt with a new key; after a timeout the
    same key is asked about again, so the gateway never moves one key's money twice."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    number = models.PositiveSmallIntegerField()
    # Sent as the gateway's out_refund_no / out_trade_no / Idempotency-Key.
    idempotency_key = models.CharField(max_length=64)
    gateway = models.CharField(max_length=20)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=12, choices=AttemptStatus.choices, default=AttemptStatus.SENDING)
    gateway_reference = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class RefundAttempt(GatewayAttempt):
    item = models.ForeignKey(RefundItem, on_delete=models.CASCADE, related_name="attempts")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="refundattempt_unique_key"),
            models.UniqueConstraint(fields=["item", "number"], name="refundattempt_unique_number"),
        ]
        indexes = [models.Index(fields=["store", "status"], name="refundattempt_store_status")]


class LineRefundTotal(StoreScopedModel):
    """Everything committed to be refunded on one order line (requested, processing or paid), over all
    cases and steps. Updated only under its row lock; the CHECK makes an over-refund fail in the
    database itself, on SQLite as on PostgreSQL, whatever code path tried it."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    order_line = models.OneToOneField("orders.OrderLine", on_delete=models.PROTECT, related_name="+")
    paid = models.DecimalField(max_digits=12, decimal_places=2)
    committed = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(committed__lte=models.F("paid")),
                                   name="linerefundtotal_not_above_paid"),
            models.CheckConstraint(condition=models.Q(committed__gte=0), name="linerefundtotal_not_negative"),
        ]


class PaymentRefundTotal(StoreScopedModel):
    """Everything committed to be refunded to one original payment, over all lines, cases and purposes
    (goods, differences, shipping). Same discipline as the line's total: raised under the row lock, and
    a CHECK refuses more than the payment paid."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    payment = models.OneToOneField("orders.Payment", on_delete=models.PROTECT, related_name="+")
    paid = models.DecimalField(max_digits=12, decimal_places=2)
    committed = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(committed__lte=models.F("paid")),
                                   name="paymentrefundtotal_not_above_paid"),
            models.CheckConstraint(condition=models.Q(committed__gte=0), name="paymentrefundtotal_not_negative"),
        ]


class ShippingLeg(models.TextChoices):
    RETURN = "return", _("Return shipping")
    OUTBOUND = "outbound", _("Original shipping")


class ShippingRefundTotal(StoreScopedModel):
    """Shipping refunded on one leg: the return leg per case (up to the store's ceiling), the original
    (outbound) shipping per order (up to the fee the order paid, however many cases refund it)."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    leg = models.CharField(max_length=10, choices=ShippingLeg.choices)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey("cases.Case", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    ceiling = models.DecimalField(max_digits=12, decimal_places=2)
    committed = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(committed__lte=models.F("ceiling")),
                                   name="shippingrefundtotal_not_above_ceiling"),
            models.CheckConstraint(condition=models.Q(committed__gte=0), name="shippingrefundtotal_not_negative"),
            models.UniqueConstraint(fields=["order"], condition=models.Q(leg="outbound"),
                                    name="shippingrefundtotal_one_outbound_per_order"),
            models.UniqueConstraint(fields=["case"], condition=models.Q(leg="return"),
                                    name="shippingrefundtotal_one_return_per_case"),
        ]


class ChargeStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Paid")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class Charge(StoreScopedModel):
    """The buyer pays the difference for a dearer replacement, through the store's gateway. The
    replacement ships only once this has succeeded."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="charges")
    exchange = models.ForeignKey("logistics.Exchange", on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey("orders.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=20)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(max_length=12, choices=ChargeStatus.choices, default=ChargeStatus.REQUESTED)
    gateway = models.CharField(max_length=20)
    gateway_reference = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    requested_at = models.DateTimeField()
    succeeded_at = models.DateTimeField(null=True, blank=True)
    # When the exchange was given up (the case cancelled, expired, closed or switched to a refund) while
    # this charge was in flight or paid: from then on, money it took goes back to the buyer at once.
    abandoned_at = models.DateTimeField(null=True, blank=True)
    # How much of it is committed to be paid back (requested, processing or paid), raised under the
    # charge's row lock; the CHECK refuses more than the charge took, whatever code path tried it.
    refunded = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="charge_amount_positive"),
            # One live charge per exchange: the difference is never taken twice.
            models.UniqueConstraint(fields=["exchange"], condition=~models.Q(status="cancelled"),
                                    name="charge_one_per_exchange"),
            models.CheckConstraint(condition=models.Q(refunded__lte=models.F("amount")),
                                   name="charge_not_refunded_above_amount"),
            models.CheckConstraint(condition=models.Q(refunded__gte=0), name="charge_refunded_not_negative"),
        ]
        indexes = [models.Index(fields=["store", "status"], name="charge_store_status")]


class ChargeAttempt(GatewayAttempt):
    charge = models.ForeignKey(Charge, on_delete=models.CASCADE, related_name="attempts")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="chargeattempt_unique_key"),
            models.UniqueConstraint(fields=["charge", "number"], name="chargeattempt_unique_number"),
        ]


class ChargeRefund(StoreScopedModel):
    """A charged difference paid back to the buyer because its exchange was given up: a refund of that
    charge, through the gateway that took it, with the charge's trade number. One per charge (the
    OneToOne), for the whole amount (the charge's `refunded` CHECK); a failed one is retried with a new
    attempt, never with a second payback."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="+")
    charge = models.OneToOneField(Charge, on_delete=models.PROTECT, related_name="payback")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(max_length=12, choices=ItemStatus.choices, default=ItemStatus.REQUESTED)
    gateway = models.CharField(max_length=20)
    gateway_reference = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    # The case's status that gave the exchange up (cancelled, expired, closed, refunding...).
    reason = models.CharField(max_length=40, blank=True)
    requested_at = models.DateTimeField()
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="chargerefund_amount_positive")]
        indexes = [models.Index(fields=["store", "status"], name="chargerefund_store_status")]


class ChargeRefundAttempt(GatewayAttempt):
    payback = models.ForeignKey(ChargeRefund, on_delete=models.CASCADE, related_name="attempts")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="chargerefundattempt_unique_key"),
            models.UniqueConstraint(fields=["payback", "number"], name="chargerefundattempt_unique_number"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="chargerefundattempt_open")]


class StoreCreditConsent(StoreScopedModel):
    """The buyer's own, explicit agreement to take store credit instead of money on one case. Only the
    buyer can give it: money back to the original payment method is the default the law requires."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    case = models.OneToOneField("cases.Case", on_delete=models.CASCADE, related_name="+")
    buyer = models.ForeignKey("stores.Buyer", on_delete=models.CASCADE, related_name="+")
    given_at = models.DateTimeField()
    wording = models.TextField()


class StoreCreditEntry(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    buyer = models.ForeignKey("stores.Buyer", on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(RefundItem, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField()


class SandboxGatewayRefund(models.Model):
    """The sandbox gateway's own books (what a real provider keeps on its side), used by the sandbox to
    answer status queries and bills, and by the reconciliation to compare against the ledger."""

    store_id = models.IntegerField()
    # "refund" or "charge" (a buyer paying a replacement's difference): one book, as on a real bill.
    kind = models.CharField(max_length=8, default="refund")
    idempotency_key = models.CharField(max_length=64, unique=True)
    payment_reference = models.CharField(max_length=100, blank=True)
    reference = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12)  # pending, succeeded, failed
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    # Callbacks the sandbox still owes the merchant, and when the next one goes out: real providers
    # confirm late and sometimes more than once.
    callbacks_pending = models.PositiveSmallIntegerField(default=0)
    callback_at = models.DateTimeField(null=True, blank=True)


class ReconciliationReport(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    gateway = models.CharField(max_length=20)
    created_at = models.DateTimeField()
    matched = models.PositiveIntegerField(default=0)
    mismatches = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "day", "gateway"], name="reconciliation_unique_day")]
