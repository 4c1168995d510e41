import datetime as dt
from decimal import Decimal

import pytest

from aftersales.orders.models import Order, OrderLine, Payment, Shipment
from aftersales.stores.models import Buyer
from aftersales.testing import factories as f

from .payloads import order_payload, post_orders, token_client

pytestmark = pytest.mark.django_db


def test_a_batch_creates_orders_with_their_lines_payments_and_shipments():
    store = f.make_store()
    client = token_client(store, ["orders:write"])

    response = post_orders(client, [order_payload("T1"), order_payload("T2", buyer={"external_id": "BUYER-2"})])

    assert response.status_code == 200
    assert response.json() == {"created": 2, "updated": 0, "errors": []}
    order = Order.objects.get(store=store, external_id="T1")
    assert order.placed_at == dt.datetime(2026, 11, 10, 16, 5, 12, tzinfo=dt.UTC)
    assert (order.currency, order.shipping_fee, order.free_shipping_threshold, order.channel) == (
        "CNY", Decimal("0.00"), Decimal("99.00"), "online")
    assert order.total_paid == Decimal("186.00")
    assert (order.buyer.external_id, order.buyer.name, order.buyer.email) == ("BUYER-1", "张伟", "zw@example.com")
    lines = list(order.lines.order_by("line_no").values_list(
        "line_no", "sku", "category", "quantity", "unit_price", "discount_allocated", "perishable",
        "near_expiry_disclosed", "nonreturnable_confirmation"))
    assert lines == [
        (1, "TSHIRT-M", "apparel", 2, Decimal("69.00"), Decimal("10.00"), False, False, "none"),
        (2, "MILK-1L", "fresh_food", 1, Decimal("58.00"), Decimal("0.00"), True, True, "explicit"),
    ]
    assert list(order.payments.order_by("pk").values_list("method", "amount", "fee", "reference")) == [
        ("alipay", Decimal("166.00"), Decimal("1.00"), "AP-1"), ("coupon", Decimal("20.00"), Decimal("0.00"), "")]
    assert list(order.shipments.values_list("carrier", "tracking_number", "signed_at")) == [
        ("SF", "SF001", dt.datetime(2026, 11, 13, 2, 21, tzinfo=dt.UTC))]
    assert OrderLine.objects.filter(store=store).count() == 4
    assert Payment.objects.filter(store=store).count() == 4
    assert Shipment.objects.filter(store=store).count() == 2
    assert Buyer.objects.filter(store=store).count() == 2


def test_sending_an_order_again_updates_it_instead_of_duplicating_it():
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    post_orders(client, [order_payload("T1")])
    first_line_id = OrderLine.objects.get(order__external_id="T1", line_no=1).pk

    changed = order_payload("T1", shipping_fee="8.00", lines=[
        {"line_no": 1, "sku": "TSHIRT-M", "name": "T恤 M", "category": "apparel", "quantity": 3, "unit_price": "69.00"},
    ], payments=[{"method": "wechat", "amount": "215.00"}], shipments=[])
    response = post_orders(client, [changed])

    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    order = Order.objects.get(store=store)
    assert (order.shipping_fee, order.total_paid) == (Decimal("8.00"), Decimal("215.00"))
    assert list(order.lines.values_list("pk", "line_no", "quantity")) == [(first_line_id, 1, 3)]
    assert list(order.payments.values_list("method", "amount")) == [("wechat", Decimal("215.00"))]
    assert order.shipments.count() == 0


def test_a_line_a_case_refers_to_survives_a_resend_without_it():
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    post_orders(client, [order_payload("T1")])
    order = Order.objects.get(store=store)
    milk = order.lines.get(line_no=2)
    from aftersales.cases.services import LineRequest, create_case
    create_case(actor=f.staff(store), kind="return_refund", order_id=order.pk,
                lines=[LineRequest(order_line_id=milk.pk, quantity=1)], reason_code="quality")

    payload = order_payload("T1")
    payload["lines"] = payload["lines"][:1]
    response = post_orders(client, [payload])

    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    assert list(order.lines.order_by("line_no").values_list("line_no", flat=True)) == [1, 2]
    assert order.lines.get(line_no=2).pk == milk.pk


def test_a_line_no_case_refers_to_is_removed_when_not_sent_again():
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    post_orders(client, [order_payload("T1")])
    payload = order_payload("T1")
    payload["lines"] = payload["lines"][1:]

    post_orders(client, [payload])

    assert list(OrderLine.objects.filter(store=store).values_list("line_no", flat=True)) == [2]


def test_more_than_1000_orders_are_refused_as_a_whole():
    store = f.make_store()
    client = token_client(store, ["orders:write"])

    response = post_orders(client, [order_payload(f"T{i}") for i in range(1001)])

    assert response.status_code == 422
    assert response.json() == {"code": "batch_too_large", "message": "a batch holds at most 1000 orders",
                               "details": {"field": "orders", "max": 1000, "received": 1001}}
    assert Order.objects.count() == 0


def _line(**changes):
    line = {"line_no": 1, "sku": "A", "name": "A", "category": "toys", "quantity": 1, "unit_price": "10.00"}
    line.update(changes)
    return line


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"lines": [_line(unit_price="-1.00")]}, "out_of_range", "lines[0].unit_price"),
    ({"lines": [_line(category="weapons")]}, "invalid_choice", "lines[0].category"),
    ({"lines": [_line(quantity=0)]}, "out_of_range", "lines[0].quantity"),
    ({"lines": [_line(colour="red")]}, "unknown_field", "lines[0].colour"),
    ({"shipments": [{"carrier": "SF", "signed_at": "13/11/2026 10:21"}]}, "invalid_datetime", "shipments[0].signed_at"),
    ({"shipments": [{"carrier": "SF", "signed_at": "2026-11-13T10:21:00"}]}, "naive_datetime", "shipments[0].signed_at"),
    ({"lines": [_line(), _line()]}, "duplicate_line_no", "lines[1].line_no"),
    ({"lines": [_line(discount_allocated="10.01")]}, "discount_exceeds_line", "lines[0].discount_allocated"),
    ({"lines": []}, "required", "lines"),
    ({"coupon_code": "X"}, "unknown_field", "coupon_code"),
])
def test_a_bad_order_is_refused_with_its_field_and_the_good_ones_are_kept(change, code, field):
    store = f.make_store()
    client = token_client(store, ["orders:write"])

    response = post_orders(client, [order_payload("GOOD"), order_payload("BAD", **change)])

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"]) == (1, 0)
    assert [(e["index"], e["external_id"], e["code"], e["field"]) for e in body["errors"]] == [(1, "BAD", code, field)]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["GOOD"]
    assert OrderLine.objects.count() == 2


def test_a_bad_update_leaves_the_stored_order_as_it_was():
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    post_orders(client, [order_payload("T1")])

    response = post_orders(client, [order_payload("T1", lines=[_line(unit_price="-5")])])

    assert response.json()["errors"][0]["code"] == "out_of_range"
    assert list(OrderLine.objects.order_by("line_no").values_list("unit_price", flat=True)) == [
        Decimal("69.00"), Decimal("58.00")]


def test_the_same_order_twice_in_one_batch_keeps_the_first_and_reports_the_second():
    store = f.make_store()
    client = token_client(store, ["orders:write"])

    body = post_orders(client, [order_payload("T1"), order_payload("T1", channel="app")]).json()

    assert body["created"] == 1
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, "duplicate_in_batch")]
    assert Order.objects.get().channel == "online"


def test_an_order_that_is_not_an_object_is_reported_by_index():
    store = f.make_store()
    client = token_client(store, ["orders:write"])

    body = post_orders(client, [42, order_payload("T1")]).json()

    assert body["created"] == 1
    assert [(e["index"], e["external_id"], e["code"], e["field"]) for e in body["errors"]] == [
        (0, None, "invalid_object", "")]


def test_a_read_only_token_cannot_import():
    store = f.make_store()
    client = token_client(store, ["orders:read"])

    response = post_orders(client, [order_payload("T1")])

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Order.objects.count() == 0


def test_a_token_imports_into_its_own_store_only():
    store_a, store_b = f.make_store(), f.make_store()
    f.make_order(store_b)
    b_external_id = Order.objects.get(store=store_b).external_id
    client = token_client(store_a, ["orders:write"])

    body = post_orders(client, [order_payload(b_external_id)]).json()

    assert body == {"created": 1, "updated": 0, "errors": []}
    assert Order.objects.filter(external_id=b_external_id).count() == 2
    assert Order.objects.get(store=store_b).lines.count() == 2
    assert Order.objects.get(store=store_a).buyer.store_id == store_a.pk
