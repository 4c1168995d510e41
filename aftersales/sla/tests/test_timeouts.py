"""Platform-style timeouts: each fires once, through transition_case with the system actor and the rule
named, and the sweep is safe to run twice, late, or again after it died half-way."""

from __future__ import annotations

import datetime as dt

import pytest

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.sla import services
from aftersales.sla.models import TimeoutSetting
from aftersales.testing import factories as f

from .conftest import open_return, sh

pytestmark = pytest.mark.django_db

T0 = sh(2026, 11, 3, 10, 0)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def status(case):
    return Case.objects.get(pk=case.pk).status


def automatic(case):
    """The timeline entries the timeouts wrote: (event, from, to, actor label, rule)."""
    return [(e.event, e.from_status, e.to_status, e.actor_label, e.data.get("rule"))
            for e in TimelineEntry.objects.filter(case=case, actor_kind="system").exclude(event="submit")
            .order_by("at", "id")]


def test_the_shop_silent_for_48_hours_approves_once(store, travel):
    travel.to(T0)
    case = open_return(store)
    assert (case.deadline_at, case.deadline_rule) == (T0 + 48 * H, "shop_review_timeout.auto_approve")

    travel.to(T0 + 48 * H - dt.timedelta(seconds=1))
    assert services.sweep_timeouts().acted == 0
    travel.to(T0 + 48 * H)
    assert services.sweep_timeouts().actions == [(case.pk, "shop_review_timeout.auto_approve")]
    assert services.sweep_timeouts().acted == 0  # run twice in a row: nothing more

    rule = "shop_review_timeout.auto_approve"
    assert automatic(case) == [("approve", "pending_review", "awaiting_return", f"timeout: {rule}", rule)]


def test_the_buyer_who_never_ships_sees_the_case_expire(store, travel):
    travel.to(T0)
    case = open_return(store)
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="approve")
    travel.to(T0 + 7 * D)
    services.sweep_timeouts()
    services.sweep_timeouts()

    assert status(case) == "expired"
    assert [a[0] for a in automatic(case)] == ["expire"]


def test_a_return_the_shop_never_confirms_moves_on_to_the_refund(store, travel):
    travel.to(T0)
    case = open_return(store)
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="approve")
    case_services.transition_case(actor=f.buyer_of(case.buyer), case_id=case.pk, action="ship_return",
                                  payload={"carrier": "SF", "tracking_number": "SF123"})
    travel.to(T0 + 10 * D)
    services.sweep_timeouts()

    rule = "shop_confirm_timeout.auto_receive"
    assert automatic(case) == [
        ("mark_received", "return_in_transit", "received", f"timeout: {rule}", rule),
        ("start_inspection", "received", "inspecting", f"timeout: {rule}", rule),
        ("record_inspection", "inspecting", "refunding", f"timeout: {rule}", rule),
    ]
    assert Case.objects.get(pk=case.pk).deadline_rule == "refund_due.alert"


def test_a_missed_week_of_sweeps_raises_each_refund_alarm_once(store, travel):
    travel.to(T0)
    case = open_return(store, kind="refund_only")
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="approve")
    assert status(case) == "refunding"

    travel.to(T0 + 16 * D)  # nobody swept for 16 days
    result = services.sweep_timeouts()
    services.sweep_timeouts()

    assert [rule for _, rule in result.actions] == [
        "refund_due.alert", "refund_due.statutory_7_days", "refund_due.violation_15_days"]
    assert [e[0] for e in automatic(case)] == ["refund_due_soon", "refund_overdue", "refund_violation"]
    after = Case.objects.get(pk=case.pk)
    assert (after.status, after.deadline_at, after.deadline_rule) == ("refunding", None, "")


def test_a_rejected_buyer_who_does_not_escalate_is_closed_after_7_days(store, travel):
    travel.to(T0)
    case = open_return(store)
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="reject",
                                  payload={"reason": "used"})
    travel.to(T0 + 7 * D)
    services.sweep_timeouts()
    assert (status(case), [e[0] for e in automatic(case)]) == ("closed", ["close"])


def test_an_offer_the_buyer_ignores_is_declined_and_the_shop_gets_its_48_hours_again(store, travel):
    travel.to(T0)
    case = open_return(store)
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="counter_offer",
                                  payload={"amount": "20.00"})
    travel.to(T0 + 7 * D)
    services.sweep_timeouts()
    after = Case.objects.get(pk=case.pk)
    assert (after.status, after.deadline_at) == ("pending_review", T0 + 7 * D + 48 * H)


def test_the_store_sets_its_own_number_or_switches_a_timeout_off(store, travel):
    TimeoutSetting.objects.create(store=store, status="pending_review", minutes=24 * 60)
    TimeoutSetting.objects.create(store=store, status="rejected", minutes=1, enabled=False)
    travel.to(T0)
    case = open_return(store)
    assert case.deadline_at == T0 + 24 * H
    rejected = case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="reject",
                                             payload={"reason": "used"})
    assert (rejected.deadline_at, rejected.deadline_rule) == (None, "")


def test_the_platform_mode_picks_the_platforms_numbers(travel):
    jd = f.make_store(platform_mode="jd")
    travel.to(T0)
    case = open_return(jd)
    rejected = case_services.transition_case(actor=f.staff(jd), case_id=case.pk, action="reject",
                                             payload={"reason": "used"})
    assert rejected.deadline_at == T0 + 15 * D


def test_a_case_someone_moved_after_it_was_found_is_skipped(store, travel):
    travel.to(T0)
    case = open_return(store)
    travel.to(T0 + 49 * H)
    found = services.due_deadlines(now=T0 + 49 * H, after=None, limit=10)
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="reject", payload={"reason": "no"})

    assert [row[1] for row in found] == [case.pk]
    assert services.apply_timeout(store_id=store.pk, case_id=case.pk, rule=found[0][3]) is False
    assert status(case) == "rejected"


def test_a_sweep_that_dies_half_way_leaves_every_case_whole_and_the_next_run_finishes(store, travel):
    travel.to(T0)
    cases = [open_return(store) for _ in range(5)]
    travel.to(T0 + 48 * H)
    done = []

    def die_on_the_third(case_id):
        done.append(case_id)
        if len(done) == 3:
            raise SystemExit("worker killed")

    # Batches of two: the first commits, the second dies after moving one case and is undone whole.
    with pytest.raises(SystemExit):
        services.sweep_timeouts(batch=2, after_each=die_on_the_third)
    assert [status(c) for c in cases] == ["awaiting_return"] * 2 + ["pending_review"] * 3
    for case in cases[2:]:  # untouched cases still carry their due deadline for the next run
        assert Case.objects.get(pk=case.pk).deadline_rule == "shop_review_timeout.auto_approve"

    result = services.sweep_timeouts()
    assert (result.acted, result.skipped) == (3, 0)
    assert [status(c) for c in cases] == ["awaiting_return"] * 5
    assert [len(automatic(c)) for c in cases] == [1] * 5


def test_a_conversation_nobody_takes_up_raises_one_alert(store, travel):
    from .conftest import open_inquiry

    travel.to(T0)
    case = open_inquiry(store)
    travel.to(T0 + 25 * H)
    services.sweep()
    services.sweep()
    assert [e[0] for e in automatic(case)] == ["first_response_overdue"]
    assert status(case) == "open"


def test_the_embedded_scheduler_runs_the_sweep_without_a_broker(store, travel):
    from aftersales.core.scheduler import Scheduler

    travel.to(T0)
    case = open_return(store)
    travel.to(T0 + 49 * H)
    scheduler = Scheduler.from_settings()
    ran = scheduler.tick(0.0)

    assert "sla-sweep" in ran
    assert status(case) == "awaiting_return"
