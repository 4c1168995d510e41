"""Self-ship, pickup and drop-off through the API; carrier pushes; the return slip."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from pypdf import PdfReader

from aftersales.cases.models import Case, Message
from aftersales.logistics import services
from aftersales.logistics.models import TrackingEvent
from aftersales.testing import factories as f
from aftersales.tests import token_caller

from .helpers import aggregator_body, approved_case, post_aggregator, post_generic, warehouse

pytestmark = pytest.mark.django_db

SF = "SF1234567890123"


def _codes(caplog) -> list[str]:
    return [r.code for r in caplog.records if r.name == "aftersales.logistics.services"]


@pytest.fixture
def store():
    store = f.make_store()
    warehouse(store)
    return store


def _ship(store, case, number=SF, **extra):
    return token_caller(store).post(f"/logistics/cases/{case.pk}/return-shipment",
                                    {"carrier": "SF", "tracking_number": number, **extra}, expect=201)


def test_self_ship_then_a_delivered_push_marks_the_goods_received(store):
    case = approved_case(store)
    shipment = _ship(store, case)
    assert (shipment["status"], shipment["carrier"], shipment["tracking_number"]) == ("in_transit", "SF", SF)
    assert Case.objects.get(pk=case.pk).status == "return_in_transit"

    body = aggregator_body(store, company="shunfeng", number=SF, state="3", events=[
        ("2026-11-21 15:02:00", "签收", "已签收，签收人：仓库"), ("2026-11-20 09:00:00", "揽收", "顺丰已揽收")])
    assert post_aggregator(store, body) == {"result": True, "returnCode": "200", "message": "成功", "new_events": 2}

    case.refresh_from_db()
    assert case.status == "received"
    shipments = token_caller(store).get(f"/logistics/cases/{case.pk}/shipments")
    assert [(e["status"], e["description"]) for e in shipments[0]["events"]] == [
        ("in_transit", "顺丰已揽收"), ("delivered", "已签收，签收人：仓库")]
    assert shipments[0]["delivered_at"] == "2026-11-21T07:02:00Z"


def test_the_same_push_twice_stores_its_events_once(store):
    case = approved_case(store)
    _ship(store, case)
    body = aggregator_body(store, company="shunfeng", number=SF, state="0",
                           events=[("2026-11-20 09:00:00", "揽收", "顺丰已揽收")])
    assert post_aggregator(store, body)["new_events"] == 1
    assert post_aggregator(store, body)["new_events"] == 0
    assert TrackingEvent.objects.filter(store=store).count() == 1


def test_a_store_that_waits_for_the_scan_keeps_the_case_in_transit_on_delivery(store):
    services.configure(actor=f.staff(store, "admin"), receive_on_delivery=False)
    case = approved_case(store)
    _ship(store, case)
    post_generic(store, {"carrier": "SF", "tracking_number": SF,
                         "events": [{"at": "2026-11-21T15:00:00+08:00", "status": "delivered"}]})
    assert Case.objects.get(pk=case.pk).status == "return_in_transit"


def test_a_lost_parcel_raises_an_internal_note_for_an_agent(store):
    case = approved_case(store)
    _ship(store, case)
    push = {"carrier": "SF", "tracking_number": SF,
            "events": [{"at": "2026-11-22T10:00:00+08:00", "status": "lost", "description": "遗失"}]}
    post_generic(store, push)
    [note] = Message.objects.filter(case=case)
    assert (note.visibility, note.author_kind) == ("internal", "system")
    assert note.body.startswith("物流异常 / Logistics exception: 承运商报告包裹丢失")
    assert list(case.timeline.filter(event="note").values_list("actor_label", flat=True)) == ["carrier"]
    assert Case.objects.get(pk=case.pk).status == "return_in_transit"


@pytest.mark.parametrize(("push", "status", "code"), [
    ({"carrier": "SF", "tracking_number": SF, "events": [{"at": "yesterday", "status": "delivered"}]}, 400,
     "malformed_push"),
    ({"carrier": "SF", "tracking_number": SF, "events": [{"at": "2026-11-21T10:00:00", "status": "gone"}]}, 400,
     "malformed_push"),
    ({"carrier": "SF", "tracking_number": "SF9999999999999", "events": []}, 404, "unknown_shipment"),
])
def test_a_malformed_or_unknown_push_is_refused_with_its_code_and_logged(store, push, status, code, caplog):
    case = approved_case(store)
    _ship(store, case)
    with caplog.at_level(logging.WARNING, logger="aftersales.logistics.services"):
        assert post_generic(store, push, expect=status)["code"] == code
    assert _codes(caplog) == [code]
    assert TrackingEvent.objects.filter(store=store).count() == 0


def test_a_push_signed_with_another_secret_is_401_and_writes_nothing(store, caplog):
    case = approved_case(store)
    _ship(store, case)
    body = aggregator_body(store, company="shunfeng", number=SF, state="3",
                           events=[("2026-11-21 15:02:00", "签收", "已签收")], secret="not-the-secret")
    with caplog.at_level(logging.WARNING, logger="aftersales.logistics.services"):
        assert post_aggregator(store, body, expect=401)["code"] == "invalid_signature"
    assert _codes(caplog) == ["invalid_signature"]
    assert (TrackingEvent.objects.count(), Case.objects.get(pk=case.pk).status) == (0, "return_in_transit")


def test_another_stores_secret_does_not_sign_for_this_store(store):
    other = f.make_store()
    case = approved_case(store)
    _ship(store, case)
    push = {"carrier": "SF", "tracking_number": SF, "events": []}
    assert post_generic(store, push, secret=services.settings_for(other.pk).webhook_secret,
                        expect=401)["code"] == "invalid_signature"


def test_an_aggregator_push_without_last_result_is_malformed(store):
    body = aggregator_body(store, company="shunfeng", number=SF, state="3", events=[])
    body["param"] = '{"status": "polling"}'
    body["sign"] = services.aggregator_signature(body["param"], services.settings_for(store.pk).webhook_secret)
    assert post_aggregator(store, body, expect=400)["code"] == "malformed_push"


def test_a_bad_tracking_number_is_422_and_the_case_does_not_move(store):
    case = approved_case(store)
    error = token_caller(store).post(f"/logistics/cases/{case.pk}/return-shipment",
                                     {"carrier": "SF", "tracking_number": "YT1234567890123"}, expect=422)
    assert (error["code"], error["details"]) == ("invalid_tracking_number",
                                                 {"field": "tracking_number", "carrier": "SF"})
    assert (Case.objects.get(pk=case.pk).status, case.shipments.count()) == ("awaiting_return", 0)


def test_pickup_is_booked_with_a_reference_and_moves_the_case_when_collected(store, settings):
    case = approved_case(store)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    caller = token_caller(store)
    booked = caller.post(f"/logistics/cases/{case.pk}/pickup", {
        "carrier": "JD", "address": "上海市徐汇区漕溪北路 1 号", "contact_name": "李四", "contact_phone": "13800000000",
        "window_start": start.isoformat(), "window_end": (start + dt.timedelta(hours=2)).isoformat()}, expect=201)
    assert (booked["status"], booked["method"], booked["tracking_number"]) == ("pickup_booked", "pickup", "")
    assert booked["booking_reference"].startswith("PU-JD-")
    assert Case.objects.get(pk=case.pk).status == "awaiting_return"

    collected = caller.post(f"/logistics/shipments/{booked['id']}/collected", {"tracking_number": "JDVA12345678901"})
    assert (collected["status"], collected["tracking_number"]) == ("in_transit", "JDVA12345678901")
    assert Case.objects.get(pk=case.pk).status == "return_in_transit"


def test_a_pickup_window_in_the_past_is_refused(store):
    case = approved_case(store)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    error = token_caller(store).post(f"/logistics/cases/{case.pk}/pickup", {
        "carrier": "JD", "address": "上海", "contact_name": "李四", "contact_phone": "138",
        "window_start": start.isoformat(), "window_end": (start + dt.timedelta(hours=2)).isoformat()}, expect=422)
    assert error["code"] == "invalid_window"


def test_drop_off_needs_one_of_the_stores_points(store):
    case = approved_case(store)
    point = services.add_drop_off_point(actor=f.staff(store, "admin"), name="菜鸟驿站 漕河泾", address="上海")
    error = _ship_error = token_caller(store).post(f"/logistics/cases/{case.pk}/return-shipment", {
        "carrier": "SF", "tracking_number": SF, "method": "drop_off"}, expect=422)
    assert error["code"] == "invalid_drop_off_point"
    del _ship_error
    shipment = _ship(store, case, method="drop_off", drop_off_point_id=point.pk)
    assert (shipment["method"], shipment["drop_off_point_id"]) == ("drop_off", point.pk)


def test_routing_sends_electronics_from_guangdong_to_the_shenzhen_warehouse(store):
    admin = f.staff(store, "admin")
    shenzhen = warehouse(store, code="SZ1", name="深圳电子仓", province="广东省", city="深圳市", is_default=False)
    services.add_routing_rule(actor=admin, warehouse_id=shenzhen.pk, category="electronics", province="广东省")
    phone_case = approved_case(store, line_index=1)
    shirt_case = approved_case(store, line_index=0)
    caller = token_caller(store)
    assert caller.get(f"/logistics/cases/{phone_case.pk}/return-address", {"province": "广东省"})["warehouse_id"] == shenzhen.pk
    assert caller.get(f"/logistics/cases/{phone_case.pk}/return-address", {"province": "浙江省"})["name"] == "上海退货仓"
    assert caller.get(f"/logistics/cases/{shirt_case.pk}/return-address", {"province": "广东省"})["name"] == "上海退货仓"


def test_the_return_slip_is_a_pdf_with_the_case_number_address_and_items(store):
    case = approved_case(store)
    response = token_caller(store).request("GET", f"/logistics/cases/{case.pk}/return-slip.pdf", expect=200)
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert case.number in text
    assert "TSHIRT-M" in text


def test_the_return_slip_can_be_filed_on_the_case_for_the_notification(store):
    case = approved_case(store)
    attachment_id = services.attach_return_slip(actor=f.staff(store, "admin"), case_id=case.pk)
    attachment = case.attachments.get(pk=attachment_id)
    assert (attachment.content_type, attachment.original_name) == ("application/pdf",
                                                                   f"return-slip-{case.number}.pdf")


def test_another_stores_shipment_and_case_are_404(store):
    case = approved_case(store)
    shipment = _ship(store, case)
    other = token_caller(f.make_store())
    assert other.get(f"/logistics/shipments/{shipment['id']}", expect=404)["code"] == "not_found"
    assert other.get(f"/logistics/cases/{case.pk}/shipments", expect=404)["code"] == "not_found"
    other.post(f"/logistics/cases/{case.pk}/return-shipment", {"carrier": "SF", "tracking_number": SF}, expect=404)
    other.request("GET", f"/logistics/cases/{case.pk}/return-slip.pdf", expect=404)
