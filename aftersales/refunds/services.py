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
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.cases.states import Action, Status
from aftersales.core import clock
from aftersales.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from aftersales.orders.models import OrderLine, Payment
from aftersales.stores import permissions as perm
from aftersales.stores.models import Role
from aftersales.stores.permissions import Actor, system_actor

from .gateways import GatewayError, GatewayTimeout, RefundOrder, get_gateway
from .gateways.base import CallbackEvent, InvalidSignature
from .models import (
    AttemptStatus,
    ItemStatus,
    LineRefundTotal,
    ReconciliationReport,
    Refund,
    RefundAttempt,
    RefundItem,
    RefundSettings,
    RefundStatus,
    StoreCreditConsent,
    StoreCreditEntry,
)

logger = logging.getLogger(__name__)

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
    rows = (RefundItem.objects.filter(store_id=case.store_id, case=case).values("order_line_id")
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
    if Refund.objects.filter(store_id=case.store_id, case=case, final=True).exists():
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
    payments: dict[str, Payment] = {}
    for payment in Payment.objects.filter(store_id=case.store_id, order_id=order.pk).order_by("id"):
        payments.setdefault(payment.method, payment)
    store_settings = settings_for(case.store_id)
    threshold = store_settings.approval_threshold
    needs_approval = not to_store_credit and threshold is not None and amount > threshold
    now = clock.now()
    due_at, due_rule = _due(case)
    number = Refund.objects.filter(store_id=case.store_id, case=case).count() + 1
    refund = Refund.objects.create(
        store_id=case.store_id, case=case, number=number, amount=amount, currency=order.currency,
        status=RefundStatus.PENDING_APPROVAL if needs_approval else RefundStatus.REQUESTED,
        to_store_credit=to_store_credit, final=final, due_at=due_at, due_rule=due_rule, split_basis=basis,
        requested_by=actor.label[:150], requested_at=now,
    )
    line_ids = list(remaining)
    items: list[RefundItem] = []
    for line_id, line_amount in zip(line_ids, allocate(amount, [remaining[k] for k in line_ids]), strict=True):
        if line_amount <= 0:
            continue
        _reserve(case.store_id, line_id, line_amount)
        for (method, _), share in zip(weights, allocate(line_amount, [w for _, w in weights]), strict=True):
            if share <= 0:
                continue
            items.append(RefundItem(
                store_id=case.store_id, refund=refund, case=case, order_line_id=line_id,
                payment=payments.get(method), method=method, amount=share,
                gateway=store_settings.gateway if method in GATEWAY_METHODS else INTERNAL,
            ))
    RefundItem.objects.bulk_create(items)
    _timeline(case, actor, "refund_requested", {"refund_id": refund.pk, "step": number, "amount": str(amount),
                                               "status": refund.status, "split_basis": basis})
    if not needs_approval:
        _kick(refund.pk)
    return refund


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
        last = item.attempts.order_by("-number").first()
        if new_key:
            # Only an item nobody has sent yet, or one the gateway said failed, gets a fresh key.
            if item.status not in (ItemStatus.REQUESTED, ItemStatus.FAILED):
                return
            if last is not None and last.status != AttemptStatus.FAILED:
                return
            number = 1 if last is None else last.number + 1
            attempt = RefundAttempt.objects.create(
                store_id=item.store_id, item=item, number=number, gateway=item.gateway, amount=item.amount,
                idempotency_key=f"rf{item.store_id}-{item.pk}-{number}", created_at=clock.now(),
            )
        else:
            if last is None or last.status in AttemptStatus.final():
                return
            attempt = last
        item.status = ItemStatus.PROCESSING
        item.failure_reason = ""
        item.save(update_fields=["status", "failure_reason"])
        _refresh_refund_status(item.refund)
        order = RefundOrder(store_id=item.store_id, idempotency_key=attempt.idempotency_key, amount=attempt.amount,
                            currency=item.refund.currency,
                            payment_reference=item.payment.reference if item.payment else "",
                            reason=f"{case.number} refund step {item.refund.number}")
    # The gateway is called outside any transaction: no lock is held while we wait for the network, and
    # the attempt (with its key) is already committed if this process dies during the call.
    gateway = get_gateway(attempt.gateway)
    try:
        result = gateway.submit_refund(order)
    except GatewayTimeout as exc:
        _settle_attempt(attempt.pk, status=AttemptStatus.UNKNOWN, reference="", error=str(exc)[:200])
        return
    except GatewayError as exc:
        _settle_attempt(attempt.pk, status=AttemptStatus.FAILED, reference="", error=str(exc)[:200])
        return
    status = {"pending": AttemptStatus.ACCEPTED, "succeeded": AttemptStatus.SUCCEEDED,
              "failed": AttemptStatus.FAILED}[result.status]
    _settle_attempt(attempt.pk, status=status, reference=result.reference, error=result.error)
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
        if attempt.status in AttemptStatus.final():
            if status != attempt.status:
                logger.error("gateway contradicts a final refund attempt",
                             extra={"attempt": attempt.idempotency_key, "was": attempt.status, "now": status})
            return False
        if status == AttemptStatus.ACCEPTED and attempt.status not in (AttemptStatus.SENDING, AttemptStatus.UNKNOWN):
            return False
        if amount is not None and amount != attempt.amount:
            logger.error("gateway reports another amount", extra={"attempt": attempt.idempotency_key,
                                                                   "ours": str(attempt.amount), "theirs": str(amount)})
            raise Conflict("amount_mismatch", "the gateway reports another amount for this refund",
                           details={"expected": str(attempt.amount), "reported": str(amount)})
        attempt.status = status
        attempt.gateway_reference = reference or attempt.gateway_reference
        attempt.error = error
        if status in AttemptStatus.final():
            attempt.finished_at = clock.now()
        attempt.save(update_fields=["status", "gateway_reference", "error", "finished_at"])
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
    statuses = set(RefundItem.objects.filter(refund=refund).values_list("status", flat=True))
    if statuses == {ItemStatus.SUCCEEDED}:
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
    refunds = list(Refund.objects.filter(store_id=case.store_id, case=case).values_list("status", "final", "amount"))
    if not refunds or not any(final for _, final, _ in refunds):
        return
    if any(status != RefundStatus.SUCCEEDED for status, _, _ in refunds):
        return
    total = sum((amount for _, _, amount in refunds), ZERO)
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
    attempt = RefundAttempt.objects.filter(idempotency_key=event.idempotency_key, gateway=gateway_name).first()
    if attempt is None:
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
    """Matches the ledger's attempts of one UTC day against the gateway's bill and lists every mismatch:
    missing on either side, another amount, or another outcome. Running it again replaces the report."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    attempts = {a.idempotency_key: a for a in RefundAttempt.objects.filter(
        store_id=store_id, gateway=gateway_name, created_at__gte=start, created_at__lt=start + dt.timedelta(days=1))}
    records = {r.idempotency_key: r for r in get_gateway(gateway_name).daily_records(store_id=store_id, day=day)}
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
