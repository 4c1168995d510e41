"""The sweep's bulk path (aftersales.cases.bulk) against the one-by-one path through transition_case: the
same due cases, acted on both ways from the same database state, leave the same rows behind: cases,
timeline, SLA clocks and outbox events."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from aftersales.cases import bulk
from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.notifications.models import OutboxEvent
from aftersales.sla import services
from aftersales.sla.models import SlaClock
from aftersales.stores import permissions as perm
from aftersales.testing import factories as f

from .conftest import make_policy, open_inquiry, open_return, sh

pytestmark = pytest.mark.django_db

T0 = sh(2026, 11, 3, 10, 0)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)

CASE_FIELDS = ("pk", "kind", "status", "updated_at", "status_changed_at", "closed_at", "deadline_at",
               "deadline_rule", "assignee_id", "refund_amount", "offer_amount")
ENTRY_FIELDS = ("case_id", "at", "event", "from_status", "to_status", "actor_kind", "actor_label", "actor_user_id",
                "data")
CLOCK_FIELDS = ("case_id", "policy_id", "target", "business_time", "budget_seconds", "warn_seconds",
                "consumed_seconds", "started_at", "running_since", "due_at", "warn_at", "warned_at", "breached_at",
                "breach_assignee_id", "met_at", "met_by_id", "stopped_at")


def snapshot(store):
    """Every row the sweep may write, without the ids (sequences are not rolled back with a savepoint)."""
    return {
        "cases": list(Case.objects.filter(store=store).order_by("pk").values_list(*CASE_FIELDS)),
        "timeline": list(TimelineEntry.objects.filter(store=store).order_by("case_id", "at", "id")
                         .values_list(*ENTRY_FIELDS)),
        "clocks": list(SlaClock.objects.filter(store=store).order_by("case_id", "target", "started_at", "id")
                       .values_list(*CLOCK_FIELDS)),
        "outbox": sorted((e.type, e.case_id, sorted(e.payload.items(), key=str))
                         for e in OutboxEvent.objects.filter(store=store)),
    }


def both_ways(store, items, now):
    """Acts on `items` one by one, notes the rows, undoes it all, then acts in bulk from the same state."""
    sid = transaction.savepoint()
    one_by_one = services.apply_timeouts(items=items, now=now, bulk=False)
    rows_one_by_one = snapshot(store)
    transaction.savepoint_rollback(sid)
    together = services.apply_timeouts(items=items, now=now, bulk=True)
    return one_by_one, rows_one_by_one, together, snapshot(store)


def build_backlog(store, travel):
    """Cases waiting in every state a timeout acts on, with SLA clocks running, paused, met and late."""
    make_policy(store, first_response_minutes=60, resolution_minutes=5 * 24 * 60, business_time=False)
    supervisor = f.staff(store, role="supervisor")
    agent = f.staff(store)
    travel.to(T0)
    review = [open_return(store) for _ in range(3)]  # -> approved, on to awaiting_return
    case_services.assign_case(actor=supervisor, case_id=review[0].pk, assignee_id=agent.user_id)
    refund_only = open_return(store, kind="refund_only")  # -> approved, on to refunding
    never_shipped = open_return(store)
    case_services.transition_case(actor=agent, case_id=never_shipped.pk, action="approve")
    never_confirmed = open_return(store)
    case_services.transition_case(actor=agent, case_id=never_confirmed.pk, action="approve")
    case_services.transition_case(actor=f.buyer_of(never_confirmed.buyer), case_id=never_confirmed.pk,
                                  action="ship_return", payload={"carrier": "SF", "tracking_number": "SF1"})
    rejected = open_return(store)
    case_services.transition_case(actor=agent, case_id=rejected.pk, action="reject", payload={"reason": "used"})
    offered = open_return(store)
    case_services.transition_case(actor=agent, case_id=offered.pk, action="counter_offer",
                                  payload={"amount": "20.00"})
    repair = open_return(store, kind="repair")
    case_services.transition_case(actor=agent, case_id=repair.pk, action="approve")
    refunding = open_return(store, kind="refund_only")
    case_services.transition_case(actor=agent, case_id=refunding.pk, action="approve")
    silent = open_inquiry(store)
    moved_meanwhile = open_return(store)
    return {"review": review, "refund_only": refund_only, "never_shipped": never_shipped,
            "never_confirmed": never_confirmed, "rejected": rejected, "offered": offered, "repair": repair,
            "refunding": refunding, "silent": silent, "moved_meanwhile": moved_meanwhile, "agent": agent}


def test_the_bulk_path_writes_the_same_rows_as_transition_case_one_by_one(store, travel):
    cases = build_backlog(store, travel)
    now = travel.to(T0 + 10 * D)  # every deadline above is due, several clocks ran out long ago
    found = services.due_deadlines(now=now, after=None, limit=100)
    items = [(store_id, case_id, rule) for _, case_id, store_id, rule in found]
    # A person acts on one of them between the sweep finding it and acting on it.
    case_services.transition_case(actor=cases["agent"], case_id=cases["moved_meanwhile"].pk, action="reject",
                                  payload={"reason": "no"})

    one_by_one, rows_one_by_one, together, rows_together = both_ways(store, items, now)

    assert rows_together == rows_one_by_one
    assert (together.acted, together.skipped, together.failed, together.actions) == (
        one_by_one.acted, one_by_one.skipped, one_by_one.failed, one_by_one.actions)
    assert (together.acted, together.skipped, together.failed) == (len(items) - 1, 1, 0)
    # The end states themselves, so "the same" is not "the same mistake".
    status = dict(Case.objects.filter(store=store).values_list("pk", "status"))
    assert [status[c.pk] for c in cases["review"]] == ["awaiting_return"] * 3
    assert (status[cases["refund_only"].pk], status[cases["never_shipped"].pk], status[cases["never_confirmed"].pk],
            status[cases["rejected"].pk], status[cases["offered"].pk], status[cases["repair"].pk],
            status[cases["silent"].pk], status[cases["moved_meanwhile"].pk]) == (
        "refunding", "expired", "refunding", "closed", "pending_review", "expired", "open", "rejected")
    rule = "shop_confirm_timeout.auto_receive"
    assert list(TimelineEntry.objects.filter(case=cases["never_confirmed"], actor_kind="system")
                .exclude(event="submit").order_by("id").values_list("event", "actor_label", "data")) == [
        ("mark_received", f"timeout: {rule}", {"rule": rule}),
        ("start_inspection", f"timeout: {rule}", {"rule": rule}),
        ("record_inspection", f"timeout: {rule}", {"notes": "", "grade": "", "outcome": "passed", "rule": rule}),
    ]
    # The platform answered for the shop: the first response stopped, not met; breached long before.
    first = SlaClock.objects.get(case=cases["review"][0], target="first_response")
    assert (first.stopped_at, first.met_at, first.breached_at, first.breach_assignee_id) == (
        now, None, T0 + H, cases["agent"].user_id)
    assert len(rows_together["outbox"]) > len(items)


def test_a_second_bulk_sweep_changes_nothing(store, travel):
    build_backlog(store, travel)
    travel.to(T0 + 10 * D)
    first = services.sweep_timeouts()
    rows = snapshot(store)
    second = services.sweep_timeouts()

    assert first.acted > 10
    assert (second.acted, second.skipped, second.failed) == (0, 0, 0)
    assert snapshot(store) == rows


def test_many_cases_of_a_store_move_in_a_few_statements(store, travel, django_assert_max_num_queries):
    travel.to(T0)
    cases = [open_return(store) for _ in range(30)]
    now = travel.to(T0 + 48 * H)
    items = [(store.pk, c.pk, "shop_review_timeout.auto_approve") for c in cases]

    # Savepoints, the lock, the store and its settings, the update, the timeline, the clocks, the outbox:
    # a number that does not grow with the cases, where one by one costs about ten a case.
    with django_assert_max_num_queries(14):
        result = services.apply_timeouts(items=items, now=now)
    assert result.acted == 30


def test_steps_with_side_effects_of_their_own_are_handed_back_untouched(store, travel):
    travel.to(T0)
    case = open_return(store)
    system = perm.system_actor(store.pk, "test")
    with transaction.atomic():
        locked = bulk.lock_due(store_id=store.pk, case_ids=[case.pk], rule="shop_review_timeout.auto_approve",
                               now=T0 + 48 * H)
        done = bulk.transition_many(actor=system, cases=locked, steps=[("reject", None)], rule="x", now=T0)

    assert ([c.pk for c in done.fallback], done.moved, done.stuck) == ([case.pk], [], [])
    assert Case.objects.get(pk=case.pk).status == "pending_review"


def test_a_case_not_yet_due_or_moved_on_is_not_locked(store, travel):
    travel.to(T0)
    due, later = open_return(store), open_return(store)
    Case.objects.filter(pk=later.pk).update(deadline_at=T0 + 100 * H)
    with transaction.atomic():
        locked = bulk.lock_due(store_id=store.pk, case_ids=[due.pk, later.pk],
                               rule="shop_review_timeout.auto_approve", now=T0 + 48 * H)
    assert [c.pk for c in locked] == [due.pk]


def test_warnings_and_breaches_in_bulk_write_the_same_rows_as_one_clock_at_a_time(store, travel):
    make_policy(store, first_response_minutes=60, resolution_minutes=180, business_time=False)
    other = f.make_store()
    make_policy(other, first_response_minutes=30, business_time=False)
    supervisor = f.staff(store, role="supervisor")
    agent = f.staff(store)
    travel.to(T0)
    cases = [open_inquiry(store) for _ in range(4)] + [open_inquiry(other) for _ in range(2)]
    case_services.assign_case(actor=supervisor, case_id=cases[0].pk, assignee_id=agent.user_id)
    travel.to(T0 + 20 * dt.timedelta(minutes=1))
    case_services.post_message(actor=agent, case_id=cases[1].pk, body="on it")  # met: neither warned nor breached
    now = travel.to(T0 + 150 * dt.timedelta(minutes=1))  # unmet first responses warned and breached, resolutions warned

    sid = transaction.savepoint()
    one_by_one = services.sweep_clocks(now=now, bulk=False)
    rows_one_by_one = snapshot(store), snapshot(other)
    transaction.savepoint_rollback(sid)
    together = services.sweep_clocks(now=now)

    assert (snapshot(store), snapshot(other)) == rows_one_by_one
    assert (together.warned, together.breached) == (one_by_one.warned, one_by_one.breached) == (9, 5)
    assert services.sweep_clocks(now=now).warned + services.sweep_clocks(now=now).breached == 0
    breached = SlaClock.objects.get(case=cases[0], target="first_response")
    assert (breached.breached_at, breached.breach_assignee_id) == (T0 + H, agent.user_id)


@pytest.mark.django_db(transaction=True)
def test_a_case_a_person_holds_locked_is_left_for_the_next_sweep(store, travel):
    """PostgreSQL: a row another transaction holds is skipped (SKIP LOCKED) rather than waited for."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: a writer holds the whole database")
    travel.to(T0)
    held, free = open_return(store), open_return(store)
    now = travel.to(T0 + 48 * H)
    locked, release = threading.Event(), threading.Event()

    def person():
        try:
            with transaction.atomic():
                Case.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=person)
    thread.start()
    try:
        assert locked.wait(30)
        first = services.sweep_timeouts(now=now)
    finally:
        release.set()
        thread.join(30)
    second = services.sweep_timeouts(now=now)

    assert (first.actions, first.skipped) == ([(free.pk, "shop_review_timeout.auto_approve")], 1)
    assert second.actions == [(held.pk, "shop_review_timeout.auto_approve")]
    assert set(Case.objects.filter(pk__in=[held.pk, free.pk]).values_list("status", flat=True)) == {"awaiting_return"}
