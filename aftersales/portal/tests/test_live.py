"""The buyer's progress page updates itself: the poll brings only public entries after the cursor, for
this buyer's case only; and the page says by when the shop must answer."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from aftersales.cases import services
from aftersales.cases.models import TimelineEntry
from aftersales.cases.services import LineRequest, install_default_reason_codes
from aftersales.sla.models import SlaPolicy
from aftersales.testing.factories import actor_for_user, buyer_of, make_buyer, make_order, make_staff, make_store

pytestmark = pytest.mark.django_db

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def found(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match


@pytest.fixture
def buyer_case():
    store = make_store()
    install_default_reason_codes(store=store)
    buyer = make_buyer(store, with_login=True)
    order = make_order(store, buyer)
    line = order.lines.order_by("line_no")[0]
    case = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code="quality")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    return store, buyer, case, client


def _cursor(html: str) -> dict[str, str]:
    match = re.search(r'id="live-poller"[^>]*hx-get="([^"?]+)\?timeline=(\d+)&amp;messages=(\d+)&amp;status=(\w+)"', html)
    assert match is not None
    return {"timeline": match.group(2), "messages": match.group(3), "status": match.group(4)}


def test_the_poll_brings_public_entries_after_the_cursor_and_never_internal_notes(buyer_case):
    store, _buyer, case, client = buyer_case
    cursor = _cursor(client.get(f"/portal/cases/{case.pk}/").content.decode())
    shop = actor_for_user(make_staff(store, "supervisor"), store)
    services.post_message(actor=shop, case_id=case.pk, body="INTERNAL: buyer returns a lot", visibility="internal")
    reply = services.post_message(actor=shop, case_id=case.pk, body="Please send us a photo of the label")
    html = client.get(f"/portal/cases/{case.pk}/live/", cursor).content.decode()
    assert re.findall(r'id="m-(\d+)"', html) == [str(reply.pk)]
    assert "INTERNAL" not in html and "internal note" not in html
    public = list(TimelineEntry.objects.filter(case=case, pk__gt=int(cursor["timeline"])).exclude(event="note")
                  .order_by("at", "pk").values_list("pk", flat=True))
    assert re.findall(r'id="t-(\d+)"', html) == [str(pk) for pk in public]
    assert _cursor(html)["messages"] == str(reply.pk)
    # Asked again from the new cursor: nothing more.
    assert client.get(f"/portal/cases/{case.pk}/live/", _cursor(html)).status_code == 204


def test_a_decision_redraws_where_it_stands(buyer_case):
    store, _buyer, case, client = buyer_case
    cursor = _cursor(client.get(f"/portal/cases/{case.pk}/").content.decode())
    services.transition_case(actor=actor_for_user(make_staff(store, "supervisor"), store), case_id=case.pk,
                             action="approve")
    html = client.get(f"/portal/cases/{case.pk}/live/", cursor).content.decode()
    assert 'id="case-now" hx-swap-oob="true"' in html
    assert found(r'<p id="now-words">([^<]+)</p>', html).group(1) == (
        "Approved. Please send the goods back and enter the carrier and tracking number below.")
    assert _cursor(html)["status"] == "awaiting_return"


def test_another_buyers_case_is_not_found(buyer_case):
    store, _buyer, _case, client = buyer_case
    other_buyer = make_buyer(store)
    order = make_order(store, other_buyer)
    theirs = services.create_case(actor=buyer_of(other_buyer), kind="return_refund", order_id=order.pk,
                                  lines=[LineRequest(order.lines.order_by("line_no")[0].pk, 1)], reason_code="quality")
    assert client.get(f"/portal/cases/{theirs.pk}/live/", {"timeline": 0, "messages": 0}).status_code == 404


def test_another_stores_case_is_not_found(buyer_case):
    _store, _buyer, _case, client = buyer_case
    store = make_store()
    install_default_reason_codes(store=store)
    buyer = make_buyer(store)
    order = make_order(store, buyer)
    theirs = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                  lines=[LineRequest(order.lines.order_by("line_no")[0].pk, 1)], reason_code="quality")
    assert client.get(f"/portal/cases/{theirs.pk}/live/", {"timeline": 0, "messages": 0}).status_code == 404


def test_the_buyer_reads_by_when_the_shop_must_answer(time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    store = make_store()
    install_default_reason_codes(store=store)
    SlaPolicy.objects.create(store=store, name="1 h", first_response_minutes=60, business_time=False)
    buyer = make_buyer(store, with_login=True)
    case = services.create_case(actor=buyer_of(buyer), kind="inquiry", subject="尺码", description="有大一号吗")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    html = client.get(f"/portal/cases/{case.pk}/").content.decode()
    promise = found(r'<p id="sla-promise" class="sla sla-(\w+)">\s*([^<]+?)\s*<time[^>]*>([^<]+)</time>', html)
    assert promise.groups() == ("running", "The shop must answer by", "2026-03-02 11:00")
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(buyer.user)  # type: ignore[arg-type]
    time_machine.move_to(dt.datetime(2026, 3, 2, 11, 5, tzinfo=SHANGHAI), tick=False)
    html = zh.get(f"/portal/cases/{case.pk}/").content.decode()
    promise = found(r'<p id="sla-promise" class="sla sla-(\w+)">\s*([^<]+?)\s*<time[^>]*>([^<]+)</time>', html)
    assert promise.groups() == ("breached", "商家应在此时间前答复", "2026-03-02 11:00")


def test_the_shops_sla_bookkeeping_stays_off_the_buyers_timeline(time_machine):
    from aftersales.sla import services as sla_services

    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    store = make_store()
    install_default_reason_codes(store=store)
    SlaPolicy.objects.create(store=store, name="1 h", first_response_minutes=60, business_time=False)
    buyer = make_buyer(store, with_login=True)
    case = services.create_case(actor=buyer_of(buyer), kind="inquiry", subject="尺码", description="有大一号吗")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    cursor = _cursor(client.get(f"/portal/cases/{case.pk}/").content.decode())
    time_machine.move_to(dt.datetime(2026, 3, 2, 11, 30, tzinfo=SHANGHAI), tick=False)
    sla_services.sweep_clocks()
    assert set(TimelineEntry.objects.filter(case=case, event__startswith="sla_").values_list("event", flat=True)) == {
        "sla_warning", "sla_breached", "sla_escalated"}
    assert client.get(f"/portal/cases/{case.pk}/live/", cursor).status_code == 204
    assert "SLA" not in client.get(f"/portal/cases/{case.pk}/").content.decode().split('id="timeline-list"')[1]


def test_the_promise_goes_away_live_once_the_shop_has_answered(time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI), tick=False)
    store = make_store()
    install_default_reason_codes(store=store)
    SlaPolicy.objects.create(store=store, name="1 h", first_response_minutes=60, business_time=False)
    buyer = make_buyer(store, with_login=True)
    case = services.create_case(actor=buyer_of(buyer), kind="inquiry", subject="尺码", description="有大一号吗")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    cursor = _cursor(client.get(f"/portal/cases/{case.pk}/").content.decode())
    services.post_message(actor=actor_for_user(make_staff(store, "agent"), store), case_id=case.pk,
                          body="We have size L in stock")
    html = client.get(f"/portal/cases/{case.pk}/live/", cursor).content.decode()
    assert '<p id="sla-promise" hidden hx-swap-oob="true"></p>' in html
