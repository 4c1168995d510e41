"""Moving many cases of one store by the same steps at once: what a sweep does when thousands of
deadlines fall due together.

`transition_case` takes about ten round trips a case (row lock, store, update, timeline, clocks, events);
here a group of cases costs a handful of statements whatever its size: one locking read, one UPDATE of
the cases, one INSERT of the timeline entries, one read and at most two writes of the SLA clocks, and the
events through `publish_many`. Every row it writes is the row `transition_case` would have written (the
same table lookup, timeline entry, next deadline, clock changes and event payloads; tests compare the
two paths row by row).

Only steps without side effects of their own are taken here. A case whose steps would need one (an
effect that reads or sets the case's own fields from a payload, such as a rejection reason, an offer,
a tracking number or a refund amount; a refund asked through the ledger; a change of kind; the
platform's arbitration; a permission the actor lacks) is handed back untouched, for the caller to move
through `transition_case` one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftersales.core.bulk_writes import insert_rows, update_rows
from aftersales.core.events import publish_many
from aftersales.sla import selectors as sla_selectors
from aftersales.sla import services as sla_services
from aftersales.stores.models import Store
from aftersales.stores.permissions import Actor

from .deadlines import deadline_for
from .models import Case, TimelineEntry
from .services import ACTION_EFFECTS
from .states import Action, Status, Transition, find_transition

# Effects that only describe the step (no payload needed, nothing set on the case): they are run here
# with the empty payload a sweep gives, so the timeline data is the same as through transition_case.
PURE_EFFECTS = frozenset({Action.RECORD_INSPECTION, Action.ACCEPT_OFFER})

# What a sweep reads of a case: the steps, the timeline, the events, the clocks and the next deadline
# (a field left out would still load, one query per case, so this is about speed, not correctness).
SWEPT_FIELDS = ("id", "store_id", "number", "kind", "status", "buyer_id", "assignee_id", "priority", "channel",
                "offer_amount", "deadline_at", "deadline_rule", "updated_at", "status_changed_at", "closed_at")

# Fields a step changes on the case (transition_case saves the whole row; nothing else differs).
MOVED_FIELDS = ["status", "updated_at", "status_changed_at", "closed_at", "deadline_at", "deadline_rule"]


@dataclass
class BulkResult:
    moved: list[Case] = field(default_factory=list)
    # Whose steps need a side effect taken only by transition_case; untouched, for the caller.
    fallback: list[Case] = field(default_factory=list)
    # No step of the table applies from where the case is.
    stuck: list[Case] = field(default_factory=list)


def lock_due(*, store_id: int, case_ids: Iterable[int], rule: str, now: dt.datetime) -> list[Case]:
    """Locks the cases that are still due under `rule` at `now`, in id order. A case that moved on since
    it was found (someone acted, another sweep got there, the deadline was moved) is not returned; nor is
    one whose row another transaction holds right now: it is still due, and the next sweep takes it."""
    return list(Case.objects.select_for_update(skip_locked=True)
                .filter(store_id=store_id, pk__in=list(case_ids), deadline_rule=rule, deadline_at__lte=now)
                .only(*SWEPT_FIELDS).order_by("pk"))


def _plan(case: Case, steps: Sequence[tuple[str, str | None]], actor: Actor,
          store: Store) -> list[Transition] | None:
    """The rows of the table the steps walk, taken while it allows them; None if one needs a side effect."""
    kind, status = case.kind, case.status
    plan: list[Transition] = []
    for action, outcome in steps:
        transition = find_transition(kind, status, action, outcome)
        if transition is None:
            break
        if ((action in ACTION_EFFECTS and action not in PURE_EFFECTS) or transition.new_kind
                or not actor.can(transition.permission)
                or (transition.needs_platform and not store.allows_platform_arbitration)):
            return None
        plan.append(transition)
        status = transition.target
    return plan


def _payload(case: Case, **extra: Any) -> dict[str, Any]:
    # The payload of transition_case's "case.transitioned", key for key.
    return {"store_id": case.store_id, "case_id": case.pk, "number": case.number, "kind": case.kind,
            "status": case.status, **extra}


def transition_many(*, actor: Actor, cases: Sequence[Case], steps: Sequence[tuple[str, str | None]],
                    rule: str = "", now: dt.datetime) -> BulkResult:
    """Moves `cases` (one store's, already locked by the caller's transaction, e.g. by `lock_due`) by
    `steps`, each step taken while the case's table allows it, as `transition_case` would one by one.

    Must run inside a transaction: the cases, their timeline, clocks and events commit together."""
    result = BulkResult()
    if not cases:
        return result
    store_id = actor.store_id
    store = Store.objects.get(pk=store_id)
    platform_mode, overrides = sla_selectors.timeout_settings(store_id=store_id)
    plans: list[tuple[Case, list[Transition]]] = []
    for case in cases:
        if case.store_id != store_id:
            raise ValueError("transition_many moves the cases of the actor's store only")
        plan = _plan(case, steps, actor, store)
        if plan is None:
            result.fallback.append(case)
        elif not plan:
            result.stuck.append(case)
        else:
            plans.append((case, plan))
    if not plans:
        return result

    clocks = sla_services.BulkClocks(store_id=store_id, case_ids=[case.pk for case, _ in plans])
    entries: list[TimelineEntry] = []
    events: list[dict[str, Any]] = []
    for case, plan in plans:
        case.store = store
        for transition in plan:
            action = transition.action
            data: dict[str, Any] = dict(ACTION_EFFECTS[action](case, {})) if action in PURE_EFFECTS else {}
            if transition.outcome:
                data["outcome"] = transition.outcome
            if rule:
                data["rule"] = rule
            from_status = case.status
            case.status = transition.target
            case.updated_at = case.status_changed_at = now
            case.closed_at = now if case.status in Status.TERMINAL else None
            entries.append(TimelineEntry.of(case, actor, action, now, from_status=from_status,
                                            to_status=case.status, data=data))
            clocks.on_case_event(case=case, event="transitioned", actor=actor, at=now,
                                 data={"action": action, "from_status": from_status, "rule": rule})
            events.append(_payload(case, action=action, from_status=from_status, actor_kind=actor.kind, rule=rule))
        case.deadline_at, case.deadline_rule = deadline_for(case.status, now, platform_mode=platform_mode,
                                                            overrides=overrides)
        result.moved.append(case)

    update_rows(Case, result.moved, MOVED_FIELDS)
    insert_rows(TimelineEntry, entries)
    clocks.flush()
    publish_many("case.transitioned", events)
    return result

