"""The console through Django's test client: what each page shows, and that every write goes through
the case services with the signed-in person's permissions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from aftersales.cases import services
from aftersales.cases.models import Case, Message
from aftersales.cases.services import LineRequest, install_default_reason_codes
from aftersales.core import clock
from aftersales.testing.factories import buyer_of, make_buyer, make_order, make_staff, make_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    store = make_store()
    install_default_reason_codes(store=store)
    agent = make_staff(store, "agent", username="agent-a")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(agent)
    return store, agent, client


def _case(store, *, reason="quality"):
    buyer = make_buyer(store)
    order = make_order(store, buyer)
    line = order.lines.order_by("line_no")[0]
    return services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code=reason)


def test_queue_lists_the_stores_cases_and_not_another_stores(shop):
    store, _agent, client = shop
    mine = _case(store)
    other = _case(make_store())
    html = client.get("/console/").content.decode()
    assert mine.number in html
    assert f'href="/console/cases/{other.pk}/"' not in html


def test_unassigned_view_leaves_out_assigned_cases(shop):
    store, agent, client = shop
    assigned, free = _case(store), _case(store)
    services.assign_case(actor=buyer_staff(store, agent), case_id=assigned.pk, assignee_id=agent.pk)
    html = client.get("/console/?view=unassigned").content.decode()
    assert f"/console/cases/{free.pk}/" in html
    assert f"/console/cases/{assigned.pk}/" not in html


def buyer_staff(store, user):
    from aftersales.testing.factories import actor_for_user

    return actor_for_user(user, store)


def test_breached_view_shows_only_cases_past_their_deadline(shop):
    store, _agent, client = shop
    late, on_time = _case(store), _case(store)
    Case.objects.filter(pk=late.pk).update(deadline_at=clock.now() - dt.timedelta(hours=1))
    html = client.get("/console/?view=breached").content.decode()
    assert f"/console/cases/{late.pk}/" in html
    assert f"/console/cases/{on_time.pk}/" not in html
    assert "due-over" in html


def test_queue_pages_with_a_cursor_without_repeating_a_case(shop):
    store, _agent, client = shop
    cases = [_case(store) for _ in range(27)]
    first = client.get("/console/")
    cursor = first.context["next_cursor"]
    second = client.get(f"/console/?cursor={cursor}")
    seen = [c.pk for c in first.context["rows"]] + [c.pk for c in second.context["rows"]]
    assert sorted(seen) == sorted(c.pk for c in cases)
    assert second.context["next_cursor"] is None


def test_case_page_buttons_are_exactly_the_allowed_actions(shop):
    store, _agent, client = shop
    case = _case(store)
    response = client.get(f"/console/cases/{case.pk}/")
    actions = {a["action"] for a in response.context["actions"]}
    assert actions == {"reject", "counter_offer", "approve"}
    html = response.content.decode()
    for action in actions:
        assert f'name="action" value="{action}"' in html
    assert 'value="refund"' not in html


def test_approve_from_the_case_page_moves_the_case(shop):
    store, _agent, client = shop
    case = _case(store)
    response = client.post(f"/console/cases/{case.pk}/act/", {"action": "approve"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "awaiting_return"


def test_reject_without_a_reason_is_refused_and_nothing_changes(shop):
    store, _agent, client = shop
    case = _case(store)
    response = client.post(f"/console/cases/{case.pk}/act/", {"action": "reject"}, follow=True)
    case.refresh_from_db()
    assert case.status == "pending_review"
    assert "Please fill in every required field." in response.content.decode()


def test_internal_note_is_stored_internal(shop):
    store, _agent, client = shop
    case = _case(store)
    client.post(f"/console/cases/{case.pk}/message/", {"body": "check stock", "visibility": "internal"})
    assert list(Message.objects.filter(case=case).values_list("visibility", "body")) == [("internal", "check stock")]


def test_bulk_assign_to_me_assigns_every_selected_case(shop):
    store, agent, client = shop
    a, b = _case(store), _case(store)
    client.post("/console/bulk/", {"operation": "assign_me", "case_ids": [a.pk, b.pk]})
    assert set(Case.objects.filter(pk__in=[a.pk, b.pk]).values_list("assignee_id", flat=True)) == {agent.pk}


def test_bulk_close_skips_cases_that_cannot_close(shop):
    store, _agent, client = shop
    case = _case(store)
    response = client.post("/console/bulk/", {"operation": "close", "case_ids": [case.pk]}, follow=True)
    case.refresh_from_db()
    assert case.status == "pending_review"
    assert "0 done, 1 skipped." in response.content.decode()


def test_another_stores_case_page_is_404(shop):
    _store, _agent, client = shop
    other = _case(make_store())
    assert client.get(f"/console/cases/{other.pk}/").status_code == 404


def test_warehouse_finds_a_case_by_return_tracking_number_and_offers_only_warehouse_steps(shop):
    store, _agent, client = shop
    supervisor = make_staff(store, "supervisor")
    case = _case(store)
    Case.objects.filter(pk=case.pk).update(status="return_in_transit", return_tracking_number="SF123")
    client.force_login(supervisor)
    response = client.get("/console/warehouse/?q=SF123")
    assert [a["action"] for a in response.context["actions"]] == ["mark_received"]


def test_supervisor_workload_counts_overdue_cases_per_agent(shop):
    store, agent, client = shop
    case = _case(store)
    services.assign_case(actor=buyer_staff(store, agent), case_id=case.pk, assignee_id=agent.pk)
    Case.objects.filter(pk=case.pk).update(deadline_at=clock.now() - dt.timedelta(minutes=5))
    workload = client.get("/console/supervisor/").context["workload"]
    assert [(w["name"], w["open"], w["overdue"]) for w in workload] == [("agent-a", 1, 1)]


def test_a_buyer_is_refused_the_console(shop):
    store, _agent, client = shop
    buyer = make_buyer(store, with_login=True)
    client.force_login(buyer.user)
    assert client.get("/console/").status_code == 403


def test_signed_out_visitor_is_sent_to_sign_in():
    response = Client().get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/console/"


def test_times_are_shown_in_the_stores_zone_and_the_zone_is_not_left_behind(shop):
    from django.utils import timezone

    store, _agent, client = shop
    store.timezone = "America/New_York"
    store.save(update_fields=["timezone"])
    case = _case(store)
    Case.objects.filter(pk=case.pk).update(created_at=dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC))
    html = client.get("/console/").content.decode()
    assert "2026-11-20 07:00" in html
    assert timezone.get_current_timezone_name() == "Asia/Shanghai"
