"""The console's live case page and queue, SLA countdowns, the SLA report chart and the webhook log with
its re-send button, through Django's test client."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client

from aftersales.cases import services
from aftersales.cases.models import Case, Message, TimelineEntry
from aftersales.cases.services import LineRequest, install_default_reason_codes
from aftersales.core import clock
from aftersales.notifications import services as notification_services
from aftersales.notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, OutboxEvent
from aftersales.sla.models import SlaPolicy
from aftersales.testing.factories import actor_for_user, buyer_of, make_buyer, make_order, make_staff, make_store

pytestmark = pytest.mark.django_db

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def found(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match


@pytest.fixture
def shop():
    store = make_store()
    install_default_reason_codes(store=store)
    agent = make_staff(store, "agent", username="agent-a")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(agent)
    return store, agent, client


def _case(store):
    buyer = make_buyer(store)
    order = make_order(store, buyer)
    line = order.lines.order_by("line_no")[0]
    return services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code="quality")


def _cursor(html: str) -> tuple[str, str, str]:
    match = re.search(r'id="live-poller"[^>]*hx-get="([^"?]+)\?timeline=(\d+)&amp;messages=(\d+)&amp;status=(\w+)"', html)
    assert match is not None
    return match.group(2), match.group(3), match.group(4)


# --- live case page -------------------------------------------------------------------------------

def test_the_case_page_starts_polling_after_what_it_shows(shop):
    store, _agent, client = shop
    case = _case(store)
    html = client.get(f"/console/cases/{case.pk}/").content.decode()
    last_entry = TimelineEntry.objects.filter(case=case).order_by("-pk").values_list("pk", flat=True)[0]
    assert _cursor(html) == (str(last_entry), "0", "pending_review")
    assert f'hx-get="/console/cases/{case.pk}/live/?' in html


def test_nothing_new_answers_204(shop):
    store, _agent, client = shop
    case = _case(store)
    timeline, messages, status = _cursor(client.get(f"/console/cases/{case.pk}/").content.decode())
    response = client.get(f"/console/cases/{case.pk}/live/",
                          {"timeline": timeline, "messages": messages, "status": status})
    assert (response.status_code, response.content) == (204, b"")


def test_the_poll_brings_only_what_came_after_the_cursor_with_internal_notes(shop):
    store, agent, client = shop
    case = _case(store)
    staff = actor_for_user(agent, store)
    services.post_message(actor=buyer_of(case.buyer), case_id=case.pk, body="first, already on the page")
    timeline, messages, status = _cursor(client.get(f"/console/cases/{case.pk}/").content.decode())
    note = services.post_message(actor=staff, case_id=case.pk, body="check the stock", visibility="internal")
    reply = services.post_message(actor=staff, case_id=case.pk, body="we are on it")
    html = client.get(f"/console/cases/{case.pk}/live/",
                      {"timeline": timeline, "messages": messages, "status": status}).content.decode()
    assert re.findall(r'id="m-(\d+)"', html) == [str(note.pk), str(reply.pk)]
    assert "first, already on the page" not in html
    new_entries = list(TimelineEntry.objects.filter(case=case, pk__gt=int(timeline)).order_by("at", "pk")
                       .values_list("pk", flat=True))
    assert re.findall(r'id="t-(\d+)"', html) == [str(pk) for pk in new_entries]
    assert _cursor(html) == (str(max(new_entries)), str(reply.pk), "pending_review")
    assert 'hx-swap-oob="beforeend:#timeline-list"' in html
    assert 'id="case-actions"' not in html  # the status did not move: the buttons stay as they are


def test_a_move_redraws_the_status_and_the_next_steps(shop):
    store, _agent, client = shop
    case = _case(store)
    timeline, messages, status = _cursor(client.get(f"/console/cases/{case.pk}/").content.decode())
    services.transition_case(actor=actor_for_user(make_staff(store, "supervisor"), store), case_id=case.pk,
                             action="approve")
    html = client.get(f"/console/cases/{case.pk}/live/",
                      {"timeline": timeline, "messages": messages, "status": status}).content.decode()
    assert found(r'<span class="badge" id="case-status" hx-swap-oob="true">([^<]+)</span>', html).group(1) == (
        "Waiting for the buyer to send the goods back")
    assert 'id="case-actions" hx-swap-oob="true"' in html
    assert _cursor(html)[2] == "awaiting_return"


def test_another_stores_case_does_not_poll(shop):
    _store, _agent, client = shop
    theirs = _case(make_store())
    assert client.get(f"/console/cases/{theirs.pk}/live/", {"timeline": 0, "messages": 0, "status": "x"}).status_code == 404


def test_a_cursor_that_is_not_a_number_is_refused(shop):
    store, _agent, client = shop
    case = _case(store)
    response = client.get(f"/console/cases/{case.pk}/live/", {"timeline": "1 or 1=1", "messages": 0})
    assert response.status_code == 422


# --- live queue -----------------------------------------------------------------------------------

def test_the_queue_refresh_returns_only_the_rows_with_the_same_filters(shop):
    store, _agent, client = shop
    mine = _case(store)
    theirs = _case(make_store())
    page = client.get("/console/?view=unassigned").content.decode()
    assert 'hx-get="?view=unassigned&amp;fragment=rows"' in page
    rows = client.get("/console/", {"view": "unassigned", "fragment": "rows"}).content.decode()
    assert rows.startswith('<tbody id="queue-rows"')
    assert "<h1>" not in rows
    assert re.findall(r'data-href="/console/cases/(\d+)/"', rows) == [str(mine.pk)]
    assert f"/console/cases/{theirs.pk}/" not in rows


def test_a_new_case_appears_in_the_next_refresh(shop):
    store, _agent, client = shop
    first = _case(store)
    client.get("/console/")
    second = _case(store)
    rows = client.get("/console/", {"fragment": "rows"}).content.decode()
    assert re.findall(r'data-href="/console/cases/(\d+)/"', rows) == [str(second.pk), str(first.pk)]


# --- SLA --------------------------------------------------------------------------------------------

def _policy(store):
    return SlaPolicy.objects.create(store=store, name="24 h", first_response_minutes=60, resolution_minutes=72 * 60,
                                    business_time=False)


def test_the_queue_shows_when_the_shop_must_answer_and_turns_amber_then_red(shop, time_machine):
    store, _agent, client = shop
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    _policy(store)
    case = _case(store)

    def badge() -> tuple[str | Any, ...]:
        rows = client.get("/console/", {"fragment": "rows"}).content.decode()
        return found(r'<span class="sla sla-(\w+)"[^>]*>([^<]*?) <time[^>]*>([^<]*)</time><br> \(<span class="sla-left">([^<]*)',
                         rows).groups()

    assert badge() == ("running", "answer by", "03-02 11:00", "1 h 0 min left")
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 50, tzinfo=SHANGHAI), tick=False)
    assert badge() == ("warning", "answer by", "03-02 11:00", "10 min left")
    time_machine.move_to(dt.datetime(2026, 3, 2, 11, 30, tzinfo=SHANGHAI), tick=False)
    assert badge() == ("breached", "breached · was due", "03-02 11:00", "overdue by 30 min")
    assert Case.objects.get(pk=case.pk).status == "pending_review"


def test_the_case_page_lists_every_clock(shop, time_machine):
    store, agent, client = shop
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    _policy(store)
    case = _case(store)
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 20, tzinfo=SHANGHAI), tick=False)
    services.post_message(actor=actor_for_user(agent, store), case_id=case.pk, body="we are looking")
    html = client.get(f"/console/cases/{case.pk}/").content.decode()
    section = html[html.index('id="case-sla"'):]
    section = section[:section.index("</section>")]
    assert re.findall(r'<span class="sla sla-(\w+)"[^>]*>([^:<]+):', section) == [
        ("met", "First response"), ("running", "Resolution")]
    assert "resolve by <time" in section and "03-05 10:00" in section


def test_a_case_without_an_sla_policy_shows_no_clock(shop):
    store, _agent, client = shop
    case = _case(store)
    html = client.get(f"/console/cases/{case.pk}/").content.decode()
    assert '<section class="card" aria-labelledby="sla-h" id="case-sla" hidden>' in html
    assert 'class="sla sla-' not in html


def test_a_reply_seen_live_redraws_the_sla_clocks(shop, time_machine):
    store, _agent, client = shop
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    _policy(store)
    case = _case(store)
    timeline, messages, status = _cursor(client.get(f"/console/cases/{case.pk}/").content.decode())
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI), tick=False)
    services.post_message(actor=actor_for_user(make_staff(store, "agent"), store), case_id=case.pk, body="hello")
    html = client.get(f"/console/cases/{case.pk}/live/",
                      {"timeline": timeline, "messages": messages, "status": status}).content.decode()
    card = html[html.index('id="case-sla" hx-swap-oob="true"'):]
    assert re.findall(r'<span class="sla sla-(\w+)"[^>]*>([^:<]+):', card[:card.index("</section>")]) == [
        ("met", "First response"), ("running", "Resolution")]
    now = html[html.index('<span id="case-sla-now" hx-swap-oob="true">'):]
    assert found(r'<span class="sla sla-(\w+)"', now).group(1) == "running"


def test_the_sla_report_draws_met_and_breached_per_target_kind_and_agent(shop, time_machine):
    store, agent, client = shop
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    _policy(store)
    answered, late = _case(store), _case(store)
    services.post_message(actor=actor_for_user(agent, store), case_id=answered.pk, body="hello")
    services.assign_case(actor=actor_for_user(agent, store), case_id=late.pk, assignee_id=agent.pk)
    time_machine.move_to(dt.datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI), tick=False)
    from aftersales.sla import services as sla_services

    sla_services.sweep()
    html = client.get("/console/sla/", {"since": "2026-03-01", "until": "2026-03-02"}).content.decode()
    assert "1 met, 1 breached, 2 still running" in html and "50% met on time" in html
    target = html[html.index('id="chart-target"'):html.index("</svg>", html.index('id="chart-target"'))]
    bars = re.findall(r'<g transform="translate\(0 (\d+)\)">\s*<text x="0" y="19">([^<]+)</text>(.*?)</g>', target, re.S)
    first_response = [(label, re.findall(r'data-series="(\w+)" data-value="(\d+)"', body)) for _y, label, body in bars]
    assert first_response == [("First response", [("met", "1"), ("breached", "1")]),
                              ("Next response", []), ("Resolution", [("open", "2")])]
    agents = html[html.index('id="chart-agent"'):]
    assert "agent-a" in agents[:agents.index("</svg>")]
    assert client.get("/console/sla/", {"since": "2026-03-03", "until": "2026-03-01"}).status_code == 422


def test_the_sla_report_counts_only_the_stores_own_clocks(shop, time_machine):
    _store, _agent, client = shop
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    other = make_store()
    install_default_reason_codes(store=other)
    _policy(other)
    _case(other)
    html = client.get("/console/sla/", {"since": "2026-03-01", "until": "2026-03-02"}).content.decode()
    assert "0 met, 0 breached, 0 still running" in html


# --- webhooks ---------------------------------------------------------------------------------------

def _delivered(store, url="https://hooks.example/in"):
    admin = actor_for_user(make_staff(store, "admin"), store)
    endpoint = notification_services.create_endpoint(actor=admin, url=url)
    now = clock.now()
    event = OutboxEvent.objects.create(store=store, type="case.created", payload={}, created_at=now, dispatched_at=now)
    delivery = Delivery.objects.create(store=store, event=event, channel="webhook", target=f"endpoint:{endpoint.pk}",
                                       endpoint=endpoint, status=DeliveryStatus.FAILED, attempts=3,
                                       next_attempt_at=now, created_at=now)
    DeliveryAttempt.objects.create(store=store, delivery=delivery, attempted_at=now, duration_ms=87,
                                   response_status=503, succeeded=False)
    return delivery


def test_the_store_admin_sees_the_delivery_log_and_can_send_again(shop):
    store, _agent, _client = shop
    delivery = _delivered(store)
    admin = make_staff(store, "admin", username="admin-a")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin)
    html = client.get("/console/webhooks/").content.decode()
    row = html[html.index(f'id="delivery-{delivery.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "case.created" in row and "https://hooks.example/in" in row and "HTTP 503" in row and "87 ms" in row
    assert 'name="csrfmiddlewaretoken"' in row
    response = client.post(f"/console/webhooks/deliveries/{delivery.pk}/resend/", {"next": "/console/webhooks/"})
    assert response["Location"] == "/console/webhooks/"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.first_attempt_at) == ("pending", None)


def test_the_resend_needs_the_csrf_token(shop):
    store, _agent, _client = shop
    delivery = _delivered(store)
    admin = make_staff(store, "admin", username="admin-b")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(f"/console/webhooks/deliveries/{delivery.pk}/resend/").status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "failed"


def test_an_agent_may_not_see_or_resend_webhooks(shop):
    store, _agent, client = shop
    delivery = _delivered(store)
    assert client.get("/console/webhooks/").status_code == 403
    client.post(f"/console/webhooks/deliveries/{delivery.pk}/resend/")
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "/console/webhooks/" not in client.get("/console/").content.decode()


def test_another_stores_delivery_cannot_be_resent(shop):
    store, _agent, _client = shop
    theirs = _delivered(make_store())
    admin = make_staff(store, "admin", username="admin-c")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin)
    assert f'id="delivery-{theirs.pk}"' not in client.get("/console/webhooks/").content.decode()
    client.post(f"/console/webhooks/deliveries/{theirs.pk}/resend/")
    theirs.refresh_from_db()
    assert theirs.status == "failed"
    assert Message.objects.count() == 0


@pytest.mark.parametrize(("moment", "expected"), [
    (dt.datetime(2026, 3, 6, 17, 30), "running"),  # Friday, within the day
    (dt.datetime(2026, 3, 7, 12, 0), "running"),  # Saturday: the clock does not count
    (dt.datetime(2026, 3, 9, 14, 0), "warning"),  # Monday, past 80% of 8 working hours
    (dt.datetime(2026, 3, 9, 18, 0), "breached"),
])
def test_the_queue_reads_the_same_state_as_the_case_page_in_business_hours(shop, time_machine, moment, expected):
    from aftersales.console import sla as sla_view

    store, _agent, _client = shop
    time_machine.move_to(dt.datetime(2026, 3, 6, 16, 0, tzinfo=SHANGHAI), tick=False)  # a Friday afternoon
    SlaPolicy.objects.create(store=store, name="working hours", first_response_minutes=8 * 60,
                             resolution_minutes=24 * 60, business_time=True)
    case = _case(store)
    time_machine.move_to(moment.replace(tzinfo=SHANGHAI), tick=False)
    on_page = {c["target"]: c["state"] for c in sla_view.case_clocks(case)["clocks"]}
    row = Case.objects.get(pk=case.pk)
    sla_view.attach_to_rows(store.pk, [row])
    shown = row.sla  # type: ignore[attr-defined]
    assert (shown["target"], shown["state"], on_page["first_response"]) == ("first_response", expected, expected)


def test_warehouse_staff_neither_see_nor_open_the_sla_report(shop):
    store, _agent, agent_client = shop
    assert 'href="/console/sla/"' in agent_client.get("/console/").content.decode()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_staff(store, "warehouse", username="wh-a"))
    assert 'href="/console/sla/"' not in client.get("/console/warehouse/").content.decode()
    assert client.get("/console/sla/").status_code == 403
