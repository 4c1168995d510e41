"""The database itself keeps lines, payments and shipments tied to an existing order (migration 0003).

Their `order` is not a foreign-key constraint (a per-row check is too slow for large imports) but
triggers; these tests hold both databases to the guarantees a foreign key gave.
"""

import datetime as dt
from decimal import Decimal

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from aftersales.orders.models import Order, OrderLine, Payment, Shipment
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


def _line(order: Order, line_no: int, order_id: int | None = None) -> OrderLine:
    return OrderLine(store_id=order.store_id, order_id=order_id or order.pk, line_no=line_no, sku="SKU", name="商品",
                     quantity=1, unit_price=Decimal("10.00"))


def _missing_order_id() -> int:
    return (Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def test_a_line_payment_or_shipment_naming_no_order_is_refused():
    store = f.make_store()
    missing = _missing_order_id()
    for create in (
        lambda: OrderLine.objects.create(store=store, order_id=missing, line_no=1, sku="S", name="n", quantity=1,
                                         unit_price=Decimal("1.00")),
        lambda: Payment.objects.create(store=store, order_id=missing, method="alipay", amount=Decimal("1.00")),
        lambda: Shipment.objects.create(store=store, order_id=missing, carrier="SF"),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            create()
    assert (OrderLine.objects.count(), Payment.objects.count(), Shipment.objects.count()) == (0, 0, 0)


def test_one_bad_row_refuses_the_whole_statement():
    order = f.make_order(f.make_store())
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.bulk_create([_line(order, 3), _line(order, 4, order_id=_missing_order_id()), _line(order, 5)])
    assert sorted(order.lines.values_list("line_no", flat=True)) == [1, 2]


def test_a_line_cannot_move_to_an_order_that_does_not_exist():
    order = f.make_order(f.make_store())
    line = order.lines.get(line_no=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(pk=line.pk).update(order_id=_missing_order_id())
    other = f.make_order(order.store)
    OrderLine.objects.filter(pk=line.pk).update(order_id=other.pk, line_no=9)  # to an existing order: fine
    assert OrderLine.objects.get(pk=line.pk).order_id == other.pk


def test_deleting_an_order_in_sql_deletes_its_rows_and_only_them():
    store = f.make_store()
    gone, kept = f.make_order(store), f.make_order(store)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_order WHERE id = %s", [gone.pk])
    assert OrderLine.objects.filter(order_id=gone.pk).count() == 0
    assert Payment.objects.filter(order_id=gone.pk).count() == 0
    assert Shipment.objects.filter(order_id=gone.pk).count() == 0
    assert (kept.lines.count(), kept.payments.count(), kept.shipments.count()) == (2, 1, 1)


def test_deleting_an_order_through_django_still_cascades():
    order = f.make_order(f.make_store())
    order.delete()
    assert (OrderLine.objects.count(), Payment.objects.count(), Shipment.objects.count()) == (0, 0, 0)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between two sessions: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_inserting_rows_locks_their_order_against_deletion_until_commit():
    # As a foreign key does: otherwise another session could delete the order (and, finding no
    # committed lines, nothing else) while these lines are on their way in.
    order = f.make_order(f.make_store(), signed_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    settings = connection.settings_dict
    other = psycopg.connect(host=settings["HOST"] or None, port=settings["PORT"] or None, user=settings["USER"],
                            password=settings["PASSWORD"] or None, dbname=settings["NAME"], autocommit=True)
    try:
        with transaction.atomic():
            OrderLine.objects.bulk_create([_line(order, 3)])
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM orders_order WHERE id = %s FOR UPDATE NOWAIT", [order.pk])
        assert other.execute("SELECT 1 FROM orders_order WHERE id = %s FOR UPDATE NOWAIT", [order.pk]).fetchall() == [(1,)]
    finally:
        other.close()
    assert sorted(order.lines.values_list("line_no", flat=True)) == [1, 2, 3]
