"""SLA clocks moved by what happens to a case, on the store's business calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.sla import services
from aftersales.sla.models import SlaClock, Target
from aftersales.testing import factories as f

from .conftest import make_policy, open_inquiry, sh

pytestmark = pytest.mark.django_db


def clock_of(case, target=Target.FIRST_RESPONSE):
    return SlaClock.objects.get(case=case, target=target)


def test_a_new_case_starts_its_first_response_clock_on_business_time(store, travel):
    make_policy(store, first_response_minutes=120)
    travel.to(sh(2026, 11, 20, 17, 0))  # a Friday
    case = open_inquiry(store)

    row = clock_of(case)
    assert (row.due_at, row.warn_at) == (sh(2026, 11, 23, 10, 0), sh(2026, 11, 23, 9, 36))


def test_an_internal_note_does_not_answer_the_buyer_but_a_public_reply_does(store, travel):
    make_policy(store)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    agent = f.staff(store)

    travel.to(sh(2026, 11, 23, 10, 20))
    case_services.post_message(actor=agent, case_id=case.pk, body="checking with the carrier", visibility="internal")
    assert clock_of(case).met_at is None

    travel.to(sh(2026, 11, 23, 10, 30))
    case_services.post_message(actor=agent, case_id=case.pk, body="it arrives tomorrow")
    row = clock_of(case)
    assert (row.met_at, row.met_by_id, row.breached_at, row.consumed_seconds) == (
        sh(2026, 11, 23, 10, 30), agent.user_id, None, 1800)


def test_a_decision_is_a_first_response(store, travel):
    make_policy(store)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    travel.to(sh(2026, 11, 23, 10, 5))
    case_services.transition_case(actor=f.staff(store), case_id=case.pk, action="acknowledge")

    assert clock_of(case).met_at == sh(2026, 11, 23, 10, 5)


def test_warning_at_the_configured_share_then_breach_with_owner_and_escalation(store, travel):
    supervisor = f.make_staff(store, "supervisor")
    make_policy(store, first_response_minutes=60, warn_at_percent=50)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    agent = f.make_staff(store)
    case_services.assign_case(actor=f.staff(store, "supervisor"), case_id=case.pk, assignee_id=agent.pk)

    travel.to(sh(2026, 11, 23, 10, 29))
    assert services.sweep_clocks().warned == 0
    travel.to(sh(2026, 11, 23, 10, 30))
    assert services.sweep_clocks().warned == 1

    travel.to(sh(2026, 11, 23, 11, 5))
    result = services.sweep_clocks()
    row = clock_of(case)
    assert (result.warned, result.breached) == (0, 1)
    assert (row.breached_at, row.breach_assignee_id) == (sh(2026, 11, 23, 11, 0), agent.pk)
    entries = list(TimelineEntry.objects.filter(case=case, event__startswith="sla_").values_list("event", "data"))
    assert entries == [
        ("sla_warning", {"target": "first_response", "due_at": "2026-11-23T03:00:00+00:00"}),
        ("sla_breached", {"target": "first_response", "breached_at": "2026-11-23T03:00:00+00:00",
                          "assignee_id": agent.pk}),
        ("sla_escalated", {"target": "first_response", "to": supervisor.pk}),
    ]
    assert services.sweep_clocks().breached == 0  # a second run finds nothing


def test_a_late_answer_is_met_late_and_stays_breached(store, travel):
    make_policy(store, first_response_minutes=30)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    travel.to(sh(2026, 11, 23, 11, 0))  # no sweep ran in between
    case_services.post_message(actor=f.staff(store), case_id=case.pk, body="sorry for the wait")

    row = clock_of(case)
    assert (row.breached_at, row.met_at) == (sh(2026, 11, 23, 10, 30), sh(2026, 11, 23, 11, 0))


def test_the_clock_pauses_while_waiting_on_the_buyer_and_resumes_when_they_answer(store, travel):
    make_policy(store, first_response_minutes=None, resolution_minutes=240)
    agent = f.staff(store)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    buyer = f.buyer_of(case.buyer)
    case_services.transition_case(actor=agent, case_id=case.pk, action="start_progress")
    travel.to(sh(2026, 11, 23, 11, 0))
    case_services.transition_case(actor=agent, case_id=case.pk, action="wait_on_customer")
    row = clock_of(case, Target.RESOLUTION)
    assert (row.paused, row.consumed_seconds, row.due_at) == (True, 3600, None)

    travel.to(sh(2026, 11, 24, 15, 0))  # a day later: none of it counts against the shop
    case_services.transition_case(actor=buyer, case_id=case.pk, action="customer_replied")
    row = clock_of(case, Target.RESOLUTION)
    assert (row.paused, row.due_at) == (False, sh(2026, 11, 24, 18, 0))

    travel.to(sh(2026, 11, 24, 16, 0))
    case_services.transition_case(actor=agent, case_id=case.pk, action="resolve")
    row = clock_of(case, Target.RESOLUTION)
    assert (row.met_at, row.consumed_seconds, row.breached_at) == (sh(2026, 11, 24, 16, 0), 2 * 3600, None)


def test_a_buyer_message_after_the_first_answer_starts_the_next_response_clock(store, travel):
    make_policy(store, next_response_minutes=30)
    agent = f.staff(store)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    case_services.post_message(actor=agent, case_id=case.pk, body="hello")
    travel.to(sh(2026, 11, 23, 10, 10))
    case_services.post_message(actor=f.buyer_of(case.buyer), case_id=case.pk, body="still nothing")
    assert clock_of(case, Target.NEXT_RESPONSE).due_at == sh(2026, 11, 23, 10, 40)
    travel.to(sh(2026, 11, 23, 10, 20))
    case_services.post_message(actor=agent, case_id=case.pk, body="on it")
    assert clock_of(case, Target.NEXT_RESPONSE).met_at == sh(2026, 11, 23, 10, 20)


def test_policies_match_on_buyer_tier_before_the_default(store, travel):
    make_policy(store, name="vip", position=1, buyer_tier="vip", first_response_minutes=15)
    make_policy(store, name="everyone", position=2, first_response_minutes=240)
    vip = f.make_buyer(store)
    vip.tier = "vip"
    vip.save(update_fields=["tier"])
    travel.to(sh(2026, 11, 23, 10, 0))

    assert clock_of(open_inquiry(store, vip)).due_at == sh(2026, 11, 23, 10, 15)
    assert clock_of(open_inquiry(store)).due_at == sh(2026, 11, 23, 14, 0)


def test_calendar_time_targets_ignore_opening_hours(store, travel):
    make_policy(store, first_response_minutes=24 * 60, business_time=False)
    travel.to(sh(2026, 11, 21, 10, 0))  # Saturday
    case = open_inquiry(store)
    assert clock_of(case).due_at == sh(2026, 11, 22, 10, 0)


def test_a_case_cancelled_by_the_buyer_stops_its_clocks_unmet(store, travel):
    make_policy(store, resolution_minutes=600)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    case_services.transition_case(actor=f.buyer_of(case.buyer), case_id=case.pk, action="cancel")

    assert list(SlaClock.objects.filter(case=case).values_list("target", "stopped_at", "met_at")) == [
        ("first_response", sh(2026, 11, 23, 10, 0), None), ("resolution", sh(2026, 11, 23, 10, 0), None)]
    assert Case.objects.get(pk=case.pk).status == "cancelled"


def test_no_policy_no_clock(store, travel):
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    assert not SlaClock.objects.filter(case=case).exists()
    assert services.sweep_clocks(now=sh(2027, 1, 1, 0, 0)).breached == 0


def test_an_eu_store_clock_crosses_the_change_to_summer_time_on_local_hours(travel):
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    store = f.make_store(timezone="Europe/Berlin", jurisdiction="EU")
    services.save_calendar(actor=f.staff(store, "admin"), timezone="Europe/Berlin", holiday_country="DE",
                           hours={str(d): [["09:00", "17:00"]] for d in range(5)})
    make_policy(store, first_response_minutes=120)
    travel.to(dt.datetime(2026, 3, 27, 16, 0, tzinfo=berlin))  # Friday, CET
    case = open_inquiry(store)
    assert clock_of(case).due_at == dt.datetime(2026, 3, 30, 8, 0, tzinfo=dt.UTC)  # Monday 10:00 CEST

    travel.to(dt.datetime(2026, 3, 30, 9, 59, tzinfo=berlin))
    assert services.sweep_clocks().breached == 0
    travel.to(dt.datetime(2026, 3, 30, 10, 0, tzinfo=berlin))
    assert services.sweep_clocks().breached == 1


def test_calendar_settings_are_checked_and_only_an_admin_changes_them(store):
    from aftersales.core.errors import PermissionDenied, ValidationFailed
    from aftersales.sla.models import BusinessCalendar

    with pytest.raises(ValidationFailed) as bad:
        services.save_calendar(actor=f.staff(store, "admin"), hours={"0": [["18:00", "09:00"]]})
    with pytest.raises(PermissionDenied):
        services.save_calendar(actor=f.staff(store, "agent"), hours={"0": [["09:00", "18:00"]]})
    assert (bad.value.code, BusinessCalendar.objects.filter(store=store).exists()) == ("invalid_hours", False)


def test_a_reopened_conversation_starts_a_new_first_response_and_resolution(store, travel):
    make_policy(store, first_response_minutes=60, resolution_minutes=600, business_time=False)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_inquiry(store)
    supervisor = f.staff(store, role="supervisor")
    travel.to(sh(2026, 11, 23, 10, 30))
    case_services.post_message(actor=supervisor, case_id=case.pk, body="sorted, a new one is on its way")
    case_services.transition_case(actor=supervisor, case_id=case.pk, action="resolve")

    reopened_at = travel.to(sh(2026, 11, 24, 9, 0))
    case_services.transition_case(actor=supervisor, case_id=case.pk, action="reopen")

    rows = list(SlaClock.objects.filter(case=case).order_by("started_at", "target")
                .values_list("target", "started_at", "met_at", "stopped_at", "due_at"))
    assert rows == [
        ("first_response", sh(2026, 11, 23, 10, 0), sh(2026, 11, 23, 10, 30), sh(2026, 11, 23, 10, 30), None),
        ("resolution", sh(2026, 11, 23, 10, 0), sh(2026, 11, 23, 10, 30), sh(2026, 11, 23, 10, 30), None),
        ("first_response", reopened_at, None, None, reopened_at + dt.timedelta(minutes=60)),
        ("resolution", reopened_at, None, None, reopened_at + dt.timedelta(minutes=600)),
    ]
    # The new first response is met by the next answer, as the first one was.
    travel.to(sh(2026, 11, 24, 9, 20))
    case_services.post_message(actor=supervisor, case_id=case.pk, body="looking at it again")
    again = SlaClock.objects.get(case=case, target="first_response", started_at=reopened_at)
    assert (again.met_at, again.consumed_seconds) == (sh(2026, 11, 24, 9, 20), 1200)


def test_a_reopened_rejection_gives_the_shop_a_new_first_response(store, travel):
    from .conftest import open_return

    make_policy(store, first_response_minutes=60, resolution_minutes=600, business_time=False)
    travel.to(sh(2026, 11, 23, 10, 0))
    case = open_return(store)
    supervisor = f.staff(store, role="supervisor")
    case_services.transition_case(actor=supervisor, case_id=case.pk, action="reject", payload={"reason": "used"})
    reopened_at = travel.to(sh(2026, 11, 23, 15, 0))
    case_services.transition_case(actor=supervisor, case_id=case.pk, action="reopen")

    live = dict(SlaClock.objects.filter(case=case, stopped_at__isnull=True).values_list("target", "due_at"))
    assert live == {"first_response": reopened_at + dt.timedelta(minutes=60),
                    "resolution": reopened_at + dt.timedelta(minutes=600)}
