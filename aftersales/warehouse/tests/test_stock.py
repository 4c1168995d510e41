"""Stock per warehouse and SKU, through the API: counts and adjustments, replacements reserving a unit,
shipping consuming it, giving the exchange up releasing it, restocked returns coming back on the shelf."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from aftersales.cases import services as case_services
from aftersales.catalog.models import Product
from aftersales.core import events
from aftersales.logistics.tests.helpers import approved_case, warehouse
from aftersales.testing import factories as f
from aftersales.tests import token_caller
from aftersales.warehouse.models import StockLevel

pytestmark = pytest.mark.django_db

APPAREL_CHECKS = ["complete", "tags", "damage", "wrong_item", "empty_parcel"]


@pytest.fixture
def store():
    store = f.make_store()
    warehouse(store)
    Product.objects.create(store=store, sku="TSHIRT-L", name="T恤 L", price=Decimal("99.00"))
    return store


@pytest.fixture
def caller(store):
    return token_caller(store)


def _stock(caller, sku="TSHIRT-L"):
    return [(s["warehouse_code"], s["on_hand"], s["reserved"], s["available"])
            for s in caller.get("/warehouse/stock", {"sku": sku})]


def _set(caller, store, on_hand, sku="TSHIRT-L"):
    sh1 = store.warehouses.get(code="SH1")
    return caller.request("PUT", "/warehouse/stock", {"warehouse_id": sh1.pk, "sku": sku, "on_hand": on_hand},
                          expect=200).json()


def _exchange_case(store):
    case = approved_case(store, "exchange")  # awaiting the return
    return case, case.lines.get()


def _choose(caller, case, line, sku="TSHIRT-L", expect=201):
    return caller.post(f"/logistics/cases/{case.pk}/exchanges", {"order_line_id": line.order_line_id, "sku": sku},
                       expect=expect)


def _csv(caller):
    now = dt.datetime.now(dt.UTC)
    response = caller.request("GET", "/warehouse/inventory-adjustments.csv", {
        "since": (now - dt.timedelta(hours=1)).isoformat(), "until": (now + dt.timedelta(hours=1)).isoformat()},
        expect=200)
    return [line.split(",")[1:7] for line in response.content.decode().splitlines()[1:]]


def test_a_count_and_an_adjustment_set_the_level_and_appear_in_the_export_and_the_event(
        store, caller, django_capture_on_commit_callbacks):
    heard: list[dict] = []

    def listener(event, payload):
        heard.append(payload)

    events.subscribe("inventory.adjusted", listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert _set(caller, store, 5)["available"] == 5
            sh1 = store.warehouses.get(code="SH1")
            adjusted = caller.post("/warehouse/stock/adjustments", {"warehouse_id": sh1.pk, "sku": "TSHIRT-L",
                                                                    "delta": -2, "reason": "破损报废"})
    finally:
        events.unsubscribe("inventory.adjusted", listener)
    assert (adjusted["on_hand"], adjusted["reserved"], adjusted["available"]) == (3, 0, 3)
    assert [a for p in heard for a in p["adjustments"]] == [
        {"sku": "TSHIRT-L", "quantity": 5, "disposition": "count", "sellable_delta": 5, "warehouse": "SH1"},
        {"sku": "TSHIRT-L", "quantity": 2, "disposition": "adjust", "sellable_delta": -2, "warehouse": "SH1"}]
    assert _csv(caller) == [["", "TSHIRT-L", "5", "count", "5", "SH1"], ["", "TSHIRT-L", "2", "adjust", "-2", "SH1"]]
    history = caller.get(f"/warehouse/stock/{sh1.pk}/TSHIRT-L/movements")
    assert [(m["kind"], m["on_hand_after"], m["reason"]) for m in history] == [("adjust", 3, "破损报废"),
                                                                                ("count", 5, "count")]


def test_an_adjustment_below_zero_is_refused_and_changes_nothing(store, caller):
    _set(caller, store, 1)
    sh1 = store.warehouses.get(code="SH1")
    error = caller.post("/warehouse/stock/adjustments", {"warehouse_id": sh1.pk, "sku": "TSHIRT-L", "delta": -2,
                                                         "reason": "盘亏"}, expect=409)
    assert error["code"] == "insufficient_stock"
    assert _stock(caller) == [("SH1", 1, 0, 1)]


def test_choosing_a_replacement_reserves_a_unit_and_the_next_case_finds_none(store, caller):
    _set(caller, store, 1)
    first, first_line = _exchange_case(store)
    assert _choose(caller, first, first_line)["status"] == "reserved"
    assert _stock(caller) == [("SH1", 1, 1, 0)]

    second, second_line = _exchange_case(store)
    error = _choose(caller, second, second_line, expect=409)
    assert (error["code"], error["details"]) == ("out_of_stock", {"sku": "TSHIRT-L", "requested": 1,
                                                                  "available": 0})
    assert caller.get(f"/logistics/cases/{second.pk}/exchanges") == []
    # A count cannot go below what is promised to the first buyer.
    sh1 = store.warehouses.get(code="SH1")
    assert caller.request("PUT", "/warehouse/stock", {"warehouse_id": sh1.pk, "sku": "TSHIRT-L", "on_hand": 0},
                          expect=409).json()["code"] == "below_reserved"


def test_a_sku_never_counted_is_out_of_stock(store, caller):
    case, line = _exchange_case(store)
    assert _choose(caller, case, line, expect=409)["details"] == {"sku": "TSHIRT-L", "requested": 1, "available": 0}


def test_choosing_another_replacement_releases_the_first(store, caller):
    Product.objects.create(store=store, sku="TSHIRT-S", name="T恤 S", price=Decimal("99.00"))
    _set(caller, store, 1)
    _set(caller, store, 1, sku="TSHIRT-S")
    case, line = _exchange_case(store)
    _choose(caller, case, line)
    _choose(caller, case, line, sku="TSHIRT-S")
    assert (_stock(caller), _stock(caller, "TSHIRT-S")) == ([("SH1", 1, 0, 1)], [("SH1", 1, 1, 0)])
    assert [e["status"] for e in caller.get(f"/logistics/cases/{case.pk}/exchanges")] == ["released", "reserved"]


def test_cancelling_the_case_releases_the_reservation(store, caller):
    _set(caller, store, 1)
    case, line = _exchange_case(store)
    _choose(caller, case, line)
    case_services.transition_case(actor=f.buyer_of(case.buyer), case_id=case.pk, action="cancel")
    assert _stock(caller) == [("SH1", 1, 0, 1)]
    assert caller.get(f"/logistics/cases/{case.pk}/exchanges")[0]["status"] == "released"


def test_shipping_the_replacement_takes_the_unit_off_the_shelf(store, caller):
    _set(caller, store, 2)
    case, line = _exchange_case(store)
    _choose(caller, case, line)
    caller.post("/warehouse/receipts", {"code": case.number})
    case_services.transition_case(actor=f.staff(store, "admin"), case_id=case.pk, action="record_inspection",
                                  outcome="passed")
    caller.post(f"/logistics/cases/{case.pk}/reship", {"carrier": "SF", "tracking_number": "SF3333333333333"},
                expect=201)
    assert _stock(caller) == [("SH1", 1, 0, 1)]
    assert _csv(caller)[-1] == [case.number, "TSHIRT-L", "1", "ship_replacement", "-1", "SH1"]


def test_a_restocked_return_goes_back_on_the_shelf_of_its_warehouse(store, caller):
    _set(caller, store, 3, sku="TSHIRT-M")
    case = approved_case(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    caller.request("POST", f"/warehouse/cases/{case.pk}/inspection", data={
        "checklist": json.dumps(dict.fromkeys(APPAREL_CHECKS, True)), "grade": "A"}, expect=201)
    caller.post(f"/warehouse/cases/{case.pk}/dispositions",
                {"lines": [{"case_line_id": case.lines.get().pk, "disposition": "restock"}]}, expect=201)
    assert _stock(caller, "TSHIRT-M") == [("SH1", 4, 0, 4)]
    assert _csv(caller)[-1] == [case.number, "TSHIRT-M", "1", "restock", "1", "SH1"]


def test_scrapped_goods_do_not_come_back_and_an_unknown_warehouse_is_refused(store, caller):
    case = approved_case(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    caller.request("POST", f"/warehouse/cases/{case.pk}/inspection", data={
        "checklist": json.dumps(dict.fromkeys(APPAREL_CHECKS, True)), "grade": "A"}, expect=201)
    line = case.lines.get().pk
    error = caller.post(f"/warehouse/cases/{case.pk}/dispositions", {
        "lines": [{"case_line_id": line, "disposition": "restock"}], "warehouse_code": "NOPE"}, expect=422)
    assert error["code"] == "unknown_warehouse"
    caller.post(f"/warehouse/cases/{case.pk}/dispositions", {"lines": [{"case_line_id": line, "disposition": "scrap"}]},
                expect=201)
    assert StockLevel.objects.filter(store=store).count() == 0


def test_another_stores_warehouse_and_stock_are_404(store, caller):
    _set(caller, store, 1)
    sh1 = store.warehouses.get(code="SH1")
    other = token_caller(f.make_store())
    assert other.request("PUT", "/warehouse/stock", {"warehouse_id": sh1.pk, "sku": "TSHIRT-L", "on_hand": 9},
                         expect=404).json()["code"] == "not_found"
    assert other.get("/warehouse/stock") == []
    other.get(f"/warehouse/stock/{sh1.pk}/TSHIRT-L/movements", expect=404)
    assert _stock(caller) == [("SH1", 1, 0, 1)]
