"""Every write to a case goes through here.

`create_case` opens a case and `transition_case` moves it; both check permissions themselves, so
the API, the console, the CLI and the background sweeps share one set of rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.files.base import ContentFile
from django.db import connection, transaction

from aftersales.core import clock
from aftersales.core.bulk_writes import RowVersion, WriteConflict, insert_later, one_statement
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.events import publish
from aftersales.core.rows import new_row
from aftersales.core.sequences import next_value
from aftersales.orders.models import Order, OrderLine
from aftersales.policies import services as policy_services
from aftersales.sla import services as sla_services
from aftersales.sla.models import SlaClock
from aftersales.stores import permissions as perm
from aftersales.stores.models import Buyer, Membership, Store
from aftersales.stores.permissions import Actor

from . import order_claims
from .deadlines import deadline_for_case
from .evidence import check_upload
from .models import Attachment, Case, CaseLine, Message, Priority, ReasonCode, TimelineEntry, Visibility
from .states import INITIAL_STATUS, Action, Kind, Status, Transition, find_transition, outcomes_for, transitions_from

DEFAULT_REASON_CODES = [
    # code, policy category, zh, en, requires photos
    ("no_reason", "no_reason", "七天无理由 / 不想要了", "Changed my mind (no reason)", False),
    ("quality", "quality", "质量问题", "Quality problem", True),
    ("not_as_described", "not_as_described", "与商品描述不符", "Not as described", True),
    ("wrong_item", "wrong_item", "商家发错货", "Wrong item sent", True),
    ("damaged_in_transit", "damaged_in_transit", "运输途中损坏", "Damaged in transit", True),
    ("missing_parts", "missing_parts", "少件 / 漏发", "Missing parts", True),
    ("size", "size", "尺码不合适", "Wrong size", False),
    ("late_delivery", "late_delivery", "未按约定时间发货", "Late delivery", False),
    ("price_drop", "price_drop", "商品降价", "Price dropped", False),
]


def install_default_reason_codes(*, store: Store) -> None:
    ReasonCode.objects.bulk_create(
        [
            ReasonCode(store=store, code=code, category=category, label_zh=zh, label_en=en,
                       requires_evidence=evidence, sort_order=index)
            for index, (code, category, zh, en, evidence) in enumerate(DEFAULT_REASON_CODES)
        ],
        ignore_conflicts=True,
    )


@dataclass(frozen=True)
class LineRequest:
    order_line_id: int
    quantity: int


def _set_deadline(case: Case, at: dt.datetime) -> None:
    case.deadline_at, case.deadline_rule = deadline_for_case(case, at)


def _event_payload(case: Case, **extra: Any) -> dict[str, Any]:
    return {"store_id": case.store_id, "case_id": case.pk, "number": case.number, "kind": case.kind,
            "status": case.status, **extra}


def _check_line_quantities(claim: order_claims.OrderClaim, lines: Sequence[LineRequest]) -> None:
    """Lines must belong to the order, and no line may be claimed beyond what was bought minus what
    other live cases already cover (a cancelled or expired case frees its quantity)."""
    if not lines:
        raise ValidationFailed("choose at least one order line", field="lines", code="lines_required")
    ids = [line.order_line_id for line in lines]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("an order line appears twice", field="lines", code="duplicate_line")
    for index, line in enumerate(lines):
        field = f"lines[{index}]"
        order_line = claim.lines.get(line.order_line_id)
        if order_line is None:
            raise ValidationFailed("this line is not part of the order", field=f"{field}.order_line_id",
                                   code="line_not_in_order")
        if line.quantity < 1:
            raise ValidationFailed("quantity must be at least 1", field=f"{field}.quantity", code="invalid_quantity")
        available = order_line.quantity - claim.claimed.get(order_line.pk, 0)
        if line.quantity > available:
            raise ValidationFailed(
                "quantity exceeds what can still be claimed for this line", field=f"{field}.quantity",
                code="quantity_exceeds_available", details={"available": available, "requested": line.quantity},
            )


def create_case(
    *,
    actor: Actor,
    kind: str,
    order_id: int | None = None,
    lines: Sequence[LineRequest] = (),
    reason_code: str | None = None,
    description: str = "",
    subject: str = "",
    channel: str = "web",
    priority: int = Priority.NORMAL,
    requested_amount: Decimal | None = None,
    buyer_id: int | None = None,
) -> Case:
    actor.require(perm.CASE_CREATE)
    if kind not in Kind.ALL:
        raise ValidationFailed(f"unknown case kind {kind!r}", field="kind", code="invalid_kind",
                               details={"allowed": list(Kind.ALL)})
    if priority not in Priority.values:
        raise ValidationFailed("unknown priority", field="priority", code="invalid_priority")
    if requested_amount is not None and requested_amount < 0:
        raise ValidationFailed("the amount cannot be negative", field="requested_amount", code="invalid_amount")
    needs_lines = kind in Kind.WITH_LINES
    if needs_lines and order_id is None:
        raise ValidationFailed("this kind of request needs an order", field="order_id", code="order_required")
    if not needs_lines and lines:
        raise ValidationFailed("complaints and inquiries have no lines", field="lines", code="lines_not_allowed")

    now = clock.now()
    request = _CaseRequest(kind=kind, buyer_id=buyer_id, lines=lines, reason_code=reason_code, description=description,
                           subject=subject, channel=channel, priority=priority, requested_amount=requested_amount)
    if order_id is not None and connection.vendor == "postgresql":
        # The busiest write of all: read without a lock, in one statement, and write only if the order is
        # still as read, so that a case costs two round trips and no transaction of its own (BEGIN, the
        # lock, COMMIT: three more). If the order did change in between (another case opened on it, the
        # shop re-sent it), nothing was written, and the case is opened again the careful way below.
        try:
            unlocked = order_claims.read(actor, order_id, reason_code=reason_code, line_count=len(lines), locked=False)
            return _open_case(actor, unlocked, request, now)
        except WriteConflict:
            pass
    with transaction.atomic():
        claim = (order_claims.read(actor, order_id, reason_code=reason_code, line_count=len(lines))
                 if order_id is not None else None)
        return _open_case(actor, claim, request, now)


@dataclass(frozen=True)
class _CaseRequest:
    kind: str
    buyer_id: int | None
    lines: Sequence[LineRequest]
    reason_code: str | None
    description: str
    subject: str
    channel: str
    priority: int
    requested_amount: Decimal | None


def _open_case(actor: Actor, claim: order_claims.OrderClaim | None, request: _CaseRequest, now: dt.datetime) -> Case:
    """Writes the case `request` asks for, on the order read as `claim` (None: a case without an order)."""
    kind, lines, reason_code, channel = request.kind, request.lines, request.reason_code, request.channel
    needs_lines = kind in Kind.WITH_LINES
    order = claim.order if claim is not None else None
    resolved_buyer_id: int
    if order is not None:
        resolved_buyer_id = order.buyer_id
    elif actor.is_buyer and actor.buyer_id is not None:
        resolved_buyer_id = actor.buyer_id
    elif request.buyer_id is not None:
        if not Buyer.objects.filter(store_id=actor.store_id, pk=request.buyer_id).exists():
            raise NotFound("buyer")
        resolved_buyer_id = request.buyer_id
    else:
        raise ValidationFailed("name the order or the buyer", field="order_id", code="buyer_required")

    reason = None
    if reason_code:
        reason = claim.reason if claim is not None else order_claims.active_reason(actor.store_id, reason_code)
        if reason is None:
            raise ValidationFailed(f"unknown reason {reason_code!r}", field="reason", code="invalid_reason")
    elif needs_lines:
        raise ValidationFailed("give a reason", field="reason", code="reason_required")

    if needs_lines:
        assert claim is not None
        _check_line_quantities(claim, lines)

    # With the ids drawn beforehand (PostgreSQL) every row below knows its case before it is written,
    # and the case, its lines, timeline, clocks and outbox row go in one statement.
    ids = claim.ids if claim is not None else None
    # Callers show the case at once, and the deadline needs the store's platform: read it once, and attach
    # it (and the order's buyer) to the case.
    store = order.store if order is not None else Store.objects.get(pk=actor.store_id)
    buyer: dict[str, Any] = {"buyer": order.buyer} if order is not None else {"buyer_id": resolved_buyer_id}
    case = new_row(
        Case, pk=ids.case_id if ids is not None else None,
        store=store, kind=kind, status=INITIAL_STATUS[kind], order=order, **buyer,
        reason=reason, channel=channel, priority=request.priority,
        subject=request.subject[:200], description=request.description, requested_amount=request.requested_amount,
        created_at=now, updated_at=now,
        status_changed_at=now,
    )
    serial = ids.case_serial if ids is not None else next_value(actor.store_id, "case")
    case.number = f"{store.case_number_prefix}-{serial:06d}"
    entries = [TimelineEntry.of(case, actor, "created", now, to_status=case.status,
                         data={"channel": channel, "reason": reason_code or ""})]
    if needs_lines:
        assert claim is not None and order is not None and reason is not None
        entries.extend(_submit_for_review(case, store, claim, lines, reason, now))
    case.deadline_at, case.deadline_rule = deadline_for_case(
        case, now, timeouts=claim.timeouts if claim is not None else None)
    line_ids: list[int | None] = list(ids.case_line_ids) if ids is not None else [None] * len(lines)
    case_lines = [new_row(CaseLine, pk=line_id, store_id=actor.store_id, case=case,
                          order_line=claim.lines[line.order_line_id], quantity=line.quantity)
                  for line_id, line in zip(line_ids, lines, strict=True)] if claim is not None else []
    guard = RowVersion(Order, claim.order.pk, claim.version) if claim is not None and ids is not None else None
    with one_statement(enabled=ids is not None, guard=guard):
        if ids is not None:
            assert claim is not None and claim.sla_policies is not None
            insert_later(Case, [case])
            insert_later(CaseLine, case_lines)
            insert_later(TimelineEntry, entries)
            insert_later(SlaClock, sla_services.clocks_for_new_case(case=case, at=now, policies=claim.sla_policies))
        else:
            case.save(force_insert=True)
            case_lines = CaseLine.objects.bulk_create(case_lines)
            TimelineEntry.objects.bulk_create(entries)
            sla_services.on_case_event(case=case, event="created", actor=actor, at=now)
        # The caller answers with the lines it just wrote; reading them back would cost a round trip.
        case.written_lines = case_lines
        publish("case.created", _event_payload(case))
    return case


def _submit_for_review(case: Case, store: Store, claim: order_claims.OrderClaim, lines: Sequence[LineRequest],
                       reason: ReasonCode, now: dt.datetime) -> list[TimelineEntry]:
    """A request about goods is decided by the policy engine the moment it arrives and goes to the
    shop's review ("submitted" is the instant before); where the law allows it and the store has
    chosen so, the engine approves it on the spot."""
    system = perm.system_actor(case.store_id, "policy engine")
    case.decision = policy_services.decide(
        store=store, order=claim.order, order_lines=list(claim.lines.values()),
        requested=[(line.order_line_id, line.quantity) for line in lines], kind=case.kind,
        reason_category=reason.category, notice_at=now, payments=claim.payments, shipments=claim.shipments,
    )
    entries = [TimelineEntry.of(case, system, Action.SUBMIT, now, from_status=case.status, to_status=Status.PENDING_REVIEW,
                         data={"decision": _decision_summary(case.decision)})]
    case.status = Status.PENDING_REVIEW
    if policy_services.may_auto_approve(store, case.decision):
        approve = find_transition(case.kind, case.status, Action.APPROVE, None)
        assert approve is not None
        entries.append(TimelineEntry.of(case, system, Action.APPROVE, now, from_status=case.status, to_status=approve.target,
                                 data={"rule": "policy.auto_approve"}))
        case.status = approve.target
    return entries


def _decision_summary(decision: Mapping[str, Any]) -> dict[str, Any]:
    if "error" in decision:
        return {"error": decision["error"]}
    return {"requested_open": decision.get("requested_open"),
            "refund": decision.get("refund", {}).get("amount"),
            "remedies_open": [r.get("remedy") for r in decision.get("remedies_open", [])]}


# While the shop has not decided yet, a change of facts (the carrier reports the signature, the shop
# re-sends the order) must change what the shop sees; once decided, the decision stays as it was made.
REDECIDE_STATUSES = frozenset({Status.SUBMITTED, Status.PENDING_REVIEW, Status.NEGOTIATING})


def refresh_decision(*, actor: Actor, case_id: int) -> bool:
    """Re-run the policy engine on a case that is still undecided. Returns True if the decision changed.

    The new decision is recorded in the timeline with the rules that changed, so the history keeps
    both; a case past review is left alone (its decision is history, not a preview).
    """
    actor.require(perm.CASE_DECIDE)
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        if case.status not in REDECIDE_STATUSES or case.order_id is None or case.reason_id is None:
            return False
        store = Store.objects.get(pk=case.store_id)
        order = Order.objects.get(store_id=case.store_id, pk=case.order_id)
        order_lines = list(OrderLine.objects.filter(order=order).order_by("line_no"))
        requested = list(case.lines.order_by("id").values_list("order_line_id", "quantity"))
        reason = ReasonCode.objects.get(pk=case.reason_id)
        now = clock.now()
        # The request was made when the case opened: the windows are judged at that moment, not today.
        decision = policy_services.decide(store=store, order=order, order_lines=order_lines, requested=requested,
                                          kind=case.kind, reason_category=reason.category, notice_at=case.created_at)
        old = dict(case.decision or {})
        if {k: v for k, v in old.items() if k != "decided_at"} == {k: v for k, v in decision.items()
                                                                  if k != "decided_at"}:
            return False
        case.decision = decision
        case.updated_at = now
        case.save(update_fields=["decision", "updated_at"])
        TimelineEntry.of(case, actor, "decision_updated", now,
                  data={"before": _decision_summary(old), "after": _decision_summary(decision)}).save()
        publish("case.decision_updated", _event_payload(case))
    return True


def refresh_decisions_for_orders(*, store_id: int, order_ids: Sequence[int]) -> int:
    """After an order import: re-decide the undecided cases on those orders. Returns how many changed."""
    system = perm.system_actor(store_id, "policy engine")
    case_ids = Case.objects.filter(store_id=store_id, order_id__in=order_ids,
                                   status__in=REDECIDE_STATUSES).values_list("pk", flat=True)
    return sum(refresh_decision(actor=system, case_id=case_id) for case_id in case_ids)


def get_case_for_update(*, actor: Actor, case_id: int) -> Case:
    case = Case.objects.select_for_update().filter(store_id=actor.store_id, pk=case_id).first()
    if case is None or (actor.is_buyer and case.buyer_id != actor.buyer_id):
        raise NotFound("case")
    return case


def allowed_actions(case: Case, actor: Actor) -> list[dict[str, Any]]:
    """The actions this actor may take on this case now, with the outcomes each needs."""
    seen: dict[str, list[str]] = {}
    for transition in transitions_from(case.kind, case.status):
        if not actor.can(transition.permission) or transition.permission == perm.CASE_SYSTEM:
            continue
        if transition.needs_platform and not case.store.allows_platform_arbitration:
            continue
        outcomes = seen.setdefault(transition.action, [])
        if transition.outcome:
            outcomes.append(transition.outcome)
    return [{"action": action, "outcomes": sorted(outcomes)} for action, outcomes in seen.items()]


# --- what each action needs and records -------------------------------------------------------------

def _require_text(payload: Mapping[str, Any], field: str, max_length: int = 2000) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{field} is required", field=field, code="field_required")
    if len(value) > max_length:
        raise ValidationFailed(f"{field} is too long", field=field, code="too_long", details={"max_length": max_length})
    return value.strip()


def _require_amount(payload: Mapping[str, Any], field: str, *, maximum: Decimal | None) -> Decimal:
    raw = payload.get(field)
    if raw is None:
        raise ValidationFailed(f"{field} is required", field=field, code="field_required")
    try:
        amount = Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{field} is not a number", field=field, code="invalid_amount") from exc
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed(f"{field} must be a positive amount with at most two decimals", field=field,
                               code="invalid_amount")
    if maximum is not None and amount > maximum:
        raise ValidationFailed(f"{field} exceeds what was paid for these lines", field=field,
                               code="amount_exceeds_paid", details={"maximum": str(maximum)})
    return amount


def claimed_value(case: Case) -> Decimal:
    """What the buyer paid for the lines of this case, the ceiling of any refund on it."""
    total = Decimal("0")
    for line in case.lines.select_related("order_line"):
        ol = line.order_line
        total += (ol.unit_price * ol.quantity - ol.discount_allocated) * line.quantity / ol.quantity
    return total.quantize(Decimal("0.01"))


def _apply_reject(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    case.rejection_reason = _require_text(payload, "reason")
    return {"reason": case.rejection_reason}


def _apply_counter_offer(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    case.offer_amount = _require_amount(payload, "amount", maximum=claimed_value(case))
    return {"amount": str(case.offer_amount), "message": str(payload.get("message") or "")}


def _apply_accept_offer(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"amount": str(case.offer_amount)}


def _apply_ship(prefix: str) -> Callable[[Case, Mapping[str, Any]], dict[str, Any]]:
    def apply(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
        carrier = _require_text(payload, "carrier", 40)
        tracking = _require_text(payload, "tracking_number", 64)
        if not tracking.replace("-", "").isalnum():
            raise ValidationFailed("tracking number may contain only letters, digits and dashes",
                                   field="tracking_number", code="invalid_tracking_number")
        setattr(case, f"{prefix}_carrier", carrier)
        setattr(case, f"{prefix}_tracking_number", tracking)
        return {"carrier": carrier, "tracking_number": tracking}
    return apply


def _apply_refund(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    # Belt and braces: the tables already let a case reach `refunding` only once.
    if case.refund_amount is not None:
        raise Conflict("already_refunded", "this case has already been refunded",
                       details={"refund_amount": str(case.refund_amount)})
    ceiling = claimed_value(case)
    if payload.get("amount") is not None:
        amount = _require_amount(payload, "amount", maximum=ceiling)
    else:
        amount = case.offer_amount or case.requested_amount or ceiling
        amount = min(amount, ceiling)
    case.refund_amount = amount
    return {"amount": str(amount)}


def _apply_quote(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    case.quote_amount = _require_amount(payload, "amount", maximum=None)
    return {"amount": str(case.quote_amount), "diagnosis": str(payload.get("diagnosis") or "")}


def _apply_inspection(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"notes": str(payload.get("notes") or ""), "grade": str(payload.get("grade") or "")}


def _apply_note(case: Case, payload: Mapping[str, Any]) -> dict[str, Any]:
    note = payload.get("note")
    return {"note": str(note)} if note else {}


ACTION_EFFECTS: dict[str, Callable[[Case, Mapping[str, Any]], dict[str, Any]]] = {
    Action.REJECT: _apply_reject,
    Action.COUNTER_OFFER: _apply_counter_offer,
    Action.ACCEPT_OFFER: _apply_accept_offer,
    Action.SHIP_RETURN: _apply_ship("return"),
    Action.RESHIP: _apply_ship("reship"),
    Action.SHIP_BACK: _apply_ship("reship"),
    Action.REFUND: _apply_refund,
    Action.QUOTE: _apply_quote,
    Action.RECORD_INSPECTION: _apply_inspection,
}


# When the refunds app is installed, money leaves the shop only through its ledger and a payment gateway:
# a person's `refund` asks it to pay (ledger rows now, the gateway after the commit) and leaves the case
# in `refunding`; the system moves the case to `refunded` when the gateway confirms. Without it (the
# cases app alone), `refund` records the amount directly, as before.
RefundRequester = Callable[[Actor, Case, Mapping[str, Any]], None]
_refund_requesters: list[RefundRequester] = []


def register_refund_requester(requester: RefundRequester) -> None:
    if requester not in _refund_requesters:
        _refund_requesters[:] = [requester]


def transition_case(
    *,
    actor: Actor,
    case_id: int,
    action: str,
    outcome: str | None = None,
    payload: Mapping[str, Any] | None = None,
    rule: str = "",
) -> Case:
    """Moves a case by one row of its kind's table, or raises without writing anything.

    The row lock makes two simultaneous moves of one case run one after the other, so the second sees
    the state the first left and is refused if it no longer applies. `rule` names the timeout or
    automation that acted, when the actor is the system.
    """
    payload = payload or {}
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        case.store = Store.objects.get(pk=case.store_id)
        transition: Transition | None = find_transition(case.kind, case.status, action, outcome)
        if transition is None:
            outcomes = outcomes_for(case.kind, case.status, action)
            if outcomes:
                code, message = (("outcome_required", "this action needs an outcome") if outcome is None
                                 else ("invalid_outcome", f"{outcome!r} is not an outcome of {action}"))
                raise ValidationFailed(message, field="outcome", code=code, details={"outcomes": outcomes})
            if outcome is not None and any(t.action == action for t in transitions_from(case.kind, case.status)):
                raise ValidationFailed(f"{action} takes no outcome", field="outcome", code="invalid_outcome",
                                       details={"outcomes": []})
            raise Conflict(
                "action_not_allowed",
                f"{action} is not possible while the case is {case.status}",
                details={"status": case.status, "allowed_actions": allowed_actions(case, actor)},
            )
        if not actor.can(transition.permission):
            raise PermissionDenied(f"{actor.label} may not {action} this case",
                                   details={"permission": transition.permission})
        if transition.needs_platform and not case.store.allows_platform_arbitration:
            raise Conflict("platform_not_available", "this store has no platform to escalate to",
                           details={"status": case.status, "allowed_actions": allowed_actions(case, actor)})
        if action == Action.REFUND and actor.kind != "system" and _refund_requesters:
            # Called under this case's row lock, in this transaction: the request and its ledger rows
            # commit together or not at all.
            _refund_requesters[0](actor, case, payload)
            # The gateway may have confirmed already (a synchronous sandbox): answer with what is stored.
            case.refresh_from_db()
            return case
        effect = ACTION_EFFECTS.get(action, _apply_note)
        data = effect(case, payload)
        if transition.outcome:
            data["outcome"] = transition.outcome
        if rule:
            data["rule"] = rule
        now = clock.now()
        from_status, from_kind = case.status, case.kind
        case.status = transition.target
        if transition.new_kind:
            case.kind = transition.new_kind
            data["converted_from"] = from_kind
        case.updated_at = now
        case.status_changed_at = now
        case.closed_at = now if case.status in Status.TERMINAL else None
        _set_deadline(case, now)
        case.save()
        TimelineEntry.of(case, actor, action, now, from_status=from_status, to_status=case.status, data=data).save()
        sla_services.on_case_event(case=case, event="transitioned", actor=actor, at=now,
                                   data={"action": action, "from_status": from_status, "rule": rule})
        publish("case.transitioned", _event_payload(case, action=action, from_status=from_status,
                                                    actor_kind=actor.kind, rule=rule))
    return case


def post_message(*, actor: Actor, case_id: int, body: str, visibility: str = Visibility.PUBLIC) -> Message:
    if visibility not in Visibility.values:
        raise ValidationFailed("unknown visibility", field="visibility", code="invalid_visibility")
    actor.require(perm.CASE_NOTE if visibility == Visibility.INTERNAL else perm.CASE_REPLY)
    body = body.strip()
    if not body:
        raise ValidationFailed("the message is empty", field="body", code="field_required")
    if len(body) > 10_000:
        raise ValidationFailed("the message is too long", field="body", code="too_long")
    now = clock.now()
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        message = Message.objects.create(
            store_id=case.store_id, case=case, visibility=visibility, author_kind=actor.kind,
            author_label=actor.label, author_user_id=actor.user_id, body=body, created_at=now,
        )
        event = "note" if visibility == Visibility.INTERNAL else "message"
        TimelineEntry.of(case, actor, event, now, data={"message_id": message.pk}).save()
        sla_services.on_case_event(case=case, event="message", actor=actor, at=now, data={"visibility": visibility})
        case.updated_at = now
        case.save(update_fields=["updated_at"])
        publish(f"case.{event}", _event_payload(case, message_id=message.pk, author_kind=actor.kind))
    return message


def add_attachment(*, actor: Actor, case_id: int, content: bytes, filename: str) -> Attachment:
    actor.require(perm.CASE_REPLY if actor.is_buyer else perm.CASE_READ)
    checked = check_upload(content)
    now = clock.now()
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        attachment = Attachment(
            store_id=case.store_id, case=case, original_name=filename[:200], content_type=checked.content_type,
            size=len(content), sha256=checked.sha256, uploaded_by_kind=actor.kind, uploaded_by_label=actor.label,
            created_at=now,
        )
        # The stored name is ours (hash + sniffed extension), never the client's.
        attachment.file.save(f"{checked.sha256[:32]}.{checked.extension}", ContentFile(content), save=False)
        try:
            attachment.save()
            TimelineEntry.of(case, actor, "attachment", now, data={"attachment_id": attachment.pk,
                                                            "content_type": checked.content_type}).save()
        except Exception:
            attachment.file.delete(save=False)
            raise
    return attachment


def assign_case(*, actor: Actor, case_id: int, assignee_id: int | None, rule: str = "") -> Case:
    actor.require(perm.CASE_ASSIGN)
    now = clock.now()
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        if assignee_id is not None and not Membership.objects.filter(store_id=case.store_id, user_id=assignee_id).exists():
            raise ValidationFailed("the assignee is not a member of this store", field="assignee_id",
                                   code="invalid_assignee")
        previous = case.assignee_id
        case.assignee_id = assignee_id
        case.updated_at = now
        case.save(update_fields=["assignee", "updated_at"])
        TimelineEntry.of(case, actor, "assigned", now, data={"from": previous, "to": assignee_id, "rule": rule}).save()
        publish("case.assigned", _event_payload(case, assignee_id=assignee_id))
    return case


def set_priority(*, actor: Actor, case_id: int, priority: int) -> Case:
    actor.require(perm.CASE_DECIDE)
    if priority not in Priority.values:
        raise ValidationFailed("unknown priority", field="priority", code="invalid_priority")
    now = clock.now()
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        previous = case.priority
        case.priority = priority
        case.updated_at = now
        case.save(update_fields=["priority", "updated_at"])
        TimelineEntry.of(case, actor, "priority_changed", now, data={"from": previous, "to": priority}).save()
    return case


def rate_case(*, actor: Actor, case_id: int, rating: int, comment: str = "") -> Case:
    if not actor.is_buyer:
        raise PermissionDenied("only the buyer rates the service")
    if rating not in range(1, 6):
        raise ValidationFailed("rating must be 1 to 5", field="rating", code="invalid_rating")
    now = clock.now()
    with transaction.atomic():
        case = get_case_for_update(actor=actor, case_id=case_id)
        if case.status not in (Status.CLOSED, Status.RESOLVED, Status.REFUNDED, Status.RESHIPPED):
            raise Conflict("not_finished", "a case can be rated once it is finished", details={"status": case.status})
        if case.rating is not None:
            raise Conflict("already_rated", "this case has already been rated")
        case.rating, case.rating_comment = rating, comment[:2000]
        case.save(update_fields=["rating", "rating_comment"])
        TimelineEntry.of(case, actor, "rated", now, data={"rating": rating}).save()
    return case

