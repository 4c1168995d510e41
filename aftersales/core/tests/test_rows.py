"""Instances built from hand-read rows (`core.rows`) must be what the ORM itself loads: the same values,
marked as loaded from the database, saving as an UPDATE, and still sent through pre_init and post_init
when something listens to them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models.signals import post_init

from aftersales.core.rows import columns_of, from_row
from aftersales.orders.models import Order
from aftersales.stores.models import Store
from aftersales.testing import factories as f

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="rows are read by hand on PostgreSQL only"),
]


def _row(model, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns_of(model, 't')} FROM {model._meta.db_table} t WHERE t.id = %s", [pk])
        return cursor.fetchone()


def _fields(instance):
    return {key: value for key, value in vars(instance).items() if key != "_state"}


def test_an_instance_from_a_row_is_the_one_the_orm_loads():
    order = f.make_order(f.make_store())
    built = from_row(Order, _row(Order, order.pk))
    loaded = Order.objects.get(pk=order.pk)

    assert _fields(built) == _fields(loaded)
    assert list(vars(built)) == list(vars(loaded))  # the same attributes, in the same order
    assert (built._state.adding, built._state.db) == (False, "default") == (loaded._state.adding, loaded._state.db)
    assert built.store.pk == order.store_id  # relations load lazily as on any loaded instance

    built.currency = "EUR"
    built.save(update_fields=["currency"])  # an UPDATE: a new row would fail on the primary key
    assert Order.objects.get(pk=order.pk).currency == "EUR"
    assert Order.objects.count() == 1


def test_a_model_someone_listens_to_is_built_the_orms_way():
    store = f.make_store(name="听")
    seen: list[str] = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.name)

    post_init.connect(listener, sender=Store)
    try:
        built = from_row(Store, _row(Store, store.pk))
    finally:
        post_init.disconnect(listener, sender=Store)
    assert seen == ["听"]
    assert _fields(built) == _fields(Store.objects.get(pk=store.pk))
