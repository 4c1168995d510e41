"""Per-store counters for human-friendly numbers.

On PostgreSQL each store gets its own sequence: `nextval` takes no row lock, so thousands of cases a
second in one store do not queue behind a counter row (numbers may skip after a rollback, as order
numbers do on every big platform). SQLite has one writer at a time anyway, so a counter row is enough.
"""

from __future__ import annotations

from django.db import connection, transaction


def _sequence_name(store_id: int, name: str) -> str:
    return f"aftersales_seq_{name}_{int(store_id)}"


def ensure_sequence(store_id: int, name: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_sequence_name(store_id, name)}")


def next_value(store_id: int, name: str) -> int:
    if connection.vendor == "postgresql":
        sequence = _sequence_name(store_id, name)
        with connection.cursor() as cursor:
            try:
                with transaction.atomic():
                    cursor.execute("SELECT nextval(%s)", [sequence])
                    return int(cursor.fetchone()[0])
            except Exception:
                ensure_sequence(store_id, name)
                cursor.execute("SELECT nextval(%s)", [sequence])
                return int(cursor.fetchone()[0])
    from aftersales.stores.models import StoreCounter

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE stores_storecounter SET value = value + 1 WHERE store_id = %s AND name = %s RETURNING value",
            [store_id, name],
        )
        row = cursor.fetchone()
    if row is not None:
        return int(row[0])
    StoreCounter.objects.get_or_create(store_id=store_id, name=name)
    return next_value(store_id, name)
