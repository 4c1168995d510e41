"""Every write to the refund ledger.

How a refund is never paid twice:

1. The case row is locked (SELECT ... FOR UPDATE) by every service that writes refunds of a case, so two
   requests for one case run one after the other and the second sees what the first committed.
2. Each line's running total (`LineRefundTotal`) is raised under its own row lock, and a CHECK
   constraint refuses any total above what was paid for the line. This is a plain CHECK on a row, so it
   holds the same on SQLite and PostgreSQL (a constraint trigger summing the ledger would exist only on
   PostgreSQL, and SQLite would then rely on code alone); it also covers two different cases on one
   line, which the case lock does not serialise.
3. Every call to a gateway is an attempt with its own idempotency key, written and committed before
   the call. An attempt whose outcome is unknown (timeout, crash) is never replaced by a new key: the
   retry asks the gateway about the same key first and only resends that same key, which a gateway
   pays at most once. A new key is used only after the gateway said the previous one failed.
4. Gateway confirmations (callbacks and status answers) are applied under the case and attempt locks,
   and an attempt already final is left alone, so a callback delivered five times changes nothing the
   second to fifth time.
5. A dearer replacement's difference the buyer paid is paid back when its exchange is given up: one
   payback per charge (a OneToOne), the charge's `refunded` total raised under its row lock with a
   CHECK against what it took, and keyed attempts like any refund. A charge still in flight is marked
   abandoned and paid back by whichever confirmation lands first, under the same locks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.cases.states import Action, Status
from aftersales.core import clock
from aftersales.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from aftersales.orders.models import OrderLine, Payment
from aftersales.stores import permissions as perm
from aftersales.stores.models import Role, Store
from aftersales.stores.permissions import Actor, system_actor

from .gateways import GatewayError, GatewayTimeout, PaymentGateway, RefundOrder, SubmitResult, get_gateway
from .gateways.base import CallbackEvent, ChargeOrder, InvalidSignature
from .gateways.sandbox import local_day_bounds
from .models import (
    AttemptStatus,
    Charge,
    ChargeAttempt,
    ChargeRefund,
    ChargeRefundAttempt,
    ChargeStatus,
    GatewayAttempt,
    ItemStatus,
    LineRefundTotal,
    PaymentRefundTotal,
    ReconciliationReport,
    Refund,
    RefundAttempt,
    RefundItem,
    RefundPurpose,
    RefundSettings,
    RefundStatus,
    ShippingLeg,
    ShippingRefundTotal,
    StoreCreditConsent,
    StoreCreditEntry,
)

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=GatewayAttempt)

CENT = Decimal("0.01")
ZERO = Decimal("0")
# Paid through the store's payment gateway; everything else goes back as itself inside the shop
# (coupons, points, balance and store credit: S3 Art 15) and is booked at once.
GATEWAY_METHODS = frozenset({"alipay", "wechat", "card", "stripe"})
INTERNAL = "internal"
CONFIRMED_RULE = "refunds.gateway_confirmed"
APPROVERS = frozenset({Role.FINANCE, Role.ADMIN})


# --- money maths ------------------------------------------------------------------------------------

def allocate(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Splits `amount` over `weights` in proportion, to the cent, summing exactly to `amount`.

    Largest remainder: each share is first rounded down, then the cents left go to the shares that lost
    most. When `amount` is at most the sum of the weights, no share exceeds its weight, so weights can be
    used as ceilings (what is left to refund on each line).
    """
    total = sum(weights, ZERO)
    if total <= 0:
        raise ValueError("nothing to split over")
    exact = [amount * w / total for w in weights]
    shares = [e.quantize(CENT, rounding=ROUND_DOWN) for e in exact]
    left = int(((amount - sum(shares, ZERO)) / CENT).to_integral_value())
    order = sorted(range(len(weights)), key=lambda i: (exact[i] - shares[i], weights[i]), reverse=True)
    for i in order[:left]:
        shares[i] += CENT
    return shares


def _parse_amount(raw: Any, field: str = "amount") -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        amount = Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{field} is not a number", field=field, code="invalid_amount") from exc
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise ValidationFailed(f"{field} must be a positive amount with at most two decimals", field=field,
                               code="invalid_amount")
    return amount


# --- configuration ----------------------------------------------------------------------------------

def settings_for(store_id: int) -> RefundSettings:
    found, _ = RefundSettings.objects.get_or_create(store_id=store_id)
    return found


def set_approval_threshold(*, actor: Actor, threshold: Decimal | None) -> RefundSettings:
    actor.require(perm.STORE_ADMIN)
    if threshold is not None and threshold < 0:
        raise ValidationFailed("the threshold cannot be negative", field="threshold", code="invalid_amount")
    found = settings_for(actor.store_id)
    found.approval_threshold = threshold
    found.save(update_fields=["approval_threshold"])
    return found


# --- what a case may still get back -----------------------------------------------------------------

def _line_ceilings(case: Case) -> dict[int, Decimal]:
    """What was paid for each order line of the case, in the claimed quantity, summing exactly to the
    case's claimed value (the ceiling the case itself applies when it is marked refunded)."""
    lines = list(case.lines.filter(store_id=case.store_id).select_related("order_line").order_by("id"))
    exact = [(cl.order_line.paid_amount * cl.quantity / cl.order_line.quantity) for cl in lines]
    total = case_services.claimed_value(case)
    if total <= 0:
        return {}
    return {cl.order_line_id: share for cl, share in zip(lines, allocate(total, exact), strict=True)}


def _committed_on_case(case: Case) -> dict[int, Decimal]:
    rows = (RefundItem.objects.filter(store_id=case.store_id, case=case, order_line__isnull=False)
            .exclude(status=ItemStatus.CANCELLED).values("order_line_id")
            .annotate(total=Sum("amount")).values_list("order_line_id", "total"))
    return {line_id: total for line_id, total in rows}


def remaining_for_case(case: Case) -> Decimal:
    ceilings = _line_ceilings(case)
    committed = _committed_on_case(case)
    return sum((ceilings[k] - committed.get(k, ZERO) for k in ceilings), ZERO)


def _method_weights(case: Case) -> tuple[list[tuple[str, Decimal]], str]:
    decision = case.decision or {}
    split = (decision.get("refund") or {}).get("split") or []
    if "error" not in decision and case.offer_amount is None and split:
        weights = [(str(p["method"]), Decimal(str(p["amount"]))) for p in split]
        weights = [(m, w) for m, w in weights if w > 0]
        if weights:
            return weights, "decision"
    # No usable split: the engine could not decide, or the amount was negotiated (the engine split a
    # different amount, and a counter-offer says nothing about methods). Giving each payment method its
    # share of what it paid for the order is neutral between buyer and shop and needs no other rule.
    by_method: dict[str, Decimal] = {}
    assert case.order_id is not None
    for method, amount in (Payment.objects.filter(store_id=case.store_id, order_id=case.order_id)
                           .order_by("id").values_list("method", "amount")):
        by_method[method] = by_method.get(method, ZERO) + amount
    weights = [(m, w) for m, w in by_method.items() if w > 0]
    if not weights:
        raise Conflict("no_payment_to_refund", "the order has no payment to refund to")
    return weights, "pro_rata"


def _due(case: Case) -> tuple[dt.datetime | None, str]:
    """The refund is due N days after the goods came back (or, with nothing to return, after the shop
    agreed to refund), N from the decision's deadlines."""
    deadlines = (case.decision or {}).get("deadlines") or {}
    days = deadlines.get("refund_due_days_after_receipt")
    if days is None:
        return None, ""
    received = (TimelineEntry.objects.filter(store_id=case.store_id, case=case, to_status=Status.RECEIVED)
                .order_by("-at").values_list("at", flat=True).first())
    entered = (TimelineEntry.objects.filter(store_id=case.store_id, case=case, to_status=Status.REFUNDING)
               .order_by("at").values_list("at", flat=True).first())
    base = received or entered or case.status_changed_at
    rule = (deadlines.get("refund_due_rule") or {}).get("rule_id", "")
    return base + dt.timedelta(days=int(days)), rule


def _timeline(case: Case, actor: Actor, event: str, data: Mapping[str, Any]) -> None:
    # The case's history shows the money's progress next to the status changes.
    TimelineEntry.of(case, actor, event, clock.now(), data=data).save()


# --- asking for a refund ----------------------------------------------------------------------------

def request_refund(*, actor: Actor, case_id: int, amount: Decimal | None = None, to_store_credit: bool = False,
                   final: bool = True) -> Refund:
    """A person (or the shop's system through a token) asks for a case to be paid back.

    Writes the ledger rows and reserves the amount on each line; the money moves after the commit,
    through the gateway, and only its confirmation moves the case to refunded.
    """
    actor.require(perm.CASE_REFUND)
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        return _request(actor, case, amount=amount, to_store_credit=to_store_credit, final=final)


def request_refund_from_case_action(actor: Actor, case: Case, payload: Mapping[str, Any]) -> None:
    """The `refund` action of a case, taken by a person: the case is already locked by transition_case."""
    _request(actor, case, amount=_parse_amount(payload.get("amount")), to_store_credit=False, final=True)


def _request(actor: Actor, case: Case, *, amount: Decimal | None, to_store_credit: bool, final: bool) -> Refund:
    if case.status != Status.REFUNDING:
        raise Conflict("case_not_refunding", "a refund can be requested only while the case is refunding",
                       details={"status": case.status})
    if Refund.objects.filter(store_id=case.store_id, case=case, final=True, purpose=RefundPurpose.GOODS).exclude(
            status=RefundStatus.CANCELLED).exists():
        raise Conflict("refund_already_requested", "the last refund step of this case has already been requested",
                       details={"case_id": case.pk})
    order = case.order
    if order is None:
        raise Conflict("no_payment_to_refund", "the case has no order")
    ceilings = _line_ceilings(case)
    committed = _committed_on_case(case)
    remaining = {k: ceilings[k] - committed.get(k, ZERO) for k in ceilings}
    left = sum(remaining.values(), ZERO)
    if left <= 0:
        raise Conflict("nothing_to_refund", "everything paid for this case has already been refunded or requested")
    if amount is None:
        decision_amount = (case.decision or {}).get("refund", {}).get("amount") if "error" not in (case.decision or {}) else None
        decided = Decimal(str(decision_amount)) if decision_amount else ZERO
        wanted = case.offer_amount or case.requested_amount or (decided if decided > 0 else None)
        amount = min(wanted - sum(committed.values(), ZERO), left) if wanted is not None else left
        if amount <= 0:
            raise Conflict("nothing_to_refund", "what was agreed for this case has already been refunded or requested")
    if amount > left:
        raise ValidationFailed("the amount exceeds what is left to refund on this case", field="amount",
                               code="amount_exceeds_paid", details={"maximum": str(left)})
    if to_store_credit and not StoreCreditConsent.objects.filter(store_id=case.store_id, case=case).exists():
        raise Conflict("store_credit_needs_consent",
                       "store credit instead of money needs the buyer's own consent on this case")

    weights, basis = ([("store_credit", Decimal(1))], "store_credit") if to_store_credit else _method_weights(case)
    line_ids = list(remaining)
    per_line: dict[int | None, Decimal] = dict(zip(line_ids, allocate(amount, [remaining[k] for k in line_ids]),
                                                   strict=True))
    return _write_step(actor, case, amount=amount, per_line=per_line, weights=weights, basis=basis,
                       purpose=RefundPurpose.GOODS, final=final, to_store_credit=to_store_credit)


def _write_step(actor: Actor, case: Case, *, amount: Decimal, per_line: Mapping[int | None, Decimal],
                weights: Sequence[tuple[str, Decimal]], basis: str, purpose: str, final: bool,
                to_store_credit: bool = False, exchange_id: int | None = None,
                shipping: ShippingRefundTotal | None = None) -> Refund:
    """Writes one refund step and its ledger rows, and raises every running total it draws on (the
    lines', the payments' and, for shipping, the leg's) under their row locks, in one fixed order
    (lines by id, then payments by id), so that two requests never wait for each other in a circle.
    `per_line` maps order lines to their share; the key None is shipping, which belongs to no line."""
    order = case.order
    assert order is not None
    payments: dict[str, list[Payment]] = {}
    for payment in Payment.objects.filter(store_id=case.store_id, order_id=order.pk).order_by("id"):
        payments.setdefault(payment.method, []).append(payment)
    taken = dict(PaymentRefundTotal.objects.filter(store_id=case.store_id, payment__order_id=order.pk)
                 .values_list("payment_id", "committed"))
    room = {p.pk: p.amount - taken.get(p.pk, ZERO) for group in payments.values() for p in group}
    store_settings = settings_for(case.store_id)
    planned: list[tuple[int | None, Payment | None, str, Decimal]] = []
    for line_id, line_amount in per_line.items():
        if line_amount <= 0:
            continue
        for (method, _), share in zip(weights, allocate(line_amount, [w for _, w in weights]), strict=True):
            if share <= 0:
                continue
            candidates = [] if to_store_credit else payments.get(method, [])
            if not candidates:
                # Store credit the buyer agreed to, or a method the order mirror holds no payment row for.
                planned.append((line_id, None, method, share))
                continue
            # Within a method, the payments are filled in order, none beyond what it paid.
            left = share
            for payment in candidates:
                part = min(left, room[payment.pk])
                if part > 0:
                    planned.append((line_id, payment, method, part))
                    room[payment.pk] -= part
                    left -= part
            if left > 0:
                raise Conflict("refund_exceeds_payment", "refunds to this payment would exceed what it paid",
                               details={"method": method, "short_by": str(left)})
    threshold = store_settings.approval_threshold
    needs_approval = not to_store_credit and threshold is not None and amount > threshold
    due_at, due_rule = _due(case) if purpose == RefundPurpose.GOODS else (None, "")
    number = Refund.objects.filter(store_id=case.store_id, case=case).count() + 1
    refund = Refund.objects.create(
        store_id=case.store_id, case=case, number=number, amount=amount, currency=order.currency,
        status=RefundStatus.PENDING_APPROVAL if needs_approval else RefundStatus.REQUESTED,
        to_store_credit=to_store_credit, final=final, due_at=due_at, due_rule=due_rule, split_basis=basis,
        purpose=purpose, exchange_id=exchange_id, requested_by=actor.label[:150], requested_at=clock.now(),
    )
    by_line: dict[int, Decimal] = {}
    by_payment: dict[int, Decimal] = {}
    for line_id, paid_with, _, share in planned:
        if line_id is not None:
            by_line[line_id] = by_line.get(line_id, ZERO) + share
        if paid_with is not None:
            by_payment[paid_with.pk] = by_payment.get(paid_with.pk, ZERO) + share
    for line_id in sorted(by_line):
        _reserve(case.store_id, line_id, by_line[line_id])
    for payment_id in sorted(by_payment):
        _reserve_payment(case.store_id, payment_id, by_payment[payment_id])
    if shipping is not None:
        _raise_shipping(shipping, amount)
    RefundItem.objects.bulk_create([
        RefundItem(store_id=case.store_id, refund=refund, case=case, order_line_id=line_id, payment=payment,
                   method=method, amount=share,
                   gateway=store_settings.gateway if method in GATEWAY_METHODS else INTERNAL)
        for line_id, payment, method, share in planned])
    _timeline(case, actor, "refund_requested", {"refund_id": refund.pk, "step": number, "amount": str(amount),
                                               "status": refund.status, "split_basis": basis, "purpose": purpose})
    if not needs_approval:
        _kick(refund.pk)
    return refund


def _reserve_payment(store_id: int, payment_id: int, amount: Decimal) -> None:
    """Raises the payment's running total under its row lock; the CHECK refuses more than it paid."""
    payment = Payment.objects.get(store_id=store_id, pk=payment_id)
    try:
        with transaction.atomic():
            PaymentRefundTotal.objects.get_or_create(payment_id=payment_id,
                                                     defaults={"store_id": store_id, "paid": payment.amount})
    except IntegrityError:
        pass  # created by a concurrent request; the lock below waits for it
    total = PaymentRefundTotal.objects.select_for_update().get(payment_id=payment_id)
    total.committed += amount
    try:
        with transaction.atomic():
            total.save(update_fields=["committed"])
    except IntegrityError as exc:
        raise Conflict("refund_exceeds_payment", "refunds to this payment would exceed what it paid",
                       details={"method": payment.method, "paid": str(total.paid)}) from exc


def _raise_shipping(total: ShippingRefundTotal, amount: Decimal) -> None:
    total.committed += amount
    try:
        with transaction.atomic():
            total.save(update_fields=["committed"])
    except IntegrityError as exc:
        raise Conflict("refund_exceeds_ceiling", "shipping refunds would exceed their ceiling",
                       details={"leg": total.leg, "ceiling": str(total.ceiling)}) from exc


def _reserve(store_id: int, order_line_id: int, amount: Decimal) -> None:
    """Raises the line's running total under its row lock; the CHECK refuses a total above what was paid."""
    line = OrderLine.objects.get(store_id=store_id, pk=order_line_id)
    try:
        with transaction.atomic():
            LineRefundTotal.objects.get_or_create(order_line_id=order_line_id,
                                                  defaults={"store_id": store_id, "paid": line.paid_amount})
    except IntegrityError:
        pass  # created by a concurrent request for another case on this line; the lock below waits for it
    total = LineRefundTotal.objects.select_for_update().get(order_line_id=order_line_id)
    total.committed += amount
    try:
        with transaction.atomic():
            total.save(update_fields=["committed"])
    except IntegrityError as exc:
        raise Conflict("refund_exceeds_paid", "refunds on this order line would exceed what was paid for it",
                       details={"order_line_id": order_line_id, "paid": str(total.paid)}) from exc


def inline_sandbox(gateway: str) -> bool:
    """Whether the sandbox is paid inside the requesting transaction.

    In the embedded set-up (no broker: tasks run in-process anyway) the sandbox keeps its books in our
    own database, so paying it and taking its callbacks in the same transaction is consistent and
    lets a person see the case refunded at once, as a demo should. A real gateway is never called
    inside a transaction, and with a broker the sandbox too goes through the tasks after the commit.
    """
    default = bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))
    return gateway == "sandbox" and bool(getattr(settings, "AFTERSALES_REFUNDS_INLINE_SANDBOX", default))


def _kick(refund_id: int) -> None:
    from . import tasks

    if inline_sandbox(settings_for(Refund.objects.get(pk=refund_id).store_id).gateway):
        process_refund(refund_id=refund_id)
        return
    transaction.on_commit(lambda: tasks.process_refund.delay(refund_id))


def approve_refund(*, actor: Actor, refund_id: int) -> Refund:
    """Finance approves a refund step above the store's threshold; the money moves after the commit."""
    actor.require(perm.CASE_REFUND)
    if actor.kind != "system" and actor.role not in APPROVERS:
        raise PermissionDenied("only finance approves refunds above the threshold", details={"role": actor.role})
    with transaction.atomic():
        refund = _refund_for_update(actor, refund_id)
        if refund.status != RefundStatus.PENDING_APPROVAL:
            raise Conflict("not_pending_approval", "this refund is not waiting for approval",
                           details={"status": refund.status})
        refund.status = RefundStatus.REQUESTED
        refund.approved_by, refund.approved_at = actor.label[:150], clock.now()
        refund.save(update_fields=["status", "approved_by", "approved_at"])
        _timeline(refund.case, actor, "refund_approved", {"refund_id": refund.pk, "amount": str(refund.amount)})
        _kick(refund.pk)
    return refund


def _refund_for_update(actor: Actor, refund_id: int) -> Refund:
    found = Refund.objects.filter(store_id=actor.store_id, pk=refund_id).values_list("case_id", flat=True).first()
    if found is None:
        raise NotFound("refund")
    case = case_services.get_case_for_update(actor=actor, case_id=found)
    refund = Refund.objects.select_for_update().get(store_id=actor.store_id, pk=refund_id)
    refund.case = case
    return refund


def give_store_credit_consent(*, actor: Actor, case_id: int, wording: str) -> StoreCreditConsent:
    """The buyer, and only the buyer, agrees to take store credit instead of money on this case."""
    if not actor.is_buyer:
        raise PermissionDenied("only the buyer can agree to store credit instead of money")
    wording = wording.strip()
    if not wording:
        raise ValidationFailed("say what the buyer agreed to", field="wording", code="field_required")
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        consent, _ = StoreCreditConsent.objects.get_or_create(
            case=case, defaults={"store_id": case.store_id, "buyer_id": case.buyer_id, "given_at": clock.now(),
                                 "wording": wording[:2000]})
        _timeline(case, actor, "store_credit_consent", {"wording": consent.wording})
    return consent


# --- paying ------------------------------------------------------------------------------------------

def process_refund(*, refund_id: int) -> None:
    """Sends every requested item of an approved refund step: internal ones are booked, the others go
    to the gateway, one attempt each. Safe to run twice (the second finds nothing requested)."""
    item_ids = list(RefundItem.objects.filter(refund_id=refund_id, status=ItemStatus.REQUESTED,
                                              refund__status__in=(RefundStatus.REQUESTED, RefundStatus.PROCESSING,
                                                                  RefundStatus.FAILED))
                    .order_by("id").values_list("id", flat=True))
    for item_id in item_ids:
        _send(item_id, new_key=True)


def _lock_item(item_id: int) -> tuple[Case, RefundItem] | None:
    case_id = RefundItem.objects.filter(pk=item_id).values_list("case_id", flat=True).first()
    if case_id is None:
        return None
    # Always the case first, then the ledger rows: the same order as request_refund, so no deadlock.
    case = Case.objects.select_for_update().get(pk=case_id)
    item = RefundItem.objects.select_for_update(of=("self",)).select_related("refund", "payment").get(pk=item_id)
    return case, item


def _send(item_id: int, *, new_key: bool) -> None:
    with transaction.atomic():
        locked = _lock_item(item_id)
        if locked is None:
            return
        case, item = locked
        if item.gateway == INTERNAL:
            if item.status == ItemStatus.REQUESTED:
                _book_internal(case, item)
            return
        attempt = _attempt_to_send(
            item.attempts, new_key=new_key, may_start=item.status in (ItemStatus.REQUESTED, ItemStatus.FAILED),
            start=lambda number: RefundAttempt.objects.create(
                store_id=item.store_id, item=item, number=number, gateway=item.gateway, amount=item.amount,
                idempotency_key=f"rf{item.store_id}-{item.pk}-{number}", created_at=clock.now()))
        if attempt is None:
            return
        item.status = ItemStatus.PROCESSING
        item.failure_reason = ""
        item.save(update_fields=["status", "failure_reason"])
        _refresh_refund_status(item.refund)
        order = RefundOrder(store_id=item.store_id, idempotency_key=attempt.idempotency_key, amount=attempt.amount,
                            currency=item.refund.currency,
                            payment_reference=item.payment.reference if item.payment else "",
                            reason=f"{case.number} refund step {item.refund.number}")
    _call_gateway(attempt.gateway, lambda gateway: gateway.submit_refund(order), partial(_settle_attempt, attempt.pk))


def _attempt_to_send(attempts: Any, *, new_key: bool, may_start: bool,
                     start: Callable[[int], A]) -> A | None:
    """The attempt to send now, under the caller's row lock. With `new_key`: a new attempt, numbered after
    the last, only when the caller may start one and nothing was sent yet or the gateway said the last
    key failed. Without: the last attempt again while its outcome is still open (the gateway answers a
    key it knows with its first result). None when there is nothing to send."""
    last = attempts.order_by("-number").first()
    if new_key:
        if not may_start or (last is not None and last.status != AttemptStatus.FAILED):
            return None
        return start(1 if last is None else last.number + 1)
    if last is None or last.status in AttemptStatus.final():
        return None
    return cast(A, last)


def _call_gateway(gateway_name: str, submit: Callable[[PaymentGateway], SubmitResult], settle: Callable[..., bool]) -> None:
    """Sends one attempt (a refund, a charge or a charge paid back) and records the answer with `settle`.

    The gateway is called outside any transaction: no lock is held while we wait for the network, and
    the attempt (with its key) is already committed if this process dies during the call. A timeout
    leaves the attempt unknown (the retry asks about the same key first); a refusal fails it."""
    gateway = get_gateway(gateway_name)
    try:
        result = submit(gateway)
    except GatewayTimeout as exc:
        settle(status=AttemptStatus.UNKNOWN, reference="", error=str(exc)[:200])
        return
    except GatewayError as exc:
        settle(status=AttemptStatus.FAILED, reference="", error=str(exc)[:200])
        return
    status = {"pending": AttemptStatus.ACCEPTED, "succeeded": AttemptStatus.SUCCEEDED,
              "failed": AttemptStatus.FAILED}[result.status]
    settle(status=status, reference=result.reference, error=result.error)
    if gateway.name == "sandbox":
        from . import tasks

        if inline_sandbox(gateway.name):
            tasks.deliver_sandbox_callbacks()
        else:
            transaction.on_commit(tasks.deliver_sandbox_callbacks.delay)


def _book_internal(case: Case, item: RefundItem) -> None:
    """Store credit, coupons, points and balance go back inside the shop, at once."""
    now = clock.now()
    if item.method == "store_credit":
        StoreCreditEntry.objects.create(store_id=item.store_id, buyer_id=case.buyer_id, item=item, amount=item.amount,
                                        created_at=now)
    item.status, item.succeeded_at, item.gateway_reference = ItemStatus.SUCCEEDED, now, f"internal-{item.pk}"
    item.save(update_fields=["status", "succeeded_at", "gateway_reference"])
    _after_item_change(case, item)


def _record_answer(attempt: GatewayAttempt, what: str, *, status: str,
                   reference: str, error: str, amount: Decimal | None) -> bool:
    """Writes the gateway's answer on a locked attempt of any kind. False when it changes nothing: the
    attempt is final already (a duplicated or late callback), or an "accepted" arrives after a later
    answer. An amount other than the attempt's is refused, never booked."""
    if attempt.status in AttemptStatus.final():
        if status != attempt.status:
            logger.error("gateway contradicts a final %s attempt", what,
                         extra={"attempt": attempt.idempotency_key, "was": attempt.status, "now": status})
        return False
    if status == AttemptStatus.ACCEPTED and attempt.status not in (AttemptStatus.SENDING, AttemptStatus.UNKNOWN):
        return False
    if amount is not None and amount != attempt.amount:
        logger.error("gateway reports another %s amount", what, extra={
            "attempt": attempt.idempotency_key, "ours": str(attempt.amount), "theirs": str(amount)})
        raise Conflict("amount_mismatch", f"the gateway reports another amount for this {what}",
                       details={"expected": str(attempt.amount), "reported": str(amount)})
    attempt.status, attempt.error = status, error
    attempt.gateway_reference = reference or attempt.gateway_reference
    if status in AttemptStatus.final():
        attempt.finished_at = clock.now()
    attempt.save(update_fields=["status", "gateway_reference", "error", "finished_at"])
    return True


def _settle_attempt(attempt_id: int, *, status: str, reference: str, error: str,
                    amount: Decimal | None = None) -> bool:
    """Records what the gateway said about one attempt. Returns False when it changed nothing (the
    attempt was already final, e.g. a duplicated callback)."""
    with transaction.atomic():
        item_id = RefundAttempt.objects.filter(pk=attempt_id).values_list("item_id", flat=True).get()
        locked = _lock_item(item_id)
        assert locked is not None
        case, item = locked
        attempt = RefundAttempt.objects.select_for_update().get(pk=attempt_id)
        if not _record_answer(attempt, "refund", status=status, reference=reference, error=error, amount=amount):
            return False
        if status == AttemptStatus.SUCCEEDED:
            item.status, item.succeeded_at = ItemStatus.SUCCEEDED, clock.now()
            item.gateway_reference = attempt.gateway_reference
            item.save(update_fields=["status", "succeeded_at", "gateway_reference"])
            _after_item_change(case, item)
        elif status == AttemptStatus.FAILED:
            item.status, item.failure_reason = ItemStatus.FAILED, error[:200]
            item.save(update_fields=["status", "failure_reason"])
            _after_item_change(case, item)
    return True


def _refresh_refund_status(refund: Refund) -> None:
    if refund.status == RefundStatus.PENDING_APPROVAL:
        return
    statuses = set(RefundItem.objects.filter(refund=refund).values_list("status", flat=True)) - {ItemStatus.CANCELLED}
    if not statuses:
        new = RefundStatus.CANCELLED
    elif statuses == {ItemStatus.SUCCEEDED}:
        new = RefundStatus.SUCCEEDED
    elif ItemStatus.PROCESSING in statuses:
        new = RefundStatus.PROCESSING
    elif ItemStatus.FAILED in statuses:
        new = RefundStatus.FAILED
    elif ItemStatus.REQUESTED in statuses:
        new = RefundStatus.REQUESTED
    else:
        new = RefundStatus.PROCESSING
    if new != refund.status:
        refund.status = new
        refund.completed_at = clock.now() if new == RefundStatus.SUCCEEDED else None
        refund.save(update_fields=["status", "completed_at"])


def _after_item_change(case: Case, item: RefundItem) -> None:
    refund = Refund.objects.select_for_update().get(pk=item.refund_id)
    before = refund.status
    _refresh_refund_status(refund)
    system = system_actor(case.store_id, "refunds")
    if refund.status != before and refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        _timeline(case, system, f"refund_{refund.status}", {"refund_id": refund.pk, "step": refund.number,
                                                            "amount": str(refund.amount)})
    _complete_case_if_paid(case)


def _complete_case_if_paid(case: Case) -> None:
    """Moves the case to refunded once the final step and every step before it are paid."""
    if case.status != Status.REFUNDING:
        return
    # Only the goods count here: a replacement's difference or shipping is paid beside the case's refund.
    goods = Refund.objects.filter(store_id=case.store_id, case=case, purpose=RefundPurpose.GOODS).exclude(
        status=RefundStatus.CANCELLED)
    refunds = list(goods.values_list("status", "final"))
    if not refunds or not any(final for _, final in refunds):
        return
    if any(status != RefundStatus.SUCCEEDED for status, _ in refunds):
        return
    # What was paid, not what was asked: a row finance cancelled is not part of it.
    total = (RefundItem.objects.filter(refund__in=goods, status=ItemStatus.SUCCEEDED)
             .aggregate(total=Sum("amount"))["total"] or ZERO).quantize(CENT)
    case_services.transition_case(actor=system_actor(case.store_id, "refunds"), case_id=case.pk,
                                  action=Action.REFUND, payload={"amount": str(total)}, rule=CONFIRMED_RULE)


# --- confirmations -----------------------------------------------------------------------------------

def handle_callback(*, gateway_name: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """A gateway's signed confirmation. Returns True if it changed the ledger, False for a duplicate.

    A bad signature is a 401 and is logged with the sender's claim, never applied.
    """
    try:
        gateway = get_gateway(gateway_name)
    except GatewayError as exc:
        raise NotFound("gateway") from exc
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        event: CallbackEvent = gateway.parse_callback(body=body, headers=lowered)
    except InvalidSignature as exc:
        logger.warning("refund callback refused: %s", exc, extra={"gateway": gateway_name, "size": len(body)})
        raise DomainError("bad_signature", "the callback's signature does not verify", status=401) from exc
    if event.kind == "charge":
        return _charge_callback(gateway_name, event)
    attempt = RefundAttempt.objects.filter(idempotency_key=event.idempotency_key, gateway=gateway_name).first()
    if attempt is None:
        payback = ChargeRefundAttempt.objects.filter(idempotency_key=event.idempotency_key,
                                                     gateway=gateway_name).values_list("pk", flat=True).first()
        if payback is not None:
            status = AttemptStatus.SUCCEEDED if event.status == "succeeded" else AttemptStatus.FAILED
            return _settle_payback_attempt(payback, status=status, reference=event.reference, error=event.error,
                                           amount=event.amount)
        logger.warning("refund callback for an unknown attempt", extra={"key": event.idempotency_key})
        raise NotFound("refund attempt")
    status = AttemptStatus.SUCCEEDED if event.status == "succeeded" else AttemptStatus.FAILED
    return _settle_attempt(attempt.pk, status=status, reference=event.reference, error=event.error,
                           amount=event.amount)


def retry_item(*, actor: Actor, item_id: int) -> RefundItem:
    """Retries one ledger row: asks the gateway about the last attempt's key first (it may have been
    paid although we never heard), and sends a new attempt only when the last one is known to have
    failed."""
    actor.require(perm.CASE_REFUND)
    item = RefundItem.objects.filter(store_id=actor.store_id, pk=item_id).first()
    if item is None or (actor.is_buyer and item.case.buyer_id != actor.buyer_id):
        raise NotFound("refund item")
    if item.refund.status == RefundStatus.PENDING_APPROVAL:
        raise Conflict("not_approved", "this refund still waits for finance approval")
    if item.status == ItemStatus.SUCCEEDED:
        raise Conflict("already_refunded", "this part of the refund has already been paid",
                       details={"gateway_reference": item.gateway_reference})
    if item.status == ItemStatus.CANCELLED:
        raise Conflict("refund_cancelled", "this part of the refund was cancelled; ask for a new step instead")
    _resolve(item)
    item.refresh_from_db()
    if item.status in (ItemStatus.FAILED, ItemStatus.REQUESTED):
        _send(item.pk, new_key=True)
    item.refresh_from_db()
    return item


def _resolve(item: RefundItem) -> None:
    """Brings the last attempt of an item up to date with what the gateway knows of its key."""
    last = item.attempts.order_by("-number").first()
    if last is None or last.status in AttemptStatus.final():
        return
    record = get_gateway(last.gateway).query_refund(store_id=item.store_id, idempotency_key=last.idempotency_key)
    if record is None:
        # The gateway never received this key: send the same key again (never a new one).
        _send(item.pk, new_key=False)
        return
    if record.status in ("succeeded", "failed"):
        _settle_attempt(last.pk, status=record.status, reference=record.reference, error="",
                        amount=record.amount)
    elif last.status == AttemptStatus.UNKNOWN:
        _settle_attempt(last.pk, status=AttemptStatus.ACCEPTED, reference=record.reference, error="")


def resolve_stale(*, older_than: dt.datetime) -> int:
    """For the sweep: attempts still open since before `older_than` are asked about, and approved items
    whose kick was lost are sent. Returns how many items were looked at."""
    seen = 0
    open_items = (RefundAttempt.objects.filter(status__in=(AttemptStatus.SENDING, AttemptStatus.ACCEPTED,
                                                           AttemptStatus.UNKNOWN), created_at__lt=older_than)
                  .values_list("item_id", flat=True).distinct())
    for item in RefundItem.objects.filter(pk__in=list(open_items)):
        _resolve(item)
        seen += 1
    lost = (RefundItem.objects.filter(status=ItemStatus.REQUESTED, refund__requested_at__lt=older_than,
                                      refund__status__in=(RefundStatus.REQUESTED, RefundStatus.PROCESSING))
            .values_list("refund_id", flat=True).distinct())
    for refund_id in list(lost):
        process_refund(refund_id=refund_id)
        seen += 1
    return seen


# --- reconciliation ----------------------------------------------------------------------------------

def reconcile(*, store_id: int, day: dt.date, gateway_name: str = "sandbox") -> ReconciliationReport:
    """Matches the ledger's attempts (refunds and charges) of one day, in the store's time zone, against
    the gateway's bill and lists every mismatch: missing on either side, another amount, or another
    outcome. Running it again replaces the report."""
    tz = ZoneInfo(Store.objects.values_list("timezone", flat=True).get(pk=store_id))
    start, end = local_day_bounds(day, tz)
    attempts: dict[str, RefundAttempt | ChargeAttempt | ChargeRefundAttempt] = {}
    for model in (RefundAttempt, ChargeAttempt, ChargeRefundAttempt):
        attempts.update({a.idempotency_key: a for a in model.objects.filter(
            store_id=store_id, gateway=gateway_name, created_at__gte=start, created_at__lt=end)})
    records = {r.idempotency_key: r for r in get_gateway(gateway_name).daily_records(store_id=store_id, day=day,
                                                                                     tz=tz)}
    mismatches: list[dict[str, Any]] = []
    matched = 0
    for key in sorted(set(attempts) | set(records)):
        ours, theirs = attempts.get(key), records.get(key)
        if theirs is None:
            assert ours is not None
            # Refused outright or never sent: the gateway rightly has nothing.
            if ours.status in (AttemptStatus.FAILED, AttemptStatus.SENDING) and not ours.gateway_reference:
                matched += 1
                continue
            mismatches.append({"kind": "missing_at_gateway", "key": key, "ledger_status": ours.status,
                               "ledger_amount": str(ours.amount)})
        elif ours is None:
            mismatches.append({"kind": "unknown_to_ledger", "key": key, "gateway_status": theirs.status,
                               "gateway_amount": str(theirs.amount), "gateway_reference": theirs.reference})
        elif ours.amount != theirs.amount:
            mismatches.append({"kind": "amount_differs", "key": key, "ledger_amount": str(ours.amount),
                               "gateway_amount": str(theirs.amount)})
        elif ours.status != theirs.status:
            mismatches.append({"kind": "status_differs", "key": key, "ledger_status": ours.status,
                               "gateway_status": theirs.status})
        else:
            matched += 1
    report, _ = ReconciliationReport.objects.update_or_create(
        store_id=store_id, day=day, gateway=gateway_name,
        defaults={"created_at": clock.now(), "matched": matched, "mismatches": mismatches})
    return report


def run_reconciliation(*, actor: Actor, day: dt.date) -> ReconciliationReport:
    actor.require(perm.CASE_REFUND)
    return reconcile(store_id=actor.store_id, day=day, gateway_name=settings_for(actor.store_id).gateway)


# --- cancelling a failed row -------------------------------------------------------------------------

def cancel_item(*, actor: Actor, item_id: int, reason: str = "") -> RefundItem:
    """Finance gives up on a ledger row the gateway refused (e.g. the payment is closed), instead of
    retrying it: its amount is released from the line's, the payment's and the shipping leg's running
    totals, so it can be refunded again another way (a new step, store credit with consent). Only a row
    known to have failed: one whose outcome is unknown may still be paid, and is resolved first."""
    actor.require(perm.CASE_REFUND)
    if actor.kind != "system" and actor.role not in APPROVERS:
        raise PermissionDenied("only finance cancels a refund", details={"role": actor.role})
    store_item = RefundItem.objects.filter(store_id=actor.store_id, pk=item_id).first()
    if store_item is None:
        raise NotFound("refund item")
    with transaction.atomic():
        locked = _lock_item(store_item.pk)
        assert locked is not None
        case, item = locked
        last = item.attempts.order_by("-number").first()
        if item.status != ItemStatus.FAILED or (last is not None and last.status != AttemptStatus.FAILED):
            raise Conflict("not_failed", "only a row the gateway refused can be cancelled",
                           details={"status": item.status})
        item.status, item.cancelled_by, item.cancelled_at = ItemStatus.CANCELLED, actor.label[:150], clock.now()
        item.save(update_fields=["status", "cancelled_by", "cancelled_at"])
        _release(item)
        refund = Refund.objects.select_for_update().get(pk=item.refund_id)
        if refund.final:
            # The step no longer pays the case in full: the case stays refunding for another step.
            refund.final = False
            refund.save(update_fields=["final"])
        _refresh_refund_status(refund)
        _timeline(case, actor, "refund_item_cancelled", {"refund_id": refund.pk, "item_id": item.pk,
                                                        "amount": str(item.amount), "reason": reason[:500]})
        _complete_case_if_paid(case)
    return item


def _release(item: RefundItem) -> None:
    """Takes a cancelled row's amount back off every running total it was counted in, under their locks
    and in the same order as they are raised."""
    # UPDATE takes each row's lock itself; the order is the one the totals are raised in.
    if item.order_line_id is not None:
        LineRefundTotal.objects.filter(order_line_id=item.order_line_id).update(committed=F("committed") - item.amount)
    if item.payment_id is not None:
        PaymentRefundTotal.objects.filter(payment_id=item.payment_id).update(committed=F("committed") - item.amount)
    refund = item.refund
    if refund.purpose in _LEG:
        total = _shipping_total(refund.case, _LEG[refund.purpose], create=False)
        total.committed -= item.amount
        total.save(update_fields=["committed"])


# --- shipping ----------------------------------------------------------------------------------------

_LEG: dict[str, str] = {RefundPurpose.RETURN_SHIPPING: ShippingLeg.RETURN,
                        RefundPurpose.OUTBOUND_SHIPPING: ShippingLeg.OUTBOUND}
_PURPOSE: dict[str, str] = {v: k for k, v in _LEG.items()}


def _shipping_total(case: Case, leg: str, *, create: bool, ceiling: Decimal = ZERO) -> ShippingRefundTotal:
    """The running total of a shipping leg, locked: the return leg's is per case, the outbound leg's per
    order (two cases on one order share the one fee the order paid)."""
    assert case.order_id is not None
    key: dict[str, Any] = ({"leg": leg, "case_id": case.pk} if leg == ShippingLeg.RETURN
                           else {"leg": leg, "order_id": case.order_id})
    if create:
        try:
            with transaction.atomic():
                ShippingRefundTotal.objects.get_or_create(**key, defaults={
                    "store_id": case.store_id, "order_id": case.order_id, "ceiling": ceiling})
        except IntegrityError:
            pass  # created by a concurrent request; the lock below waits for it
    return ShippingRefundTotal.objects.select_for_update().get(store_id=case.store_id, **key)


def request_shipping_refund(*, actor: Actor, case_id: int, leg: str, amount: Decimal) -> Refund:
    """Pays shipping back when the case's decision says the shop pays that leg: the buyer's return
    postage (up to the store's ceiling per case) or the order's original shipping fee (up to what the
    order paid for it, over all its cases). Through the ledger like goods: the payments' ceilings and the
    gateway's confirmation apply."""
    actor.require(perm.CASE_REFUND)
    if leg not in ShippingLeg.values:
        raise ValidationFailed("unknown shipping leg", field="leg", code="invalid_leg",
                               details={"allowed": list(ShippingLeg.values)})
    if amount <= 0 or amount != amount.quantize(CENT):
        raise ValidationFailed("amount must be a positive amount with at most two decimals", field="amount",
                               code="invalid_amount")
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        if case.order is None or case.status in Status.VOID or case.status == Status.REJECTED:
            raise Conflict("action_not_allowed", f"no shipping is refunded while the case is {case.status}",
                           details={"status": case.status})
        decision = case.decision or {}
        payer = ((decision.get("shipping") or {}).get(leg) or {}).get("payer")
        if "error" in decision or payer != "merchant":
            raise Conflict("shop_does_not_pay_shipping", "the case's decision does not have the shop pay this leg",
                           details={"leg": leg, "payer": payer})
        ceiling = (settings_for(case.store_id).return_shipping_ceiling if leg == ShippingLeg.RETURN
                   else case.order.shipping_fee)
        total = _shipping_total(case, leg, create=True, ceiling=ceiling)
        left = total.ceiling - total.committed
        if amount > left:
            raise ValidationFailed("the amount exceeds what is left to refund for this shipping", field="amount",
                                   code="amount_exceeds_ceiling", details={"maximum": str(max(left, ZERO))})
        weights = _payment_weights(case)
        return _write_step(actor, case, amount=amount, per_line={None: amount}, weights=weights, basis="pro_rata",
                           purpose=_PURPOSE[leg], final=False, shipping=total)


def _payment_weights(case: Case) -> list[tuple[str, Decimal]]:
    by_method: dict[str, Decimal] = {}
    assert case.order_id is not None
    for method, paid in (Payment.objects.filter(store_id=case.store_id, order_id=case.order_id)
                         .order_by("id").values_list("method", "amount")):
        by_method[method] = by_method.get(method, ZERO) + paid
    weights = [(m, w) for m, w in by_method.items() if w > 0]
    if not weights:
        raise Conflict("no_payment_to_refund", "the order has no payment to refund to")
    return weights


# --- exchanges: the difference ----------------------------------------------------------------------

def refund_exchange_difference(*, actor: Actor, case: Case, exchange_id: int) -> Refund:
    """A cheaper replacement has shipped: the difference goes back through the ledger, on the exchanged
    line (its running total), to the payments in proportion, once (a unique constraint per exchange).
    The caller holds the case's lock."""
    from aftersales.logistics.models import Exchange

    exchange = Exchange.objects.get(store_id=case.store_id, pk=exchange_id)
    amount = -exchange.price_difference
    if amount <= 0:
        raise Conflict("nothing_to_refund", "this replacement costs no less than the original")
    if Refund.objects.filter(store_id=case.store_id, exchange_id=exchange.pk).exclude(
            status=RefundStatus.CANCELLED).exists():
        raise Conflict("refund_already_requested", "this replacement's difference has already been refunded")
    try:
        with transaction.atomic():
            return _write_step(actor, case, amount=amount, per_line={exchange.order_line_id: amount},
                               weights=_payment_weights(case), basis="pro_rata",
                               purpose=RefundPurpose.EXCHANGE_DIFFERENCE, final=False, exchange_id=exchange.pk)
    except IntegrityError as exc:
        raise Conflict("refund_already_requested", "this replacement's difference has already been refunded") from exc


def request_exchange_charge(*, actor: Actor, case: Case, exchange_id: int) -> Charge:
    """A dearer replacement: the buyer pays the difference through the store's gateway, from the account
    they paid the order with. Written now (the caller holds the case's lock), sent after the commit;
    the replacement ships once the gateway confirms."""
    from aftersales.logistics.models import Exchange

    exchange = Exchange.objects.get(store_id=case.store_id, pk=exchange_id)
    if exchange.price_difference <= 0:
        raise Conflict("nothing_to_charge", "this replacement costs no more than the original")
    live = Charge.objects.filter(store_id=case.store_id, exchange_id=exchange.pk).exclude(
        status=ChargeStatus.CANCELLED).first()
    if live is not None:
        return live
    assert case.order is not None
    payment = (Payment.objects.filter(store_id=case.store_id, order_id=case.order.pk, method__in=GATEWAY_METHODS)
               .order_by("id").first())
    charge = Charge.objects.create(
        store_id=case.store_id, case=case, exchange_id=exchange.pk, payment=payment,
        method=payment.method if payment else "", amount=exchange.price_difference, currency=case.order.currency,
        gateway=settings_for(case.store_id).gateway, requested_at=clock.now())
    _timeline(case, actor, "exchange_charge_requested", {"charge_id": charge.pk, "amount": str(charge.amount)})
    _kick_charge(charge)
    return charge


def cancel_exchange_charge(*, actor: Actor, case: Case, exchange_id: int) -> None:
    """The replacement was given up before its difference was taken: an unsent or refused charge is
    cancelled. One in flight or paid cannot be, and the caller must not give the exchange up."""
    for charge in Charge.objects.select_for_update().filter(store_id=case.store_id, exchange_id=exchange_id).exclude(
            status=ChargeStatus.CANCELLED):
        if charge.status in (ChargeStatus.PROCESSING, ChargeStatus.SUCCEEDED):
            raise Conflict("difference_already_charged", "the buyer has paid (or is paying) this replacement's "
                           "difference", details={"charge_id": charge.pk, "status": charge.status})
        charge.status = ChargeStatus.CANCELLED
        charge.save(update_fields=["status"])
        _timeline(case, actor, "exchange_charge_cancelled", {"charge_id": charge.pk})


def charge_paid(*, store_id: int, exchange_id: int) -> bool:
    return Charge.objects.filter(store_id=store_id, exchange_id=exchange_id, status=ChargeStatus.SUCCEEDED).exists()


def _kick_charge(charge: Charge) -> None:
    from . import tasks

    if inline_sandbox(charge.gateway):
        process_charge(charge_id=charge.pk)
        return
    charge_id = charge.pk
    transaction.on_commit(lambda: tasks.process_charge.delay(charge_id))


def _lock_charge(charge_id: int) -> tuple[Case, Charge] | None:
    case_id = Charge.objects.filter(pk=charge_id).values_list("case_id", flat=True).first()
    if case_id is None:
        return None
    case = Case.objects.select_for_update().get(pk=case_id)  # the case first, as everywhere
    return case, Charge.objects.select_for_update(of=("self",)).select_related("payment").get(pk=charge_id)


def process_charge(*, charge_id: int, new_key: bool = True) -> None:
    """Sends a charge to the gateway: a fresh key only when nothing was sent yet or the gateway said the
    last key failed; otherwise the same key again (the gateway takes one key's money once)."""
    with transaction.atomic():
        locked = _lock_charge(charge_id)
        if locked is None:
            return
        case, charge = locked
        # An abandoned exchange takes no more money: only a key already sent may be resolved.
        may_start = charge.status in (ChargeStatus.REQUESTED, ChargeStatus.FAILED) and not charge.abandoned_at
        attempt = _attempt_to_send(
            charge.attempts, new_key=new_key, may_start=may_start,
            start=lambda number: ChargeAttempt.objects.create(
                store_id=charge.store_id, charge=charge, number=number, gateway=charge.gateway, amount=charge.amount,
                idempotency_key=f"ch{charge.store_id}-{charge.pk}-{number}", created_at=clock.now()))
        if attempt is None:
            return
        charge.status, charge.failure_reason = ChargeStatus.PROCESSING, ""
        charge.save(update_fields=["status", "failure_reason"])
        order = ChargeOrder(store_id=charge.store_id, idempotency_key=attempt.idempotency_key, amount=attempt.amount,
                            currency=charge.currency, payment_reference=charge.payment.reference if charge.payment else "",
                            description=f"{case.number} replacement difference")
    _call_gateway(attempt.gateway, lambda gateway: gateway.submit_charge(order),
                  partial(_settle_charge_attempt, attempt.pk))


def _settle_charge_attempt(attempt_id: int, *, status: str, reference: str, error: str,
                           amount: Decimal | None = None) -> bool:
    """What the gateway said about one charge attempt; False when it changed nothing (a duplicate)."""
    with transaction.atomic():
        charge_id = ChargeAttempt.objects.filter(pk=attempt_id).values_list("charge_id", flat=True).get()
        locked = _lock_charge(charge_id)
        assert locked is not None
        case, charge = locked
        attempt = ChargeAttempt.objects.select_for_update().get(pk=attempt_id)
        if not _record_answer(attempt, "charge", status=status, reference=reference, error=error, amount=amount):
            return False
        system = system_actor(case.store_id, "refunds")
        if status == AttemptStatus.SUCCEEDED:
            charge.status, charge.succeeded_at = ChargeStatus.SUCCEEDED, clock.now()
            charge.gateway_reference = attempt.gateway_reference
            charge.save(update_fields=["status", "succeeded_at", "gateway_reference"])
            _timeline(case, system, "exchange_charge_succeeded", {"charge_id": charge.pk, "amount": str(charge.amount)})
            if charge.abandoned_at is not None:
                # The exchange was given up while the buyer's money was on its way: it goes back now.
                _pay_back(system, case, charge)
        elif status == AttemptStatus.FAILED:
            # An abandoned exchange's refused charge is not retried: nothing was taken, nothing is owed.
            charge.status = ChargeStatus.CANCELLED if charge.abandoned_at else ChargeStatus.FAILED
            charge.failure_reason = error[:200]
            charge.save(update_fields=["status", "failure_reason"])
            _timeline(case, system, "exchange_charge_failed", {"charge_id": charge.pk, "error": error[:200]})
    return True


def _charge_callback(gateway_name: str, event: CallbackEvent) -> bool:
    attempt = ChargeAttempt.objects.filter(idempotency_key=event.idempotency_key, gateway=gateway_name).first()
    if attempt is None:
        logger.warning("charge callback for an unknown attempt", extra={"key": event.idempotency_key})
        raise NotFound("charge attempt")
    status = AttemptStatus.SUCCEEDED if event.status == "succeeded" else AttemptStatus.FAILED
    return _settle_charge_attempt(attempt.pk, status=status, reference=event.reference, error=event.error,
                                  amount=event.amount)


def retry_charge(*, actor: Actor, charge_id: int) -> Charge:
    """Asks the gateway about the last key first; charges again only after a known failure."""
    actor.require(perm.CASE_REFUND)
    charge = Charge.objects.filter(store_id=actor.store_id, pk=charge_id).first()
    if charge is None:
        raise NotFound("charge")
    if charge.status == ChargeStatus.SUCCEEDED:
        raise Conflict("already_charged", "the buyer has already paid this difference")
    if charge.status == ChargeStatus.CANCELLED:
        raise Conflict("charge_cancelled", "this charge was cancelled")
    _resolve_charge(charge)
    charge.refresh_from_db()
    if charge.status in (ChargeStatus.FAILED, ChargeStatus.REQUESTED):
        process_charge(charge_id=charge.pk)
    charge.refresh_from_db()
    return charge


def _resolve_charge(charge: Charge) -> None:
    """Brings a charge's last attempt up to date with what the gateway knows of its key."""
    last = charge.attempts.order_by("-number").first()
    if last is None or last.status in AttemptStatus.final():
        return
    record = get_gateway(last.gateway).query_charge(store_id=charge.store_id, idempotency_key=last.idempotency_key)
    if record is None:
        process_charge(charge_id=charge.pk, new_key=False)  # never received: the same key again
    elif record.status in ("succeeded", "failed"):
        _settle_charge_attempt(last.pk, status=record.status, reference=record.reference, error="",
                               amount=record.amount)
    elif last.status == AttemptStatus.UNKNOWN:
        _settle_charge_attempt(last.pk, status=AttemptStatus.ACCEPTED, reference=record.reference, error="")


def resolve_stale_charges(*, older_than: dt.datetime) -> int:
    """For the sweep, as for refunds: open charge attempts are asked about, lost kicks are sent."""
    seen = 0
    open_ids = (ChargeAttempt.objects.filter(status__in=(AttemptStatus.SENDING, AttemptStatus.ACCEPTED,
                                                         AttemptStatus.UNKNOWN), created_at__lt=older_than)
                .values_list("charge_id", flat=True).distinct())
    for charge in Charge.objects.filter(pk__in=list(open_ids)):
        _resolve_charge(charge)
        seen += 1
    for charge_id in list(Charge.objects.filter(status=ChargeStatus.REQUESTED, requested_at__lt=older_than)
                          .values_list("pk", flat=True)):
        process_charge(charge_id=charge_id)
        seen += 1
    return seen


# --- exchanges given up: paying a charged difference back ---------------------------------------------

def abandon_exchange_charges(*, actor: Actor, case: Case, exchange_id: int) -> None:
    """The exchange will not ship (its case was cancelled, expired, closed or switched to a refund).
    The caller holds the case's lock, in the transaction that moves the case.

    A charge not sent yet, or refused, is cancelled. One the gateway took is paid back now; one still
    in flight is marked abandoned, so that it is paid back as soon as it confirms (and cancelled if it
    fails). Nothing here can refuse the case's move: the money follows it."""
    for charge in (Charge.objects.select_for_update().filter(store_id=case.store_id, exchange_id=exchange_id)
                   .exclude(status=ChargeStatus.CANCELLED).order_by("id")):
        if charge.status in (ChargeStatus.REQUESTED, ChargeStatus.FAILED):
            charge.status = ChargeStatus.CANCELLED
            charge.save(update_fields=["status"])
            _timeline(case, actor, "exchange_charge_cancelled", {"charge_id": charge.pk})
            continue
        if charge.abandoned_at is None:
            charge.abandoned_at = clock.now()
            charge.save(update_fields=["abandoned_at"])
            _timeline(case, actor, "exchange_charge_abandoned", {"charge_id": charge.pk, "status": charge.status,
                                                                 "case_status": case.status})
        if charge.status == ChargeStatus.SUCCEEDED:
            _pay_back(actor, case, charge)


def _pay_back(actor: Actor, case: Case, charge: Charge) -> ChargeRefund | None:
    """Writes the payback of a paid, abandoned charge, once: the caller holds the case's and the charge's
    locks, an existing payback is kept, and the charge's `refunded` total is raised under its CHECK (the
    database itself refuses to pay a charge back beyond what it took). Sent after the commit."""
    existing = ChargeRefund.objects.filter(charge_id=charge.pk).first()
    if existing is not None:
        return existing
    amount = charge.amount - charge.refunded
    if amount <= 0:
        return None
    try:
        with transaction.atomic():
            Charge.objects.filter(pk=charge.pk).update(refunded=F("refunded") + amount)
            payback = ChargeRefund.objects.create(
                store_id=charge.store_id, case=case, charge=charge, amount=amount, currency=charge.currency,
                gateway=charge.gateway, reason=case.status[:40], requested_at=clock.now())
    except IntegrityError as exc:
        raise Conflict("charge_already_refunded", "this charge has already been paid back",
                       details={"charge_id": charge.pk}) from exc
    charge.refunded += amount
    _timeline(case, actor, "exchange_charge_refund_requested", {"charge_id": charge.pk, "payback_id": payback.pk,
                                                               "amount": str(amount), "case_status": case.status})
    _kick_payback(payback)
    return payback


def _kick_payback(payback: ChargeRefund) -> None:
    from . import tasks

    if inline_sandbox(payback.gateway):
        process_charge_refund(payback_id=payback.pk)
        return
    payback_id = payback.pk
    transaction.on_commit(lambda: tasks.process_charge_refund.delay(payback_id))


def _lock_payback(payback_id: int) -> tuple[Case, ChargeRefund] | None:
    case_id = ChargeRefund.objects.filter(pk=payback_id).values_list("case_id", flat=True).first()
    if case_id is None:
        return None
    case = Case.objects.select_for_update().get(pk=case_id)  # the case first, as everywhere
    payback = ChargeRefund.objects.select_for_update(of=("self",)).select_related("charge").get(pk=payback_id)
    return case, payback


def process_charge_refund(*, payback_id: int, new_key: bool = True) -> None:
    """Sends a payback to the gateway as a refund of the charge's trade: a fresh key only when nothing
    was sent yet or the gateway said the last key failed; otherwise the same key again."""
    with transaction.atomic():
        locked = _lock_payback(payback_id)
        if locked is None:
            return
        case, payback = locked
        attempt = _attempt_to_send(
            payback.attempts, new_key=new_key,
            may_start=payback.status in (ItemStatus.REQUESTED, ItemStatus.FAILED),
            start=lambda number: ChargeRefundAttempt.objects.create(
                store_id=payback.store_id, payback=payback, number=number, gateway=payback.gateway,
                amount=payback.amount, idempotency_key=f"cr{payback.store_id}-{payback.pk}-{number}",
                created_at=clock.now()))
        if attempt is None:
            return
        payback.status, payback.failure_reason = ItemStatus.PROCESSING, ""
        payback.save(update_fields=["status", "failure_reason"])
        order = RefundOrder(store_id=payback.store_id, idempotency_key=attempt.idempotency_key, amount=attempt.amount,
                            currency=payback.currency, payment_reference=payback.charge.gateway_reference,
                            reason=f"{case.number} replacement difference paid back")
    _call_gateway(attempt.gateway, lambda gateway: gateway.submit_refund(order),
                  partial(_settle_payback_attempt, attempt.pk))


def _settle_payback_attempt(attempt_id: int, *, status: str, reference: str, error: str,
                            amount: Decimal | None = None) -> bool:
    """What the gateway said about one payback attempt; False when it changed nothing (a duplicate)."""
    with transaction.atomic():
        payback_id = ChargeRefundAttempt.objects.filter(pk=attempt_id).values_list("payback_id", flat=True).get()
        locked = _lock_payback(payback_id)
        assert locked is not None
        case, payback = locked
        attempt = ChargeRefundAttempt.objects.select_for_update().get(pk=attempt_id)
        if not _record_answer(attempt, "payback", status=status, reference=reference, error=error, amount=amount):
            return False
        system = system_actor(case.store_id, "refunds")
        if status == AttemptStatus.SUCCEEDED:
            payback.status, payback.succeeded_at = ItemStatus.SUCCEEDED, clock.now()
            payback.gateway_reference = attempt.gateway_reference
            payback.save(update_fields=["status", "succeeded_at", "gateway_reference"])
            _timeline(case, system, "exchange_charge_refunded", {"charge_id": payback.charge_id,
                                                                 "payback_id": payback.pk,
                                                                 "amount": str(payback.amount)})
        elif status == AttemptStatus.FAILED:
            payback.status, payback.failure_reason = ItemStatus.FAILED, error[:200]
            payback.save(update_fields=["status", "failure_reason"])
            _timeline(case, system, "exchange_charge_refund_failed", {"charge_id": payback.charge_id,
                                                                      "payback_id": payback.pk, "error": error[:200]})
    return True


def retry_charge_refund(*, actor: Actor, charge_id: int) -> Charge:
    """Retries paying a charge back: asks the gateway about the last key first, and sends a new key only
    after a known failure."""
    actor.require(perm.CASE_REFUND)
    payback = ChargeRefund.objects.filter(store_id=actor.store_id, charge_id=charge_id).first()
    if payback is None:
        raise NotFound("charge payback")
    if payback.status == ItemStatus.SUCCEEDED:
        raise Conflict("already_refunded", "this charge has already been paid back",
                       details={"gateway_reference": payback.gateway_reference})
    _resolve_payback(payback)
    payback.refresh_from_db()
    if payback.status in (ItemStatus.FAILED, ItemStatus.REQUESTED):
        process_charge_refund(payback_id=payback.pk)
    return Charge.objects.get(pk=charge_id)


def _resolve_payback(payback: ChargeRefund) -> None:
    last = payback.attempts.order_by("-number").first()
    if last is None or last.status in AttemptStatus.final():
        return
    record = get_gateway(last.gateway).query_refund(store_id=payback.store_id, idempotency_key=last.idempotency_key)
    if record is None:
        process_charge_refund(payback_id=payback.pk, new_key=False)  # never received: the same key again
    elif record.status in ("succeeded", "failed"):
        _settle_payback_attempt(last.pk, status=record.status, reference=record.reference, error="",
                                amount=record.amount)
    elif last.status == AttemptStatus.UNKNOWN:
        _settle_payback_attempt(last.pk, status=AttemptStatus.ACCEPTED, reference=record.reference, error="")


def resolve_stale_paybacks(*, older_than: dt.datetime) -> int:
    """For the sweep: open payback attempts are asked about, lost kicks are sent, and a paid charge of an
    abandoned exchange that has no payback yet (its trigger was lost) gets one."""
    seen = 0
    open_ids = (ChargeRefundAttempt.objects.filter(status__in=(AttemptStatus.SENDING, AttemptStatus.ACCEPTED,
                                                               AttemptStatus.UNKNOWN), created_at__lt=older_than)
                .values_list("payback_id", flat=True).distinct())
    for payback in ChargeRefund.objects.filter(pk__in=list(open_ids)):
        _resolve_payback(payback)
        seen += 1
    for payback_id in list(ChargeRefund.objects.filter(status=ItemStatus.REQUESTED, requested_at__lt=older_than)
                           .values_list("pk", flat=True)):
        process_charge_refund(payback_id=payback_id)
        seen += 1
    # Paid and given up but never paid back: a lost trigger, or an exchange released before paybacks
    # existed (its charge was only logged then; a released exchange never ships, so the money is owed).
    owed = (Charge.objects.filter(Q(abandoned_at__lt=older_than) | Q(exchange__status="released"),
                                  status=ChargeStatus.SUCCEEDED, payback__isnull=True)
            .values_list("pk", flat=True))
    for charge_id in list(owed):
        with transaction.atomic():
            locked = _lock_charge(charge_id)
            if locked is None or locked[1].status != ChargeStatus.SUCCEEDED:
                continue
            case, charge = locked
            system = system_actor(case.store_id, "refunds")
            if charge.abandoned_at is None:
                charge.abandoned_at = clock.now()
                charge.save(update_fields=["abandoned_at"])
                _timeline(case, system, "exchange_charge_abandoned", {"charge_id": charge.pk, "status": charge.status,
                                                                      "case_status": case.status})
            _pay_back(system, case, charge)
        seen += 1
    return seen
