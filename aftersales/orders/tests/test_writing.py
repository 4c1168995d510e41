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
