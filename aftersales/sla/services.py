"""Every write of the SLA app: clocks moved by case events, the sweep of deadlines and clocks, routing.

The clocks move inside the transaction of the change that moves them (`on_case_event` is called by the
case services after the row is locked and saved), so a case can never be answered with its clock still
running or paused with its clock still counting. The sweep only ever acts on what the database says is
due, re-checked under the case's row lock: a sweep that runs twice, late, or in two workers at once
finds nothing left to do the second time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum

from aftersales.cases import services as case_services
from aftersales.cases.deadlines import next_stage
from aftersales.cases.models import Case, TimelineEntry, Visibility
from aftersales.cases.states import Action, Status, find_transition
from aftersales.core import clock
from aftersales.core.bulk_writes import insert_rows, update_rows
from aftersales.core.errors import DomainError, NotFound, ValidationFailed
from aftersales.core.events import publish_many, publish_on_commit
from aftersales.core.rows import new_row
from aftersales.orders.models import OrderLine
from aftersales.stores import permissions as perm
from aftersales.stores.models import Membership, Role
from aftersales.stores.permissions import Actor

from . import calendars, selectors
from .models import RoutingRule, SlaClock, SlaPolicy, Strategy, Target, TeamMember
from .selectors import timeout_settings_cached

logger = logging.getLogger(__name__)

# A decision answers the buyer as much as a message does; an internal note does not.
DECISIONS = frozenset({
    Action.APPROVE, Action.REJECT, Action.COUNTER_OFFER, Action.ACKNOWLEDGE, Action.START_PROGRESS,
    Action.WAIT_ON_CUSTOMER, Action.RESOLVE, Action.QUOTE, Action.DIAGNOSE, Action.CONVERT, Action.REFUND,
    Action.RESHIP,
})
# Where the shop's work on a case is done (the resolution target is met); a rejection is an answer too.
RESOLVED = frozenset({Status.REFUNDED, Status.RESHIPPED, Status.RESOLVED, Status.CLOSED, Status.SHIPPING_BACK,
                      Status.REJECTED})
# Ended without the shop resolving anything: the clocks stop, neither met nor breached.
VOID = Status.VOID
# Open cases, for the load of an agent: anything not finished.
FINISHED = frozenset(Status.TERMINAL | RESOLVED | {Status.REFUNDED})


def _system(store_id: int, label: str) -> Actor:
    return perm.system_actor(store_id, label)


def _entry(case: Case, event: str, at: dt.datetime, data: Mapping[str, Any], label: str = "SLA") -> TimelineEntry:
    return TimelineEntry.of(case, perm.system_actor(case.store_id, label), event, at, data=data)


def _payload(case: Case, **extra: Any) -> dict[str, Any]:
    return {"store_id": case.store_id, "case_id": case.pk, "number": case.number, "kind": case.kind,
            "status": case.status, **extra}


# --- clocks ---------------------------------------------------------------------------------------------

class _Calendar:
    """The store's calendar, read once per event and only if a clock needs it."""

    def __init__(self, store_id: int) -> None:
        self.store_id = store_id
        self._value: calendars.Calendar | None = None

    def get(self) -> calendars.Calendar:
        if self._value is None:
            self._value = selectors.calendar_for(store_id=self.store_id)
        return self._value


class _Writes:
    """Where the clock changes of an event go: saved at once for one case, or, in a sweep moving many
    cases (`BulkClocks`), collected and written with one statement per kind of write."""

    def __init__(self, *, bulk: bool = False) -> None:
        self.bulk = bulk
        self.created: dict[int, SlaClock] = {}
        self.changed: dict[int, SlaClock] = {}

    def save(self, row: SlaClock) -> None:
        if not self.bulk:
            row.save()
        elif row.pk is None:
            self.created[id(row)] = row
        else:
            self.changed[row.pk] = row

    def flush(self) -> None:
        # The updates first: a clock restarted on a target stops the old one, and only one may be live.
        if self.changed:

            update_rows(SlaClock, list(self.changed.values()), _CLOCK_FIELDS)
        if self.created:
            SlaClock.objects.bulk_create(list(self.created.values()))
        self.created, self.changed = {}, {}


_CLOCK_FIELDS = ["consumed_seconds", "running_since", "due_at", "warn_at", "breached_at", "breach_assignee",
                 "met_at", "met_by", "stopped_at"]


def _schedule(clock_row: SlaClock, cal: _Calendar, at: dt.datetime) -> None:
    """Sets when a running clock warns and breaches, from what it has left."""
    business = clock_row.business_time
    calendar = cal.get() if business else calendars.Calendar()
    clock_row.running_since = at
    clock_row.due_at = calendars.add_time(calendar, at, clock_row.budget_seconds - clock_row.consumed_seconds,
                                          business=business)
    if clock_row.warned_at is None and clock_row.consumed_seconds < clock_row.warn_seconds:
        clock_row.warn_at = calendars.add_time(calendar, at, clock_row.warn_seconds - clock_row.consumed_seconds,
                                               business=business)
    else:
        clock_row.warn_at = None


def _consume(clock_row: SlaClock, cal: _Calendar, at: dt.datetime) -> None:
    if clock_row.running_since is None:
        return
    calendar = cal.get() if clock_row.business_time else calendars.Calendar()
    clock_row.consumed_seconds += calendars.elapsed(calendar, clock_row.running_since, at,
                                                    business=clock_row.business_time)
    clock_row.running_since = None


def _start(case: Case, policy: SlaPolicy, target: str, minutes: int, cal: _Calendar, at: dt.datetime,
           writes: _Writes) -> SlaClock:
    budget = minutes * 60
    row = new_row(SlaClock, store_id=case.store_id, case=case, policy=policy, target=target,
                  business_time=policy.business_time, budget_seconds=budget,
                  warn_seconds=budget * policy.warn_at_percent // 100, started_at=at)
    _schedule(row, cal, at)
    if case.status in Status.WAITING_ON_BUYER:
        _consume(row, cal, at)
        row.due_at = row.warn_at = None
    writes.save(row)
    return row


def _record_late_breach(clock_row: SlaClock, case: Case, at: dt.datetime) -> None:
    """A clock stopped or paused after it ran out, before a sweep saw it: the breach is recorded at the
    moment it happened, with the owner of now (nobody else can have touched it in between)."""
    if clock_row.breached_at is None and clock_row.consumed_seconds >= clock_row.budget_seconds:
        clock_row.breached_at = min(clock_row.due_at or at, at)
        clock_row.breach_assignee_id = case.assignee_id


def _meet(clock_row: SlaClock, case: Case, cal: _Calendar, at: dt.datetime, user_id: int | None,
          writes: _Writes) -> None:
    _consume(clock_row, cal, at)
    _record_late_breach(clock_row, case, at)
    clock_row.met_at = clock_row.stopped_at = at
    clock_row.met_by_id = user_id or case.assignee_id
    clock_row.due_at = clock_row.warn_at = None
    writes.save(clock_row)


def _stop(clock_row: SlaClock, case: Case, cal: _Calendar, at: dt.datetime, writes: _Writes) -> None:
    _consume(clock_row, cal, at)
    _record_late_breach(clock_row, case, at)
    clock_row.stopped_at = at
    clock_row.due_at = clock_row.warn_at = None
    writes.save(clock_row)


def _live(case: Case) -> dict[str, SlaClock]:
    return {row.target: row for row in
            SlaClock.objects.select_for_update().filter(store_id=case.store_id, case_id=case.pk,
                                                        stopped_at__isnull=True)}


def _policy_for(case: Case) -> SlaPolicy | None:
    tier = case.buyer.tier if case.buyer_id else ""
    return selectors.matching_policy(store_id=case.store_id, kind=case.kind, priority=case.priority,
                                     channel=case.channel, buyer_tier=tier)


def on_case_event(*, case: Case, event: str, actor: Actor, at: dt.datetime,
                  data: Mapping[str, Any] | None = None) -> None:
    """Moves the case's clocks for one change. Called by the case services inside their transaction,
    with the case row locked: `event` is "created", "transitioned", "message" or "assigned"."""
    if event == "assigned":
        return  # the owner is read from the case when a clock breaches; nothing to move
    live: dict[str, SlaClock] = {} if event == "created" else _live(case)
    _move(case=case, event=event, actor=actor, at=at, data=data or {}, live=live, cal=_Calendar(case.store_id),
          writes=_Writes())


class BulkClocks:
    """The clocks of many cases of one store moved by one sweep, whose case rows the caller has locked: the
    live clocks are read in one query, each change is worked out by the same code as for one case (`_move`), and `flush` writes
    them in a statement per kind of write."""

    def __init__(self, *, store_id: int, case_ids: Iterable[int]) -> None:
        self.cal = _Calendar(store_id)
        self.writes = _Writes(bulk=True)
        self.live: dict[int, dict[str, SlaClock]] = defaultdict(dict)
        # Not locked again: whatever moves a clock locks its case first, and these cases are locked.
        for row in SlaClock.objects.filter(store_id=store_id, case_id__in=list(case_ids), stopped_at__isnull=True):
            self.live[row.case_id][row.target] = row

    def on_case_event(self, *, case: Case, event: str, actor: Actor, at: dt.datetime,
                      data: Mapping[str, Any]) -> None:
        live = self.live[case.pk]
        _move(case=case, event=event, actor=actor, at=at, data=data, live=live, cal=self.cal, writes=self.writes)
        # What is live after this change, for the case's next change in the same sweep.
        current = {row.target: row for row in [*live.values(), *self.writes.created.values()]
                   if row.case_id == case.pk and row.stopped_at is None}
        live.clear()
        live.update(current)

    def flush(self) -> None:
        self.writes.flush()


def _move(*, case: Case, event: str, actor: Actor, at: dt.datetime, data: Mapping[str, Any],
          live: dict[str, SlaClock], cal: _Calendar, writes: _Writes) -> None:
    live = dict(live)  # popped as the clocks are dealt with; the caller's view is rebuilt by the caller
    if event == "created":
        policy = _policy_for(case)
        if policy is not None:
            _open_clocks(case, policy, cal, at, writes)
        return
    action = str(data.get("action", ""))
    if event == "transitioned" and action == Action.REOPEN:
        # A reopened case is a new request to the shop: whatever ran before ends here, and its policy's
        # first response and resolution start again from now.
        for row in live.values():
            _stop(row, case, cal, at, writes)
        policy = _policy_for(case)
        if policy is not None:
            _start_clocks(case, policy, cal, at, writes, {})
        return
    if not live and event != "message":
        if event == "transitioned" and data.get("from_status") in RESOLVED and case.status not in RESOLVED:
            _restart_resolution(case, cal, at, writes)
        return
    if event == "message":
        _on_message(case, actor, live, cal, at, data, writes)
        return
    if action in DECISIONS and not actor.is_buyer:
        for target in (Target.FIRST_RESPONSE, Target.NEXT_RESPONSE):
            if target in live:
                if actor.kind == "system" and data.get("rule"):
                    _stop(live.pop(target), case, cal, at, writes)  # the platform answered, not the shop
                else:
                    _meet(live.pop(target), case, cal, at, actor.user_id, writes)
    if case.status in VOID:
        for row in live.values():
            _stop(row, case, cal, at, writes)
        return
    if case.status in RESOLVED and Target.RESOLUTION in live:
        _meet(live.pop(Target.RESOLUTION), case, cal, at, actor.user_id if not actor.is_buyer else None, writes)
    _sync_pause(case, live, cal, at, writes)


def _open_clocks(case: Case, policy: SlaPolicy, cal: _Calendar, at: dt.datetime, writes: _Writes) -> None:
    live: dict[str, SlaClock] = {}
    _start_clocks(case, policy, cal, at, writes, live)
    if case.status not in (Status.PENDING_REVIEW, Status.OPEN, Status.SUBMITTED) and Target.FIRST_RESPONSE in live:
        # Decided the moment it arrived (the store lets the policy engine approve): that is the answer.
        _meet(live[Target.FIRST_RESPONSE], case, cal, at, None, writes)


def clocks_for_new_case(*, case: Case, at: dt.datetime, policies: Sequence[SlaPolicy]) -> list[SlaClock]:
    """The clocks a new case starts, unsaved, for a caller that writes them together with the case and
    has read the store's active policies (in position order) already. The same rules as
    `on_case_event(event="created")`."""
    tier = case.buyer.tier if case.buyer_id else ""
    policy = selectors.first_matching(policies, kind=case.kind, priority=case.priority, channel=case.channel,
                                      buyer_tier=tier)
    if policy is None:
        return []
    writes = _Writes(bulk=True)
    _open_clocks(case, policy, _Calendar(case.store_id), at, writes)
    return list(writes.created.values())


def _start_clocks(case: Case, policy: SlaPolicy, cal: _Calendar, at: dt.datetime, writes: _Writes,
                  live: dict[str, SlaClock]) -> None:
    if policy.first_response_minutes:
        live[Target.FIRST_RESPONSE] = _start(case, policy, Target.FIRST_RESPONSE, policy.first_response_minutes,
                                             cal, at, writes)
    if policy.resolution_minutes:
        live[Target.RESOLUTION] = _start(case, policy, Target.RESOLUTION, policy.resolution_minutes, cal, at,
                                         writes)


def _restart_resolution(case: Case, cal: _Calendar, at: dt.datetime, writes: _Writes) -> None:
    policy = _policy_for(case)
    if policy is not None and policy.resolution_minutes:
        _start(case, policy, Target.RESOLUTION, policy.resolution_minutes, cal, at, writes)


def _on_message(case: Case, actor: Actor, live: dict[str, SlaClock], cal: _Calendar, at: dt.datetime,
                data: Mapping[str, Any], writes: _Writes) -> None:
    if data.get("visibility") != Visibility.PUBLIC:
        return  # an internal note answers nobody
    if not actor.is_buyer:
        for target in (Target.FIRST_RESPONSE, Target.NEXT_RESPONSE):
            if target in live:
                _meet(live.pop(target), case, cal, at, actor.user_id, writes)
        return
    if Target.FIRST_RESPONSE in live or Target.NEXT_RESPONSE in live or case.status in FINISHED:
        return  # the shop still owes its first answer, or already owes the next one
    policy = _policy_for(case)
    if policy is not None and policy.next_response_minutes:
        _start(case, policy, Target.NEXT_RESPONSE, policy.next_response_minutes, cal, at, writes)


def _sync_pause(case: Case, live: Mapping[str, SlaClock], cal: _Calendar, at: dt.datetime, writes: _Writes) -> None:
    waiting = case.status in Status.WAITING_ON_BUYER
    for row in live.values():
        if waiting and row.running_since is not None:
            _consume(row, cal, at)
            _record_late_breach(row, case, at)
            row.due_at = row.warn_at = None
            writes.save(row)
        elif not waiting and row.running_since is None:
            _schedule(row, cal, at)
            writes.save(row)


# --- the sweep ------------------------------------------------------------------------------------------

# What each timeout does, as steps through the case's own table. Steps are taken while the table allows
# them, so "the shop never confirmed the return" walks received → inspection passed (and so to the
# refund or the reshipment) for goods, and stops at "device received" for a repair.
TIMEOUT_STEPS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "shop_review_timeout.auto_approve": ((Action.APPROVE, None),),
    "buyer_ship_timeout.expire": ((Action.EXPIRE, None),),
    "shop_confirm_timeout.auto_receive": ((Action.MARK_RECEIVED, None), (Action.START_INSPECTION, None),
                                          (Action.RECORD_INSPECTION, "passed")),
    "buyer_offer_timeout.decline": ((Action.DECLINE_OFFER, None),),
    "buyer_quote_timeout.decline": ((Action.DECLINE_QUOTE, None),),
    "escalation_window.close": ((Action.CLOSE, None),),
}
# Deadlines that only raise the alarm: the case stays where it is and the next stage is set.
ALERTS = {
    "refund_due.alert": "refund_due_soon",
    "refund_due.statutory_7_days": "refund_overdue",
    "refund_due.violation_15_days": "refund_violation",
    "first_response.due": "first_response_overdue",
}


# Due cases acted on in one transaction. The cases of a batch are grouped by store and rule, and each
# group costs a few statements whatever its size: the bigger the batch, the bigger the groups (a backlog
# over ten stores and three rules makes thirty of them). 5,000 take about two seconds on a loaded
# PostgreSQL, the longest a person acting on one of those cases may wait for its row lock.
SWEEP_BATCH = 5000


@dataclass
class SweepResult:
    acted: int = 0
    skipped: int = 0
    failed: int = 0
    warned: int = 0
    breached: int = 0
    actions: list[tuple[int, str]] = field(default_factory=list)


def apply_timeout(*, store_id: int, case_id: int, rule: str, now: dt.datetime | None = None) -> bool:
    """Acts on one due deadline. Returns False, changing nothing, if the case has moved on since it was
    found (someone acted, another sweep got there first, the deadline was moved)."""
    now = now or clock.now()
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(store_id=store_id, pk=case_id).first()
        if case is None or case.deadline_rule != rule or case.deadline_at is None or case.deadline_at > now:
            return False
        if rule in ALERTS:
            _raise_alert(case, rule, now)
            return True
        steps = TIMEOUT_STEPS.get(rule)
        if steps is None:
            raise ValidationFailed(f"no action is defined for the deadline {rule!r}", code="unknown_deadline_rule")
        system = _system(store_id, f"timeout: {rule}")
        moved = False
        for action, outcome in steps:
            if find_transition(case.kind, case.status, action, outcome) is None:
                break
            case = case_services.transition_case(actor=system, case_id=case_id, action=action, outcome=outcome,
                                                 rule=rule)
            moved = True
        if not moved:
            raise DomainError("timeout_not_applicable", f"{rule} cannot act while the case is {case.status}",
                              status=409)
    return True


def _raise_alert(case: Case, rule: str, now: dt.datetime) -> None:
    platform_mode, overrides = selectors.timeout_settings(store_id=case.store_id)
    deadline_at, deadline_rule = next_stage(case.status, rule, case.status_changed_at, platform_mode=platform_mode,
                                            overrides=overrides)
    Case.objects.filter(store_id=case.store_id, pk=case.pk).update(deadline_at=deadline_at,
                                                                   deadline_rule=deadline_rule)
    event = ALERTS[rule]
    _entry(case, event, now, {"rule": rule, "due_at": case.deadline_at.isoformat() if case.deadline_at else None},
           label=f"timeout: {rule}").save()
    publish_on_commit(f"case.{event}", _payload(case, rule=rule))


def due_deadlines(*, now: dt.datetime, after: tuple[dt.datetime, int] | None, limit: int) -> list[tuple[Any, ...]]:
    """The next `limit` due deadlines in (deadline_at, id) order after the last one seen: a range scan of
    the partial index on deadline_at, whatever the number of open cases. Across stores: the sweep is
    the one reader that serves every store, and acts on each case in its own store's name."""
    due = Case.objects.filter(deadline_at__lte=now)
    if after is not None:
        due = due.filter(Q(deadline_at__gt=after[0]) | Q(deadline_at=after[0], pk__gt=after[1]))
    return list(due.order_by("deadline_at", "pk").values_list("deadline_at", "pk", "store_id", "deadline_rule")[:limit])


def apply_timeouts(*, items: Iterable[tuple[int, int, str]], now: dt.datetime | None = None,
                   after_each: Callable[[int], None] | None = None, bulk: bool = True) -> SweepResult:
    """Acts on a batch of (store id, case id, rule), as found due. One transaction for the batch: a commit
    per case costs more than the case itself, and if the process dies half-way the whole batch is undone
    and found again by the next sweep, so no case is left half-moved.

    The cases of one store due under one rule are moved together (`aftersales.cases.bulk`), in a savepoint
    per group; a group that fails is retried case by case, and a case that cannot be acted on is logged
    and left for the next sweep, without stopping the others. `bulk=False` moves every case through
    `transition_case` on its own (the path the bulk one is tested against)."""
    now = now or clock.now()
    items = list(items)
    result = SweepResult()
    acted: set[tuple[int, str]] = set()
    with timeout_settings_cached(), transaction.atomic():
        if not bulk:
            for store_id, case_id, rule in items:
                _apply_one(store_id, case_id, rule, now, result, acted)
                if after_each is not None:
                    after_each(case_id)
        else:
            groups: dict[tuple[int, str], list[int]] = defaultdict(list)
            for store_id, case_id, rule in items:
                groups[(store_id, rule)].append(case_id)
            for (store_id, rule), case_ids in groups.items():
                _apply_group(store_id, rule, case_ids, now, result, acted)
                if after_each is not None:
                    for case_id in case_ids:
                        after_each(case_id)
    # In the order they were found, as one by one.
    result.actions = [(case_id, rule) for _, case_id, rule in items if (case_id, rule) in acted]
    return result


def _apply_one(store_id: int, case_id: int, rule: str, now: dt.datetime, result: SweepResult,
               acted: set[tuple[int, str]]) -> None:
    try:
        moved = apply_timeout(store_id=store_id, case_id=case_id, rule=rule, now=now)
    except DomainError:
        logger.exception("sla sweep: %s on case %s failed", rule, case_id)
        result.failed += 1
        return
    if moved:
        result.acted += 1
        acted.add((case_id, rule))
    else:
        result.skipped += 1


def _apply_group(store_id: int, rule: str, case_ids: list[int], now: dt.datetime, result: SweepResult,
                 acted: set[tuple[int, str]]) -> None:
    """One store's cases due under one rule, in a few statements whatever their number."""
    from aftersales.cases import bulk

    fallback: list[int] = []
    try:
        with transaction.atomic():
            cases = bulk.lock_due(store_id=store_id, case_ids=case_ids, rule=rule, now=now)
            if rule in ALERTS:
                _raise_alerts(store_id, cases, rule, now)
                moved = cases
            else:
                steps = TIMEOUT_STEPS.get(rule)
                if steps is None:
                    raise ValidationFailed(f"no action is defined for the deadline {rule!r}",
                                           code="unknown_deadline_rule")
                done = bulk.transition_many(actor=_system(store_id, f"timeout: {rule}"), cases=cases, steps=steps,
                                            rule=rule, now=clock.now())
                moved = done.moved
                fallback = [case.pk for case in done.fallback]
                for case in done.stuck:
                    logger.error("sla sweep: %s cannot act while case %s is %s", rule, case.pk, case.status)
                result.failed += len(done.stuck)
    except DomainError:
        logger.exception("sla sweep: %s on %s cases of store %s failed together; one by one now", rule,
                         len(case_ids), store_id)
        for case_id in case_ids:
            _apply_one(store_id, case_id, rule, now, result, acted)
        return
    result.acted += len(moved)
    acted.update((case.pk, rule) for case in moved)
    result.skipped += len(case_ids) - len(cases)
    for case_id in fallback:  # a step with side effects of its own: through transition_case
        _apply_one(store_id, case_id, rule, now, result, acted)


def _raise_alerts(store_id: int, cases: list[Case], rule: str, now: dt.datetime) -> None:
    """`_raise_alert` for many cases of one store at once."""

    if not cases:
        return
    platform_mode, overrides = selectors.timeout_settings(store_id=store_id)
    event = ALERTS[rule]
    label = f"timeout: {rule}"
    entries = [_entry(case, event, now, {"rule": rule, "due_at": case.deadline_at.isoformat() if case.deadline_at
                                         else None}, label=label) for case in cases]
    for case in cases:
        case.deadline_at, case.deadline_rule = next_stage(case.status, rule, case.status_changed_at,
                                                          platform_mode=platform_mode, overrides=overrides)
    update_rows(Case, cases, ["deadline_at", "deadline_rule"])
    insert_rows(TimelineEntry, entries)
    publish_many(f"case.{event}", [_payload(case, rule=rule) for case in cases])


def due_batches(*, now: dt.datetime, batch: int = SWEEP_BATCH) -> Iterator[list[tuple[int, int, str]]]:
    """Every deadline due at `now`, in batches of (store id, case id, rule), in deadline order."""
    cursor: tuple[dt.datetime, int] | None = None
    while rows := due_deadlines(now=now, after=cursor, limit=batch):
        cursor = (rows[-1][0], rows[-1][1])
        yield [(store_id, case_id, rule) for _, case_id, store_id, rule in rows]


def sweep_timeouts(*, now: dt.datetime | None = None, batch: int = SWEEP_BATCH,
                   after_each: Callable[[int], None] | None = None, bulk: bool = True) -> SweepResult:
    """Acts, in this process, on every deadline due at `now`.

    The pages are read after the previous batch committed and continue past the last deadline seen, not
    "until a page comes back short": an alert moves its case to a later stage that may be due already,
    and a late sweep catches up every stage in the one run."""
    now = now or clock.now()
    total = SweepResult()
    # An alert's next stage may fall due before the last deadline already read, behind the pages: then
    # another pass. A state has at most three stages, so this ends.
    for _ in range(4):
        staged = False
        for items in due_batches(now=now, batch=batch):
            part = apply_timeouts(items=items, now=now, after_each=after_each, bulk=bulk)
            total.acted += part.acted
            total.skipped += part.skipped
            total.failed += part.failed
            total.actions.extend(part.actions)
            staged = staged or any(rule in ALERTS for _, rule in part.actions)
        if not staged:
            break
    return total


def warn_clock(*, clock_id: int, now: dt.datetime | None = None) -> bool:
    now = now or clock.now()
    with transaction.atomic():
        row = SlaClock.objects.filter(pk=clock_id).values_list("store_id", "case_id").first()
        if row is None:
            return False
        case = Case.objects.select_for_update().get(store_id=row[0], pk=row[1])
        clock_row = SlaClock.objects.select_for_update().get(pk=clock_id)
        if (clock_row.stopped_at is not None or clock_row.warned_at is not None or clock_row.warn_at is None
                or clock_row.warn_at > now):
            return False
        clock_row.warned_at = now
        clock_row.warn_at = None
        clock_row.save(update_fields=["warned_at", "warn_at"])
        _entry(case, "sla_warning", now, {"target": clock_row.target,
                                          "due_at": clock_row.due_at.isoformat() if clock_row.due_at else None}).save()
        publish_on_commit("sla.warning", _payload(case, target=clock_row.target, assignee_id=case.assignee_id))
    return True


def _supervisor_for(store_id: int, policy_id: int | None) -> int | None:
    if policy_id is not None:
        chosen = SlaPolicy.objects.filter(store_id=store_id, pk=policy_id).values_list("escalate_to_id", flat=True).first()
        if chosen:
            return int(chosen)
    for role in (Role.SUPERVISOR, Role.ADMIN):
        user_id = (Membership.objects.filter(store_id=store_id, role=role, is_away=False)
                   .order_by("id").values_list("user_id", flat=True).first())
        if user_id is not None:
            return int(user_id)
    return None


def breach_clock(*, clock_id: int, now: dt.datetime | None = None) -> bool:
    """Records a breach (when, and whose case it was), and escalates to a supervisor."""
    now = now or clock.now()
    with transaction.atomic():
        row = SlaClock.objects.filter(pk=clock_id).values_list("store_id", "case_id").first()
        if row is None:
            return False
        case = Case.objects.select_for_update().get(store_id=row[0], pk=row[1])
        clock_row = SlaClock.objects.select_for_update().get(pk=clock_id)
        if (clock_row.stopped_at is not None or clock_row.breached_at is not None or clock_row.due_at is None
                or clock_row.due_at > now or clock_row.running_since is None):
            return False
        clock_row.breached_at = clock_row.due_at
        clock_row.breach_assignee_id = case.assignee_id
        clock_row.save(update_fields=["breached_at", "breach_assignee"])
        supervisor = _supervisor_for(case.store_id, clock_row.policy_id)
        data = {"target": clock_row.target, "breached_at": clock_row.breached_at.isoformat(),
                "assignee_id": case.assignee_id}
        _entry(case, "sla_breached", now, data).save()
        _entry(case, "sla_escalated", now, {"target": clock_row.target, "to": supervisor}).save()
        publish_on_commit("sla.breached", _payload(case, **data))
        publish_on_commit("sla.escalated", _payload(case, target=clock_row.target, supervisor_id=supervisor))
    return True


def sweep_clocks(*, now: dt.datetime | None = None, batch: int = 500, bulk: bool = True) -> SweepResult:
    """Warnings, then breaches, of every clock whose moment has come. Each page of clocks is dealt with
    a store at a time in a few statements (`_warn_many`, `_breach_many`); `bulk=False` one clock at a
    time (`warn_clock`, `breach_clock`), the path the bulk one is tested against."""
    now = now or clock.now()
    result = SweepResult()
    for field_name, act, act_many in (("warn_at", warn_clock, _warn_many), ("due_at", breach_clock, _breach_many)):
        live = SlaClock.objects.filter(stopped_at__isnull=True, **{f"{field_name}__lte": now})
        unset = "warned_at" if field_name == "warn_at" else "breached_at"
        live = live.filter(**{f"{unset}__isnull": True})
        last_id = 0
        while True:
            page = list(live.filter(pk__gt=last_id).order_by("pk").values_list("pk", "store_id")[:batch])
            if bulk:
                stores: dict[int, list[int]] = defaultdict(list)
                for clock_id, store_id in page:
                    stores[store_id].append(clock_id)
                done = sum(act_many(store_id=store_id, clock_ids=ids, now=now) for store_id, ids in stores.items())
            else:
                done = sum(act(clock_id=clock_id, now=now) for clock_id, _ in page)
            if field_name == "warn_at":
                result.warned += done
            else:
                result.breached += done
            if len(page) < batch:
                break
            last_id = page[-1][0]
    return result


def _lock_clocks(store_id: int, clock_ids: list[int]) -> tuple[dict[int, Case], list[SlaClock]]:
    """The cases, then the clocks, locked in that order as one clock's warning or breach locks them."""
    case_ids = set(SlaClock.objects.filter(store_id=store_id, pk__in=clock_ids).values_list("case_id", flat=True))
    cases = {case.pk: case for case in Case.objects.select_for_update().filter(store_id=store_id, pk__in=case_ids)
             .order_by("pk")}
    rows = list(SlaClock.objects.select_for_update().filter(store_id=store_id, pk__in=clock_ids).order_by("pk"))
    return cases, rows


def _warn_many(*, store_id: int, clock_ids: list[int], now: dt.datetime) -> int:
    """`warn_clock` for many clocks of one store."""

    with transaction.atomic():
        cases, rows = _lock_clocks(store_id, clock_ids)
        due = [row for row in rows if row.stopped_at is None and row.warned_at is None and row.warn_at is not None
               and row.warn_at <= now]
        entries, events = [], []
        for row in due:
            row.warned_at, row.warn_at = now, None
            case = cases[row.case_id]
            entries.append(_entry(case, "sla_warning", now, {
                "target": row.target, "due_at": row.due_at.isoformat() if row.due_at else None}))
            events.append(_payload(case, target=row.target, assignee_id=case.assignee_id))
        update_rows(SlaClock, due, ["warned_at", "warn_at"])
        insert_rows(TimelineEntry, entries)
        publish_many("sla.warning", events)
    return len(due)


def _breach_many(*, store_id: int, clock_ids: list[int], now: dt.datetime) -> int:
    """`breach_clock` for many clocks of one store."""

    with transaction.atomic():
        cases, rows = _lock_clocks(store_id, clock_ids)
        due = [row for row in rows if row.stopped_at is None and row.breached_at is None and row.due_at is not None
               and row.due_at <= now and row.running_since is not None]
        supervisors: dict[int | None, int | None] = {}
        entries, breached, escalated = [], [], []
        for row in due:
            case = cases[row.case_id]
            row.breached_at, row.breach_assignee_id = row.due_at, case.assignee_id
            if row.policy_id not in supervisors:
                supervisors[row.policy_id] = _supervisor_for(store_id, row.policy_id)
            supervisor = supervisors[row.policy_id]
            assert row.breached_at is not None
            data = {"target": row.target, "breached_at": row.breached_at.isoformat(), "assignee_id": case.assignee_id}
            entries.append(_entry(case, "sla_breached", now, data))
            entries.append(_entry(case, "sla_escalated", now, {"target": row.target, "to": supervisor}))
            breached.append(_payload(case, **data))
            escalated.append(_payload(case, target=row.target, supervisor_id=supervisor))
        update_rows(SlaClock, due, ["breached_at", "breach_assignee"])
        insert_rows(TimelineEntry, entries)
        publish_many("sla.breached", breached)
        publish_many("sla.escalated", escalated)
    return len(due)


def sweep(*, now: dt.datetime | None = None) -> SweepResult:
    """The periodic job: platform timeouts first (they may stop clocks), then SLA warnings and breaches."""
    now = now or clock.now()
    result = sweep_timeouts(now=now)
    clocks = sweep_clocks(now=now)
    result.warned, result.breached = clocks.warned, clocks.breached
    return result


# --- routing --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseFacts:
    kind: str
    reason: str
    channel: str
    language: str
    sku_categories: frozenset[str]
    priority: int
    buyer_tier: str


def _facts(case: Case) -> CaseFacts:
    categories = frozenset(OrderLine.objects.filter(store_id=case.store_id, case_lines__case_id=case.pk)
                           .values_list("category", flat=True))
    return CaseFacts(kind=case.kind, reason=case.reason.code if case.reason_id and case.reason else "",
                     channel=case.channel, language=case.buyer.language, sku_categories=categories,
                     priority=case.priority, buyer_tier=case.buyer.tier)


def rule_matches(rule: RoutingRule, facts: CaseFacts) -> bool:
    def allows(values: Iterable[Any], value: Any) -> bool:
        values = list(values)
        return not values or value in values

    return (allows(rule.kinds, facts.kind) and allows(rule.reasons, facts.reason)
            and allows(rule.channels, facts.channel) and allows(rule.languages, facts.language)
            and allows(rule.priorities, facts.priority) and allows(rule.buyer_tiers, facts.buyer_tier)
            and (not rule.sku_categories or bool(facts.sku_categories & set(rule.sku_categories))))


def agent_loads(*, store_id: int, user_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """user id -> (open cases, open cases weighted by priority)."""
    rows = (Case.objects.filter(store_id=store_id, assignee_id__in=list(user_ids))
            .exclude(status__in=FINISHED).values("assignee_id")
            .annotate(n=Count("id"), weight=Sum("priority")).order_by())
    return {row["assignee_id"]: (row["n"], row["weight"] or 0) for row in rows}


def pick_agent(rule: RoutingRule) -> int | None:
    members = (TeamMember.objects.filter(store_id=rule.store_id, team_id=rule.team_id)
               .order_by("user_id").values_list("user_id", "skills"))
    present = set(Membership.objects.filter(store_id=rule.store_id, is_away=False)
                  .values_list("user_id", flat=True))
    candidates = [user_id for user_id, skills in members if user_id in present
                  and (rule.strategy != Strategy.SKILLS or set(rule.required_skills) <= set(skills or []))]
    loads = agent_loads(store_id=rule.store_id, user_ids=candidates)
    candidates = [u for u in candidates if loads.get(u, (0, 0))[0] < rule.max_open_per_agent]
    if not candidates:
        return None
    if rule.strategy == Strategy.ROUND_ROBIN:
        after = [u for u in candidates if rule.last_assigned_user_id is not None and u > rule.last_assigned_user_id]
        return after[0] if after else candidates[0]
    return min(candidates, key=lambda u: (loads.get(u, (0, 0))[1], loads.get(u, (0, 0))[0], u))


def route_case(*, store_id: int, case_id: int) -> int | None:
    """Assigns a new, unassigned case by the store's routing rules. Returns who got it, or None. Safe to
    run again: a case that already has an owner is left alone."""
    rules = list(RoutingRule.objects.filter(store_id=store_id, active=True).order_by("position", "id"))
    if not rules:
        return None  # most stores route by hand: no locks, no reads
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",)).filter(store_id=store_id, pk=case_id).select_related(
            "buyer", "reason").first()
        if case is None:
            raise NotFound("case")
        if case.assignee_id is not None or case.status in FINISHED:
            return None
        facts = _facts(case)
        for rule in rules:
            if not rule_matches(rule, facts):
                continue
            # The rule's row lock serialises two routings on one rule, so round robin never deals twice.
            rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
            user_id = pick_agent(rule)
            if user_id is None:
                continue  # everyone in that team is away or full: the next rule may still place it
            case_services.assign_case(actor=_system(store_id, f"routing: {rule.name}"), case_id=case_id,
                                      assignee_id=user_id, rule=f"routing.{rule.pk}:{rule.name}")
            rule.last_assigned_user_id = user_id
            rule.save(update_fields=["last_assigned_user"])
            return user_id
    return None


# --- configuration --------------------------------------------------------------------------------------

def save_calendar(*, actor: Actor, hours: Mapping[str, list[list[str]]], timezone: str = "",
                  holiday_country: str = "CN", holiday_subdivision: str = "") -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .models import BusinessCalendar

    actor.require(perm.STORE_ADMIN)
    try:
        calendars.parse_hours(hours)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(str(exc), field="hours", code="invalid_hours") from exc
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationFailed("unknown time zone", field="timezone", code="invalid_timezone") from exc
    BusinessCalendar.objects.update_or_create(
        store_id=actor.store_id,
        defaults={"hours": dict(hours), "timezone": timezone, "holiday_country": holiday_country.upper(),
                  "holiday_subdivision": holiday_subdivision},
    )

