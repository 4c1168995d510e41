"""Receiving by scan, inspection with photos, disposition and the inventory export, through the API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from aftersales.cases.models import Case, Message
from aftersales.core import events
from aftersales.logistics.tests.helpers import approved_case, png, post_generic, warehouse
from aftersales.testing import factories as f
from aftersales.tests import token_caller

pytestmark = pytest.mark.django_db

SF = "SF1234567890123"
APPAREL_CHECKS = ["complete", "tags", "damage", "wrong_item", "empty_parcel"]


@pytest.fixture
def store():
    store = f.make_store()
    warehouse(store)
    return store


def _delivered(store):
    case = approved_case(store)  # line 0: apparel
    caller = token_caller(store)
    caller.post(f"/logistics/cases/{case.pk}/return-shipment", {"carrier": "SF", "tracking_number": SF}, expect=201)
    post_generic(store, {"carrier": "SF", "tracking_number": SF,
                         "events": [{"at": "2026-11-21T15:00:00+08:00", "status": "delivered"}]})
    return case, caller


def _inspect(caller, case, checklist, *, photos=(), expect=201):
    data: dict[str, object] = {"checklist": json.dumps(checklist), "grade": "B", "notes": "checked"}
    if photos:
        data["photos"] = [SimpleUploadedFile(f"p{i}.png", p, content_type="image/png") for i, p in enumerate(photos)]
    return caller.request("POST", f"/warehouse/cases/{case.pk}/inspection", data=data, expect=expect).json()


def test_scan_by_tracking_number_then_a_passed_inspection_goes_to_refunding(store):
    case, caller = _delivered(store)
    scanned = caller.post("/warehouse/receipts", {"code": SF})
    assert (scanned["status"], scanned["checklist"]) == ("inspecting", APPAREL_CHECKS)
    inspection = _inspect(caller, case, dict.fromkeys(APPAREL_CHECKS, True))
    assert (inspection["result"], inspection["failed_checks"]) == ("passed", [])
    assert Case.objects.get(pk=case.pk).status == "refunding"


def test_scan_by_case_number_marks_goods_received_when_no_push_came(store):
    case = approved_case(store)
    scanned = token_caller(store).post("/warehouse/receipts", {"code": case.number})
    assert scanned["status"] == "inspecting"
    assert [e.event for e in case.timeline.order_by("at", "id")][-2:] == ["mark_received", "start_inspection"]


def test_a_failed_inspection_tells_the_buyer_why_with_the_photos(store):
    case, caller = _delivered(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    inspection = _inspect(caller, case, {**dict.fromkeys(APPAREL_CHECKS, True), "tags": False},
                          photos=[png(), png((0, 0, 200))])
    assert (inspection["result"], inspection["failed_checks"], len(inspection["photo_ids"])) == ("failed", ["tags"], 2)
    assert Case.objects.get(pk=case.pk).status == "inspection_failed"
    [message] = Message.objects.filter(case=case, visibility="public")
    ids = ", ".join(f"#{pk}" for pk in inspection["photo_ids"])
    assert message.body.splitlines()[0] == f"验货未通过：吊牌已剪除或缺失。验货照片见附件 {ids}。您可以接受部分退款，或申请平台介入。"
    assert sorted(case.attachments.values_list("pk", flat=True)) == sorted(inspection["photo_ids"])


def test_a_failed_inspection_without_photos_is_refused_and_writes_nothing(store):
    case, caller = _delivered(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    error = _inspect(caller, case, {**dict.fromkeys(APPAREL_CHECKS, True), "damage": False}, expect=422)
    assert error["code"] == "photos_required"
    assert (Case.objects.get(pk=case.pk).status, case.messages.count()) == ("inspecting", 0)


def test_an_incomplete_checklist_names_the_missing_checks(store):
    case, caller = _delivered(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    error = _inspect(caller, case, {"complete": True}, expect=422)
    assert (error["code"], error["details"]["missing"]) == ("checklist_incomplete",
                                                            ["tags", "damage", "wrong_item", "empty_parcel"])


def test_dispositions_publish_an_inventory_event_and_appear_in_the_csv(store, django_capture_on_commit_callbacks):
    case, caller = _delivered(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    _inspect(caller, case, dict.fromkeys(APPAREL_CHECKS, True))
    received: list[dict] = []

    def listener(name, payload):
        received.append(payload)

    events.subscribe("inventory.adjusted", listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            line = case.lines.get()
            caller.post(f"/warehouse/cases/{case.pk}/dispositions",
                        {"lines": [{"case_line_id": line.pk, "disposition": "restock"}], "warehouse_code": "SH1"},
                        expect=201)
    finally:
        events.unsubscribe("inventory.adjusted", listener)
    assert received == [{"store_id": store.pk, "case_id": case.pk, "number": case.number, "adjustments": [
        {"sku": "TSHIRT-M", "quantity": 1, "disposition": "restock", "sellable_delta": 1, "warehouse": "SH1"}]}]
    now = dt.datetime.now(dt.UTC)
    response = caller.request("GET", "/warehouse/inventory-adjustments.csv", {
        "since": (now - dt.timedelta(hours=1)).isoformat(), "until": (now + dt.timedelta(hours=1)).isoformat()},
        expect=200)
    header, row = response.content.decode().splitlines()
    assert header == "decided_at,case_number,sku,quantity,disposition,sellable_delta,warehouse,grade,decided_by"
    assert row.split(",")[1:8] == [case.number, "TSHIRT-M", "1", "restock", "1", "SH1", "B"]


def test_another_stores_case_is_404_on_the_warehouse_routes(store):
    case, _ = _delivered(store)
    other = token_caller(f.make_store())
    assert other.post("/warehouse/receipts", {"code": case.number}, expect=404)["code"] == "not_found"
    other.get(f"/warehouse/cases/{case.pk}/checklist", expect=404)
    _inspect(other, case, {"complete": True}, expect=404)
