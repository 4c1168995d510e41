"""The mirror of the shop's orders: what was bought, how it was paid, when it arrived."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import ProductAttributes
from aftersales.core.models import StoreScopedModel


class CheckoutConfirmation(models.TextChoices):
    """How the buyer agreed at checkout that a line may not be returned without reason.

    Only an explicit, per-purchase confirmation counts (暂行办法 Art 20); a box the shop ticked in
    advance is recorded so the policy engine can refuse to rely on it.
    """

    NONE = "none", _("Not confirmed")
    PRE_TICKED = "pre_ticked", _("Pre-ticked box")
    EXPLICIT = "explicit", _("Explicitly confirmed")


class Order(StoreScopedModel):
    # No index of its own: the unique (store, external_id) and the (store, buyer) indexes start with it.
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="orders", db_index=False)
    external_id = models.CharField(_("shop's order number"), max_length=64)
    buyer = models.ForeignKey("stores.Buyer", on_delete=models.PROTECT, related_name="orders")
    placed_at = models.DateTimeField(_("placed at"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    shipping_fee = models.DecimalField(_("shipping fee"), max_digits=12, decimal_places=2, default=0)
    free_shipping_threshold = models.DecimalField(
        _("free-shipping threshold"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    total_paid = models.DecimalField(_("total paid"), max_digits=12, decimal_places=2, default=0)
    channel = models.CharField(_("sales channel"), max_length=20, default="online")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "external_id"], name="order_unique_external_id")]
        indexes = [models.Index(fields=["store", "buyer"], name="order_store_buyer")]

    def __str__(self) -> str:
        return self.external_id


# The `store` of a line, payment or shipment is a copy of its order's, kept so that every query can
# name the store; the order's own foreign key already ties the row to that store. The database checks
# each foreign key on every row it inserts (a query per row at commit, the largest cost of a large
# import), so this copy is a plain column there (db_constraint=False); Django still cascades a deleted
# store to these rows. Nor has it an index: every read of these rows names their order or their own id
# as well (both indexed), and keeping a store index up to date was a tenth of the database's work in a
# large import; only deleting a whole store scans these tables.
#
# The `order` of a line, payment or shipment is checked by the database too, but not by a foreign-key
# constraint: those check row by row (on PostgreSQL a query and a row lock per line at commit, about
# half of the database's work in a large import). Triggers of migration 0003 check each statement's
# rows at once instead: an inserted row must name an existing order (which it locks, as a foreign
# key would, so the order cannot be deleted meanwhile), and deleting an order deletes its rows, as
# on_delete=CASCADE says (Django deletes them first anyway). tests/test_order_references.py holds
# the database to it on SQLite and PostgreSQL. On SQLite, a migration that rebuilds one of these
# tables drops its triggers: such a migration must create them again (that test would fail).


class OrderLine(StoreScopedModel, ProductAttributes):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                              db_index=False)
    # No index of its own: the unique (order, line_no) index starts with it.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False,
                              db_constraint=False)
    line_no = models.PositiveSmallIntegerField()
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    discount_allocated = models.DecimalField(_("discount allocated"), max_digits=12, decimal_places=2, default=0)
    is_gift = models.BooleanField(_("gift"), default=False)
    gift_declared_value = models.DecimalField(
        _("declared gift value"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    nonreturnable_confirmation = models.CharField(
        _("non-returnable confirmed at checkout"), max_length=12, choices=CheckoutConfirmation.choices,
        default=CheckoutConfirmation.NONE,
    )
    near_expiry_disclosed = models.BooleanField(_("near expiry disclosed"), default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="orderline_unique_line_no"),
            models.CheckConstraint(condition=models.Q(unit_price__gte=0), name="orderline_price_not_negative"),
            models.CheckConstraint(condition=models.Q(discount_allocated__gte=0), name="orderline_discount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.line_no} {self.sku}"

    @property
    def paid_amount(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount_allocated


class PaymentMethod(models.TextChoices):
    ALIPAY = "alipay", _("Alipay")
    WECHAT = "wechat", _("WeChat Pay")
    CARD = "card", _("Bank card")
    BALANCE = "balance", _("Account balance")
    COUPON = "coupon", _("Coupon")
    POINTS = "points", _("Points")
    STORE_CREDIT = "store_credit", _("Store credit")
    STRIPE = "stripe", _("Stripe")


class Payment(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                              db_index=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments", db_constraint=False)
    method = models.CharField(_("method"), max_length=20, choices=PaymentMethod.choices)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    fee = models.DecimalField(_("fee"), max_digits=12, decimal_places=2, default=0)
    fee_paid_by_buyer = models.BooleanField(_("fee paid by buyer"), default=False)
    reference = models.CharField(_("provider reference"), max_length=100, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount__gte=0), name="payment_amount_not_negative")]


class Shipment(StoreScopedModel):
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                              db_index=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments", db_constraint=False)
    carrier = models.CharField(_("carrier"), max_length=40, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    signed_at = models.DateTimeField(_("signed for at"), null=True, blank=True)
