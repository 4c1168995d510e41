"""Repairs and exchanges end to end through the API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aftersales.cases import services as case_services
from aftersales.cases.models import Case
from aftersales.catalog.models import Product
from aftersales.logistics.tests.helpers import approved_case, post_generic, warehouse
from aftersales.repairs import services
from aftersales.testing import factories as f
from aftersales.tests import token_caller
from aftersales.warehouse import services as warehouse_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    store = f.make_store()
    warehouse(store)
    return store


def _device_in(store):
    case = approved_case(store, "repair", line_index=1)
    caller = token_caller(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    centre = services.create_service_centre(actor=f.staff(store, "admin"), name="自营维修中心", kind="own")
    order = caller.post(f"/repairs/cases/{case.pk}/orders", {"service_centre_id": centre.pk, "fault_code": "no_power"},
                        expect=201)
    return case, caller, order, centre


def test_a_covered_repair_is_repaired_shipped_back_and_closed_on_delivery(store):
    case, caller, order, _ = _device_in(store)
    order = caller.post(f"/repairs/orders/{order['id']}/diagnosis", {"diagnosis": "主板电源芯片损坏", "covered": True})
    assert (order["quote_status"], Case.objects.get(pk=case.pk).status) == ("none", "repairing")
    order = caller.post(f"/repairs/orders/{order['id']}/result", {"success": True})
    assert (order["outcome"], order["repair_days"]) == ("repaired", 1)
    caller.post(f"/repairs/cases/{case.pk}/ship-back", {"carrier": "SF", "tracking_number": "SF2222222222222"},
                expect=201)
    post_generic(store, {"carrier": "SF", "tracking_number": "SF2222222222222",
                         "events": [{"at": "2026-11-25T10:00:00+08:00", "status": "delivered"}]})
    assert Case.objects.get(pk=case.pk).status == "closed"


@pytest.mark.parametrize(("accept", "status"), [(True, "repairing"), (False, "shipping_back")])
def test_a_repair_not_covered_is_quoted_and_the_buyers_answer_decides(store, accept, status):
    case, caller, order, _ = _device_in(store)
    order = caller.post(f"/repairs/orders/{order['id']}/diagnosis", {
        "diagnosis": "进水", "covered": False, "labour_amount": "80.00",
        "parts": [{"name": "主板", "quantity": 1, "unit_price": "350.00"}]})
    assert (order["quote_amount"], order["quote_status"]) == ("430.00", "pending")
    assert Case.objects.get(pk=case.pk).quote_amount == Decimal("430.00")
    order = caller.post(f"/repairs/orders/{order['id']}/quote-answer", {"accept": accept})
    assert (order["quote_status"], Case.objects.get(pk=case.pk).status) == (
        "accepted" if accept else "declined", status)


def test_a_second_failed_repair_of_the_same_fault_offers_and_allows_conversion_to_exchange(store):
    case, caller, order, centre = _device_in(store)
    caller.post(f"/repairs/orders/{order['id']}/diagnosis", {"diagnosis": "不开机", "covered": True})
    caller.post(f"/repairs/orders/{order['id']}/result", {"success": False})
    assert caller.post(f"/repairs/cases/{case.pk}/convert", {"to": "exchange"}, expect=409)["code"] == \
        "conversion_not_due"
    second = caller.post(f"/repairs/cases/{case.pk}/orders", {"service_centre_id": centre.pk,
                                                              "fault_code": "no_power"}, expect=201)
    assert second["attempt"] == 2
    caller.post(f"/repairs/orders/{second['id']}/diagnosis", {"diagnosis": "不开机", "covered": True})
    caller.post(f"/repairs/orders/{second['id']}/result", {"success": False})
    assert case.messages.filter(visibility="public").count() == 1
    assert caller.post(f"/repairs/cases/{case.pk}/convert", {"to": "exchange"}) == {"kind": "exchange",
                                                                                      "status": "reshipping"}
    history = services.repair_history(store_id=store.pk, order_line_id=second["order_line_id"])
    assert [(r.failed, r.days) for r in history] == [(True, 0), (True, 0)]


def test_exchange_with_a_dearer_replacement_records_the_charge_and_closes_on_delivery(store):
    admin = f.staff(store, "admin")
    Product.objects.create(store=store, sku="TSHIRT-L", name="T恤 L", price=Decimal("109.00"))
    warehouse_services.set_stock(actor=admin, warehouse_id=store.warehouses.get().pk, sku="TSHIRT-L", on_hand=1)
    case = approved_case(store, "exchange")
    caller = token_caller(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    case_services.transition_case(actor=admin, case_id=case.pk, action="record_inspection", outcome="passed")
    line = case.lines.get()
    exchange = caller.post(f"/logistics/cases/{case.pk}/exchanges", {"order_line_id": line.order_line_id,
                                                                     "sku": "TSHIRT-L"}, expect=201)
    assert (exchange["price_difference"], exchange["settlement"], exchange["status"]) == ("10.00", "charge",
                                                                                          "reserved")
    caller.post(f"/logistics/cases/{case.pk}/reship", {"carrier": "YTO", "tracking_number": "YT1234567890123"},
                expect=201)
    assert Case.objects.get(pk=case.pk).status == "reshipped"
    post_generic(store, {"carrier": "YTO", "tracking_number": "YT1234567890123",
                         "events": [{"at": "2026-11-26T10:00:00+08:00", "status": "delivered"}]})
    assert Case.objects.get(pk=case.pk).status == "closed"
    assert caller.get(f"/logistics/cases/{case.pk}/exchanges")[0]["status"] == "delivered"


def test_another_stores_repair_order_is_404(store):
    _, _, order, _ = _device_in(store)
    other = token_caller(f.make_store())
    assert other.get(f"/repairs/orders/{order['id']}", expect=404)["code"] == "not_found"
    other.post(f"/repairs/orders/{order['id']}/result", {"success": True}, expect=404)
