"""What the writer stores is exactly what was sent, whatever the text holds (on PostgreSQL the rows go
in as COPY text built by hand, see writing._CopyFormat)."""

import datetime as dt
from decimal import Decimal

import pytest

from aftersales.orders.models import Order
from aftersales.orders.services import import_orders
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f

from .payloads import order_payload

pytestmark = pytest.mark.django_db

ODD_TEXTS = ["back\\slash", "tab\there", "new\nline", "carriage\rreturn", r"\N", "\\", "零宽\u200b空格", "a\x7fb",
             "末尾\\"]


def test_text_with_backslashes_and_control_characters_is_stored_as_sent():
    store = f.make_store()
    lines = [{"line_no": n, "sku": f"S{n}", "name": text, "quantity": 1, "unit_price": "1.00", "sanbao_catalogue": text}
             for n, text in enumerate(ODD_TEXTS, start=1)]
    payload = order_payload("T\\1", lines=lines, channel="a\tb",
                            payments=[{"method": "alipay", "amount": "9.00", "reference": "R\\N"}],
                            shipments=[{"carrier": "S\\F", "tracking_number": "x\ny"}])

    result = import_orders(actor=system_actor(store.pk, "test"), orders=[payload])

    assert result.errors == []
    order = Order.objects.get(store=store)
    assert (order.external_id, order.channel) == ("T\\1", "a\tb")
    assert list(order.lines.order_by("line_no").values_list("name", "sanbao_catalogue")) == [(t, t) for t in ODD_TEXTS]
    assert list(order.payments.values_list("reference", flat=True)) == ["R\\N"]
    assert list(order.shipments.values_list("carrier", "tracking_number")) == [("S\\F", "x\ny")]


def test_empty_optional_values_and_odd_times_are_stored_as_sent():
    store = f.make_store()
    payload = order_payload("T2", free_shipping_threshold=None, currency=None, placed_at="2026-11-11T00:05:12.250001-09:30",
                            lines=[{"line_no": 1, "sku": "S", "name": "n", "quantity": 3, "unit_price": "0",
                                    "gift_declared_value": None, "is_gift": True}],
                            shipments=[{"carrier": "SF"}], payments=[])

    assert import_orders(actor=system_actor(store.pk, "test"), orders=[payload]).errors == []

    order = Order.objects.get(store=store)
    assert order.free_shipping_threshold is None
    assert order.currency == store.currency
    assert order.placed_at == dt.datetime(2026, 11, 11, 9, 35, 12, 250001, tzinfo=dt.UTC)
    assert order.total_paid == Decimal("0.00")
    assert list(order.lines.values_list("unit_price", "gift_declared_value", "is_gift", "quantity")) == [
        (Decimal("0.00"), None, True, 3)]
    assert list(order.shipments.values_list("carrier", "tracking_number", "shipped_at", "signed_at")) == [
        ("SF", "", None, None)]


def test_an_order_sent_again_is_updated_to_exactly_what_was_sent():
    # Re-sent orders and lines are updated in one statement per table (core.bulk_writes.update_rows):
    # every kind of value, odd texts and empty optional ones included, must land as sent.
    store = f.make_store()
    actor = system_actor(store.pk, "test")
    first = order_payload("T3", lines=[
        {"line_no": 1, "sku": "S1", "name": "旧", "quantity": 1, "unit_price": "5.00", "gift_declared_value": "3.00"},
        {"line_no": 2, "sku": "S2", "name": "旧", "quantity": 2, "unit_price": "7.00", "is_gift": True}])
    assert import_orders(actor=actor, orders=[first]).errors == []
    line_ids = list(Order.objects.get(store=store).lines.order_by("line_no").values_list("pk", flat=True))

    again = order_payload("T3", channel="c\\d", free_shipping_threshold=None, shipping_fee="12.50",
                          placed_at="2026-11-12T23:59:59.000001+08:00", lines=[
                              {"line_no": 1, "sku": "S1b", "name": ODD_TEXTS[0], "quantity": 4, "unit_price": "0.50",
                               "gift_declared_value": None, "customised": True, "warranty_months": 24,
                               "sanbao_catalogue": ODD_TEXTS[2], "discount_allocated": "1.25"},
                              {"line_no": 2, "sku": "S2", "name": ODD_TEXTS[3], "quantity": 2, "unit_price": "7.00",
                               "is_gift": False, "perishable": True, "category": "fresh_food"}])
    result = import_orders(actor=actor, orders=[again])

    assert (result.errors, result.created, result.updated) == ([], 0, 1)
    order = Order.objects.get(store=store)
    assert (order.channel, order.free_shipping_threshold, order.shipping_fee) == ("c\\d", None, Decimal("12.50"))
    assert order.placed_at == dt.datetime(2026, 11, 12, 15, 59, 59, 1, tzinfo=dt.UTC)
    assert list(order.lines.order_by("line_no").values_list(
        "pk", "sku", "name", "quantity", "unit_price", "gift_declared_value", "customised", "warranty_months",
        "sanbao_catalogue", "discount_allocated", "is_gift", "perishable", "category")) == [
        (line_ids[0], "S1b", ODD_TEXTS[0], 4, Decimal("0.50"), None, True, 24, ODD_TEXTS[2], Decimal("1.25"),
         False, False, "other"),
        (line_ids[1], "S2", ODD_TEXTS[3], 2, Decimal("7.00"), None, False, 0, "", Decimal("0.00"), False,
         True, "fresh_food"),
    ]
