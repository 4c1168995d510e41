"""Every action from every reachable state of every kind, through `transition_case`.

The tables are the rules; these tests check that the service enforces exactly them. One case per
(kind, state) is built once for the module, inside a transaction rolled back at the end, by walking the
shortest path through the table with the system actor; each test then runs in its own savepoint on
that case, so two thousand tests cost two thousand transitions, not two thousand case histories.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from django.db import transaction

from aftersales.cases import services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.cases.states import INITIAL_STATUS, TABLES, Action, Kind, Status, states_of
from aftersales.core.errors import Conflict
from aftersales.stores import permissions as perm
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db

ACTIONS = sorted(value for name, value in vars(Action).items() if name.isupper())

# A payload each action accepts; actions not named here need none.
SHIPPING = {"carrier": "SF", "tracking_number": "SF1234567890"}
PAYLOADS: dict[str, dict[str, Any]] = {
    Action.REJECT: {"reason": "超过七天无理由退货期"},
    Action.COUNTER_OFFER: {"amount": "10.00", "message": "部分退款，无需退货"},
    Action.SHIP_RETURN: SHIPPING,
    Action.RESHIP: SHIPPING,
    Action.SHIP_BACK: SHIPPING,
    Action.QUOTE: {"amount": "150.00", "diagnosis": "屏幕排线损坏"},
}

Step = tuple[str, str | None]  # (action, outcome)


def shortest_paths(kind: str) -> dict[str, list[Step]]:
    """For each state a case of this kind can reach without changing kind, the shortest way there."""
    start = INITIAL_STATUS[kind]
    paths: dict[str, list[Step]] = {start: []}
    queue = deque([start])
    if kind in Kind.WITH_LINES:
        # create_case submits a case about goods at once, so every path goes through that step first.
        paths[Status.PENDING_REVIEW] = [(Action.SUBMIT, None)]
        queue.appendleft(Status.PENDING_REVIEW)
    while queue:
        status = queue.popleft()
        rows = [t for t in TABLES[kind] if status in t.sources and not t.new_kind]
        for row in sorted(rows, key=lambda t: (t.action, t.outcome or "", t.target)):
            if row.target not in paths:
                paths[row.target] = [*paths[status], (row.action, row.outcome)]
                queue.append(row.target)
    return paths


PATHS = {kind: shortest_paths(kind) for kind in Kind.ALL}


def _rows(kind: str, status: str, action: str) -> list[Any]:
    return sorted((t for t in TABLES[kind] if status in t.sources and t.action == action),
                  key=lambda t: t.outcome or "")


def _matrix() -> tuple[list[Any], list[Any]]:
    allowed, refused = [], []
    for kind in Kind.ALL:
        for status in sorted(PATHS[kind]):
            for action in ACTIONS:
                rows = _rows(kind, status, action)
                for row in rows:
                    test_id = f"{kind}-{status}-{action}" + (f"-{row.outcome}" if row.outcome else "")
                    allowed.append(pytest.param(kind, status, row, id=test_id))
                if not rows:
                    refused.append(pytest.param(kind, status, action, id=f"{kind}-{status}-{action}"))
    return allowed, refused


ALLOWED, REFUSED = _matrix()


def _build_case(store: Any, kind: str, status: str) -> int:
    actor = system_actor(store.pk, "test-setup")
    if kind in Kind.WITH_LINES:
        order = f.make_order(store)
        line = order.lines.order_by("line_no")[0]
        case = services.create_case(actor=actor, kind=kind, order_id=order.pk, reason_code="quality",
                                    lines=[services.LineRequest(order_line_id=line.pk, quantity=1)])
    else:
        case = services.create_case(actor=actor, kind=kind, buyer_id=f.make_buyer(store).pk, subject="发票怎么开")
    path = PATHS[kind][status]
    if kind in Kind.WITH_LINES:
        if status == Status.SUBMITTED:
            # create_case passes through `submitted` within its own transaction, so no case ever rests
            # there; put one there by hand to check what the table allows from it.
            Case.objects.filter(pk=case.pk).update(status=Status.SUBMITTED)
            return case.pk
        # create_case has already taken the first step (submit).
        assert path[0] == (Action.SUBMIT, None)
        path = path[1:]
    for action, outcome in path:
        services.transition_case(actor=actor, case_id=case.pk, action=action, outcome=outcome,
                                 payload=PAYLOADS.get(action))
    assert Case.objects.get(pk=case.pk).status == status
    return case.pk


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """A marketplace-mode store (so escalation is possible) with one case resting in each state of each kind."""
    with django_db_blocker.unblock(), transaction.atomic():
        store = f.make_store(platform_mode="taobao")
        cases = {(kind, status): _build_case(store, kind, status) for kind in Kind.ALL for status in PATHS[kind]}
        yield store, cases
        transaction.set_rollback(True)


def _row_of(case_id: int) -> dict[str, Any]:
    return dict(Case.objects.filter(pk=case_id).values().get())


def _timeline_of(case_id: int) -> list[tuple[Any, ...]]:
    return list(TimelineEntry.objects.filter(case_id=case_id).order_by("id")
                .values_list("id", "event", "from_status", "to_status", "actor_kind", "actor_label"))


@pytest.mark.parametrize(("kind", "status", "row"), ALLOWED)
def test_an_action_the_table_allows_lands_in_its_target(world, kind, status, row):
    store, cases = world
    case_id = cases[kind, status]
    before = _timeline_of(case_id)

    case = services.transition_case(actor=system_actor(store.pk, "matrix"), case_id=case_id, action=row.action,
                                    outcome=row.outcome, payload=PAYLOADS.get(row.action))

    stored = Case.objects.get(pk=case_id)
    assert (case.status, stored.status, stored.kind) == (row.target, row.target, row.new_kind or kind)
    after = _timeline_of(case_id)
    assert after[:len(before)] == before
    assert [entry[1:] for entry in after[len(before):]] == [(row.action, status, row.target, "system", "matrix")]


def _offered(kind: str, status: str) -> dict[str, list[str]]:
    """What the refusal should offer the system actor: the rows from here, except the system's own moves."""
    offered: dict[str, list[str]] = {}
    for t in TABLES[kind]:
        if status in t.sources and t.permission != perm.CASE_SYSTEM:
            offered.setdefault(t.action, [])
            if t.outcome:
                offered[t.action].append(t.outcome)
    return {action: sorted(outcomes) for action, outcomes in offered.items()}


@pytest.mark.parametrize(("kind", "status", "action"), REFUSED)
def test_an_action_the_table_does_not_allow_is_refused_and_changes_nothing(world, kind, status, action):
    store, cases = world
    case_id = cases[kind, status]
    row_before, timeline_before = _row_of(case_id), _timeline_of(case_id)

    with pytest.raises(Conflict) as error:
        services.transition_case(actor=system_actor(store.pk, "matrix"), case_id=case_id, action=action,
                                 payload=PAYLOADS.get(action))

    assert error.value.code == "action_not_allowed"
    assert error.value.details["status"] == status
    allowed = error.value.details["allowed_actions"]
    assert {entry["action"]: entry["outcomes"] for entry in allowed} == _offered(kind, status)
    assert len(allowed) == len(_offered(kind, status))
    assert _row_of(case_id) == row_before
    assert _timeline_of(case_id) == timeline_before


def test_the_matrix_covers_every_action_from_every_reachable_state():
    reachable = sum(len(PATHS[kind]) for kind in Kind.ALL)
    refused_or_allowed = {(p.values[0], p.values[1], p.values[2]) for p in REFUSED}
    refused_or_allowed |= {(p.values[0], p.values[1], p.values[2].action) for p in ALLOWED}

    assert len(refused_or_allowed) == reachable * len(ACTIONS)


@pytest.mark.parametrize("kind", Kind.ALL)
def test_every_state_a_table_names_is_reachable_from_where_the_kind_starts(kind):
    assert sorted(states_of(kind)) == sorted(PATHS[kind])
