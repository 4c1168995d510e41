"""The lifecycle of each case kind, as data.

Each kind has one table of transitions: an action, the states it may start from, the state it leads
to, the permission it needs and, where one action can end in different states (an inspection that
passes or fails), the outcome that selects the row. `transition_case` is the only code that reads
these tables to change a case; the API, the console and `aftersales workflow-diagram` read them to
show what is possible. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aftersales.stores import permissions as perm


class Kind:
    RETURN_REFUND = "return_refund"
    REFUND_ONLY = "refund_only"
    EXCHANGE = "exchange"
    REPAIR = "repair"
    COMPLAINT = "complaint"
    INQUIRY = "inquiry"

    ALL = (RETURN_REFUND, REFUND_ONLY, EXCHANGE, REPAIR, COMPLAINT, INQUIRY)
    LABELS = {
        RETURN_REFUND: ("退货退款", "Return and refund"),
        REFUND_ONLY: ("仅退款", "Refund only"),
        EXCHANGE: ("换货", "Exchange"),
        REPAIR: ("维修 / 保修", "Repair / warranty"),
        COMPLAINT: ("投诉", "Complaint"),
        INQUIRY: ("咨询", "Inquiry"),
    }
    # Kinds that are about goods and money (need order lines); the others are conversations.
    WITH_LINES = (RETURN_REFUND, REFUND_ONLY, EXCHANGE, REPAIR)


class Status:
    SUBMITTED = "submitted"
    PENDING_REVIEW = "pending_review"
    AWAITING_RETURN = "awaiting_return"
    RETURN_IN_TRANSIT = "return_in_transit"
    RECEIVED = "received"
    INSPECTING = "inspecting"
    INSPECTION_FAILED = "inspection_failed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    RESHIPPING = "reshipping"
    RESHIPPED = "reshipped"
    NEGOTIATING = "negotiating"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    IN_ARBITRATION = "in_arbitration"
    AWAITING_DEVICE = "awaiting_device"
    DEVICE_IN_TRANSIT = "device_in_transit"
    DEVICE_RECEIVED = "device_received"
    DIAGNOSING = "diagnosing"
    QUOTE_PENDING = "quote_pending"
    REPAIRING = "repairing"
    REPAIRED = "repaired"
    SHIPPING_BACK = "shipping_back"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"

    LABELS = {
        SUBMITTED: ("已提交", "Submitted"),
        PENDING_REVIEW: ("待商家处理", "Waiting for the shop's review"),
        AWAITING_RETURN: ("待买家退货", "Waiting for the buyer to send the goods back"),
        RETURN_IN_TRANSIT: ("退货运输中", "Return on its way"),
        RECEIVED: ("商家已收货", "Goods received by the shop"),
        INSPECTING: ("验货中", "Inspecting"),
        INSPECTION_FAILED: ("验货未通过", "Inspection failed"),
        REFUNDING: ("退款中", "Refund in progress"),
        REFUNDED: ("已退款", "Refunded"),
        RESHIPPING: ("待发出换货", "Replacement being prepared"),
        RESHIPPED: ("换货已发出", "Replacement shipped"),
        NEGOTIATING: ("协商中", "Negotiating"),
        REJECTED: ("已拒绝", "Rejected"),
        EXPIRED: ("已超时关闭", "Expired"),
        CANCELLED: ("已撤销", "Cancelled"),
        IN_ARBITRATION: ("平台介入中", "Platform arbitration"),
        AWAITING_DEVICE: ("待寄修", "Waiting for the device"),
        DEVICE_IN_TRANSIT: ("设备寄送中", "Device on its way"),
        DEVICE_RECEIVED: ("已收到设备", "Device received"),
        DIAGNOSING: ("检测中", "Diagnosing"),
        QUOTE_PENDING: ("待确认报价", "Waiting for the quote to be accepted"),
        REPAIRING: ("维修中", "Repairing"),
        REPAIRED: ("已修复", "Repaired"),
        SHIPPING_BACK: ("寄回中", "Shipping back"),
        OPEN: ("待受理", "Open"),
        ACKNOWLEDGED: ("已受理", "Acknowledged"),
        IN_PROGRESS: ("处理中", "In progress"),
        WAITING_ON_CUSTOMER: ("等待买家回复", "Waiting on the buyer"),
        RESOLVED: ("已解决", "Resolved"),
        CLOSED: ("已关闭", "Closed"),
    }

    # A case in one of these is finished: it no longer counts against a line's quantity, unless it
    # ended with goods or money moving (refunded, reshipped, closed).
    TERMINAL = frozenset({CLOSED, CANCELLED, EXPIRED})
    # Ended without anything happening: the lines it held are free for a new request.
    VOID = frozenset({CANCELLED, EXPIRED})
    # The clock waits on the buyer, not on the shop.
    WAITING_ON_BUYER = frozenset({AWAITING_RETURN, NEGOTIATING, QUOTE_PENDING, WAITING_ON_CUSTOMER})


class Action:
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    COUNTER_OFFER = "counter_offer"
    ACCEPT_OFFER = "accept_offer"
    DECLINE_OFFER = "decline_offer"
    SHIP_RETURN = "ship_return"
    MARK_RECEIVED = "mark_received"
    START_INSPECTION = "start_inspection"
    RECORD_INSPECTION = "record_inspection"
    REFUND = "refund"
    RESHIP = "reship"
    START_DIAGNOSIS = "start_diagnosis"
    DIAGNOSE = "diagnose"
    QUOTE = "quote"
    ACCEPT_QUOTE = "accept_quote"
    DECLINE_QUOTE = "decline_quote"
    MARK_REPAIRED = "mark_repaired"
    SHIP_BACK = "ship_back"
    CONVERT = "convert"
    ESCALATE = "escalate"
    ARBITRATE = "arbitrate"
    CANCEL = "cancel"
    EXPIRE = "expire"
    ACKNOWLEDGE = "acknowledge"
    START_PROGRESS = "start_progress"
    WAIT_ON_CUSTOMER = "wait_on_customer"
    CUSTOMER_REPLIED = "customer_replied"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str
    permission: str
    outcome: str | None = None
    # Set when the action turns the case into another kind (an unrepairable device becomes an exchange).
    new_kind: str | None = None
    # True when the platform must host arbitration for the store (marketplace or platform mode).
    needs_platform: bool = False


def _t(action: str, sources: Iterable[str] | str, target: str, permission: str, **kwargs: object) -> Transition:
    source_set = frozenset([sources] if isinstance(sources, str) else sources)
    return Transition(action, source_set, target, permission, **kwargs)  # type: ignore[arg-type]


S, A = Status, Action

# What a buyer may back out of: anything before the goods or the money have moved.
_CANCELLABLE_GOODS = (S.SUBMITTED, S.PENDING_REVIEW, S.NEGOTIATING, S.AWAITING_RETURN)



def _review(*, with_inspection: bool) -> list[Transition]:
    """Review and negotiation, shared by the kinds about goods and money. Only kinds that take goods
    back can fail an inspection, so only they counter-offer or escalate from there.

    A case is reopened only from `rejected`: a closed case may have been refunded, and reopening it
    would open the way to paying twice.
    """
    offer_from = (S.PENDING_REVIEW, S.INSPECTION_FAILED) if with_inspection else (S.PENDING_REVIEW,)
    escalate_from = (S.REJECTED, S.NEGOTIATING, *((S.INSPECTION_FAILED,) if with_inspection else ()))
    return [
        _t(A.SUBMIT, S.SUBMITTED, S.PENDING_REVIEW, perm.CASE_SYSTEM),
        _t(A.REJECT, S.PENDING_REVIEW, S.REJECTED, perm.CASE_DECIDE),
        _t(A.COUNTER_OFFER, offer_from, S.NEGOTIATING, perm.CASE_DECIDE),
        _t(A.ACCEPT_OFFER, S.NEGOTIATING, S.REFUNDING, perm.CASE_BUYER),
        _t(A.DECLINE_OFFER, S.NEGOTIATING, S.PENDING_REVIEW, perm.CASE_BUYER),
        _t(A.ESCALATE, escalate_from, S.IN_ARBITRATION, perm.CASE_BUYER, needs_platform=True),
        _t(A.REOPEN, S.REJECTED, S.PENDING_REVIEW, perm.CASE_REOPEN),
    ]


_RETURN_LEG = [
    _t(A.APPROVE, S.PENDING_REVIEW, S.AWAITING_RETURN, perm.CASE_DECIDE),
    _t(A.SHIP_RETURN, S.AWAITING_RETURN, S.RETURN_IN_TRANSIT, perm.CASE_BUYER),
    _t(A.EXPIRE, S.AWAITING_RETURN, S.EXPIRED, perm.CASE_SYSTEM),
    _t(A.MARK_RECEIVED, (S.AWAITING_RETURN, S.RETURN_IN_TRANSIT), S.RECEIVED, perm.CASE_WAREHOUSE),
    _t(A.START_INSPECTION, S.RECEIVED, S.INSPECTING, perm.CASE_WAREHOUSE),
    _t(A.RECORD_INSPECTION, S.INSPECTING, S.INSPECTION_FAILED, perm.CASE_WAREHOUSE, outcome="failed"),
    _t(A.CANCEL, _CANCELLABLE_GOODS, S.CANCELLED, perm.CASE_BUYER),
    _t(A.CLOSE, (S.REJECTED, S.INSPECTION_FAILED), S.CLOSED, perm.CASE_CLOSE),
]

_REFUND_END = [
    _t(A.REFUND, S.REFUNDING, S.REFUNDED, perm.CASE_REFUND),
    _t(A.CLOSE, S.REFUNDED, S.CLOSED, perm.CASE_CLOSE),
]

RETURN_REFUND = [
    *_review(with_inspection=True),
    *_RETURN_LEG,
    _t(A.RECORD_INSPECTION, S.INSPECTING, S.REFUNDING, perm.CASE_WAREHOUSE, outcome="passed"),
    *_REFUND_END,
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.REFUNDING, perm.CASE_ARBITRATE, outcome="refund"),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.AWAITING_RETURN, perm.CASE_ARBITRATE, outcome="return"),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.CLOSED, perm.CASE_ARBITRATE, outcome="reject"),
]

REFUND_ONLY = [
    *_review(with_inspection=False),
    _t(A.APPROVE, S.PENDING_REVIEW, S.REFUNDING, perm.CASE_DECIDE),
    _t(A.CANCEL, (S.SUBMITTED, S.PENDING_REVIEW, S.NEGOTIATING), S.CANCELLED, perm.CASE_BUYER),
    _t(A.CLOSE, S.REJECTED, S.CLOSED, perm.CASE_CLOSE),
    *_REFUND_END,
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.REFUNDING, perm.CASE_ARBITRATE, outcome="refund"),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.CLOSED, perm.CASE_ARBITRATE, outcome="reject"),
]

EXCHANGE = [
    *_review(with_inspection=True),
    *_RETURN_LEG,
    _t(A.RECORD_INSPECTION, S.INSPECTING, S.RESHIPPING, perm.CASE_WAREHOUSE, outcome="passed"),
    _t(A.RESHIP, S.RESHIPPING, S.RESHIPPED, perm.CASE_RESHIP),
    # No replacement can be supplied and the buyer takes the money instead (三包 Art 13): a return.
    _t(A.CONVERT, S.RESHIPPING, S.REFUNDING, perm.CASE_DECIDE, outcome="return", new_kind=Kind.RETURN_REFUND),
    _t(A.CLOSE, S.RESHIPPED, S.CLOSED, perm.CASE_CLOSE),
    # A counter-offer accepted on an exchange is a partial refund instead of the exchange.
    *_REFUND_END[:1],
    _t(A.CLOSE, S.REFUNDED, S.CLOSED, perm.CASE_CLOSE),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.AWAITING_RETURN, perm.CASE_ARBITRATE, outcome="return"),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.RESHIPPING, perm.CASE_ARBITRATE, outcome="reship"),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.CLOSED, perm.CASE_ARBITRATE, outcome="reject"),
]

REPAIR = [
    _t(A.SUBMIT, S.SUBMITTED, S.PENDING_REVIEW, perm.CASE_SYSTEM),
    _t(A.APPROVE, S.PENDING_REVIEW, S.AWAITING_DEVICE, perm.CASE_DECIDE),
    _t(A.REJECT, S.PENDING_REVIEW, S.REJECTED, perm.CASE_DECIDE),
    _t(A.CANCEL, (S.SUBMITTED, S.PENDING_REVIEW, S.AWAITING_DEVICE), S.CANCELLED, perm.CASE_BUYER),
    _t(A.EXPIRE, S.AWAITING_DEVICE, S.EXPIRED, perm.CASE_SYSTEM),
    _t(A.SHIP_RETURN, S.AWAITING_DEVICE, S.DEVICE_IN_TRANSIT, perm.CASE_BUYER),
    _t(A.MARK_RECEIVED, (S.AWAITING_DEVICE, S.DEVICE_IN_TRANSIT), S.DEVICE_RECEIVED, perm.CASE_WAREHOUSE),
    _t(A.START_DIAGNOSIS, S.DEVICE_RECEIVED, S.DIAGNOSING, perm.CASE_REPAIR),
    _t(A.DIAGNOSE, S.DIAGNOSING, S.REPAIRING, perm.CASE_REPAIR, outcome="covered"),
    _t(A.QUOTE, S.DIAGNOSING, S.QUOTE_PENDING, perm.CASE_REPAIR),
    _t(A.ACCEPT_QUOTE, S.QUOTE_PENDING, S.REPAIRING, perm.CASE_BUYER),
    _t(A.DECLINE_QUOTE, S.QUOTE_PENDING, S.SHIPPING_BACK, perm.CASE_BUYER),
    _t(A.MARK_REPAIRED, S.REPAIRING, S.REPAIRED, perm.CASE_REPAIR),
    _t(A.SHIP_BACK, S.REPAIRED, S.SHIPPING_BACK, perm.CASE_REPAIR),
    _t(A.CLOSE, (S.SHIPPING_BACK, S.REJECTED), S.CLOSED, perm.CASE_CLOSE),
    # 三包: an unrepairable device, or a second failed repair, becomes an exchange or a return.
    _t(A.CONVERT, (S.DIAGNOSING, S.REPAIRING), S.RESHIPPING, perm.CASE_REPAIR, outcome="exchange",
       new_kind=Kind.EXCHANGE),
    _t(A.CONVERT, (S.DIAGNOSING, S.REPAIRING), S.REFUNDING, perm.CASE_REPAIR, outcome="return",
       new_kind=Kind.RETURN_REFUND),
    _t(A.ESCALATE, S.REJECTED, S.IN_ARBITRATION, perm.CASE_BUYER, needs_platform=True),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.AWAITING_DEVICE, perm.CASE_ARBITRATE, outcome="repair"),
    _t(A.ARBITRATE, S.IN_ARBITRATION, S.CLOSED, perm.CASE_ARBITRATE, outcome="reject"),
    _t(A.REOPEN, S.REJECTED, S.PENDING_REVIEW, perm.CASE_REOPEN),
]

CONVERSATION = [
    _t(A.ACKNOWLEDGE, S.OPEN, S.ACKNOWLEDGED, perm.CASE_DECIDE),
    _t(A.START_PROGRESS, (S.OPEN, S.ACKNOWLEDGED), S.IN_PROGRESS, perm.CASE_DECIDE),
    _t(A.WAIT_ON_CUSTOMER, S.IN_PROGRESS, S.WAITING_ON_CUSTOMER, perm.CASE_DECIDE),
    _t(A.CUSTOMER_REPLIED, S.WAITING_ON_CUSTOMER, S.IN_PROGRESS, perm.CASE_BUYER),
    _t(A.RESOLVE, (S.OPEN, S.ACKNOWLEDGED, S.IN_PROGRESS, S.WAITING_ON_CUSTOMER), S.RESOLVED, perm.CASE_DECIDE),
    _t(A.REOPEN, (S.RESOLVED, S.CLOSED), S.IN_PROGRESS, perm.CASE_REOPEN),
    _t(A.CLOSE, S.RESOLVED, S.CLOSED, perm.CASE_CLOSE),
    _t(A.CANCEL, (S.OPEN, S.ACKNOWLEDGED, S.IN_PROGRESS, S.WAITING_ON_CUSTOMER), S.CANCELLED, perm.CASE_BUYER),
]

TABLES: dict[str, list[Transition]] = {
    Kind.RETURN_REFUND: RETURN_REFUND,
    Kind.REFUND_ONLY: REFUND_ONLY,
    Kind.EXCHANGE: EXCHANGE,
    Kind.REPAIR: REPAIR,
    Kind.COMPLAINT: CONVERSATION,
    Kind.INQUIRY: CONVERSATION,
}

INITIAL_STATUS = {
    Kind.RETURN_REFUND: S.SUBMITTED,
    Kind.REFUND_ONLY: S.SUBMITTED,
    Kind.EXCHANGE: S.SUBMITTED,
    Kind.REPAIR: S.SUBMITTED,
    Kind.COMPLAINT: S.OPEN,
    Kind.INQUIRY: S.OPEN,
}


def transitions_from(kind: str, status: str) -> list[Transition]:
    return [t for t in TABLES[kind] if status in t.sources]


def find_transition(kind: str, status: str, action: str, outcome: str | None) -> Transition | None:
    """The row for this action from this state. An action with outcomes needs the outcome named; an
    action without them takes none (an outcome given there is a mistake, not something to ignore)."""
    candidates = [t for t in transitions_from(kind, status) if t.action == action]
    if not candidates:
        return None
    if len(candidates) == 1 and candidates[0].outcome is None:
        return candidates[0] if outcome is None else None
    for transition in candidates:
        if transition.outcome == outcome:
            return transition
    return None


def outcomes_for(kind: str, status: str, action: str) -> list[str]:
    return sorted({t.outcome for t in transitions_from(kind, status) if t.action == action and t.outcome})


def states_of(kind: str) -> list[str]:
    """Every state a case of this kind can be in, in the order the table first mentions them."""
    seen: dict[str, None] = {INITIAL_STATUS[kind]: None}
    for transition in TABLES[kind]:
        for source in sorted(transition.sources):
            seen.setdefault(source, None)
        if transition.new_kind is None:  # a converted case lands in the other kind's states
            seen.setdefault(transition.target, None)
    return list(seen)
