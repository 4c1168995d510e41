"""Racing reservations on PostgreSQL: the last unit goes to exactly one replacement."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections

from aftersales.catalog.models import Product
from aftersales.core.errors import DomainError
from aftersales.logistics import services as logistics_services
from aftersales.logistics.tests.helpers import approved_case, warehouse
from aftersales.testing import factories as f
from aftersales.warehouse import services
from aftersales.warehouse.models import StockLevel, StockReservation

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: SQLite has one writer at a time, so nothing races"),
    pytest.mark.django_db(transaction=True),
]

RACERS = 16


def test_sixteen_exchanges_racing_for_the_last_unit_reserve_it_once():
    store = f.make_store()
    sh1 = warehouse(store)
    Product.objects.create(store=store, sku="TSHIRT-L", name="T恤 L", price=Decimal("99.00"))
    services.set_stock(actor=f.staff(store, "admin"), warehouse_id=sh1.pk, sku="TSHIRT-L", on_hand=1)
    cases = [approved_case(store, "exchange") for _ in range(RACERS)]
    people = [f.staff(store, "admin") for _ in range(RACERS)]
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(index: int) -> None:
        case = cases[index]
        try:
            barrier.wait()
            results[index] = logistics_services.choose_replacement(
                actor=people[index], case_id=case.pk, order_line_id=case.lines.get().order_line_id,
                sku="TSHIRT-L").status
        except DomainError as exc:
            results[index] = exc.code
        except Exception as exc:  # reported with its name instead of vanishing in a thread
            results[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert (results.count("reserved"), results.count("out_of_stock")) == (1, RACERS - 1)
    assert StockLevel.objects.values_list("on_hand", "reserved").get() == (1, 1)
    assert StockReservation.objects.filter(status="reserved").count() == 1
