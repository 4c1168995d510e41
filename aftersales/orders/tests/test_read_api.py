import pytest
from django.test import Client

from aftersales.orders.models import Order
from aftersales.testing import factories as f

from .payloads import order_payload, post_orders, token_client

pytestmark = pytest.mark.django_db


def test_one_order_comes_with_its_lines_payments_and_shipments():
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    post_orders(client, [order_payload("T1")])
    order = Order.objects.get()

    body = client.get(f"/api/v1/orders/{order.pk}").json()

    assert body["external_id"] == "T1"
    assert body["buyer"]["external_id"] == "BUYER-1"
    assert body["total_paid"] == "186.00"
    assert [(line["line_no"], line["sku"], line["quantity"]) for line in body["lines"]] == [
        (1, "TSHIRT-M", 2), (2, "MILK-1L", 1)]
    assert [(p["method"], p["amount"]) for p in body["payments"]] == [("alipay", "166.00"), ("coupon", "20.00")]
    assert [(s["tracking_number"], s["signed_at"]) for s in body["shipments"]] == [
        ("SF001", "2026-11-13T02:21:00Z")]


def test_another_stores_order_is_not_found():
    store_a, store_b = f.make_store(), f.make_store()
    order_b = f.make_order(store_b)
    client = token_client(store_a, ["orders:read"])

    response = client.get(f"/api/v1/orders/{order_b.pk}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.get("/api/v1/orders").json() == {"items": [], "next_cursor": None}


def test_the_list_pages_newest_placed_first_and_filters_by_buyer():
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    post_orders(client, [
        order_payload(f"T{day}", placed_at=f"2026-11-{day:02d}T10:00:00+08:00",
                      buyer={"external_id": "B-EVEN" if day % 2 == 0 else "B-ODD"})
        for day in range(1, 6)
    ])

    first = client.get("/api/v1/orders?limit=2").json()
    second = client.get(f"/api/v1/orders?limit=2&cursor={first['next_cursor']}").json()
    third = client.get(f"/api/v1/orders?limit=2&cursor={second['next_cursor']}").json()
    even = client.get("/api/v1/orders?buyer_external_id=B-EVEN").json()
    one = client.get("/api/v1/orders?external_id=T3").json()

    assert [o["external_id"] for o in first["items"] + second["items"] + third["items"]] == [
        "T5", "T4", "T3", "T2", "T1"]
    assert third["next_cursor"] is None
    assert [o["external_id"] for o in even["items"]] == ["T4", "T2"]
    assert [o["external_id"] for o in one["items"]] == ["T3"]


def test_a_buyer_sees_only_their_own_orders():
    store = f.make_store()
    buyer = f.make_buyer(store, with_login=True)
    mine = f.make_order(store, buyer)
    theirs = f.make_order(store)
    client = Client()
    assert buyer.user is not None
    client.force_login(buyer.user)

    listed = client.get("/api/v1/orders").json()

    assert [o["id"] for o in listed["items"]] == [mine.pk]
    assert client.get(f"/api/v1/orders/{theirs.pk}").status_code == 404
    assert client.get(f"/api/v1/orders/{mine.pk}").status_code == 200


def test_a_token_without_an_orders_scope_cannot_read_orders():
    store = f.make_store()
    order = f.make_order(store)
    client = token_client(store, ["cases:read"])

    response = client.get(f"/api/v1/orders/{order.pk}")

    assert response.status_code == 403
