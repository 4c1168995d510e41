"""Per-store counters for human-friendly numbers.

On PostgreSQL each store gets its own sequence: `nextval` takes no row lock, so thousands of cases a
second in one store do not queue behind a counter row (numbers may skip after a rollback, as order
numbers do on every big platform). SQLite has one writer at a time anyway, so a counter row is enough.
"""

from __future__ import annotations

from django.db import connection, transaction

# Sequences this process has seen committed; the first use per process creates it if missing.
_known_sequences: set[str] = set()


def _sequence_name(store_id: int, name: str) -> str:
    return f"aftersales_seq_{name}_{int(store_id)}"


def postgres_sequence(store_id: int, name: str) -> str:
    """The name of the store's sequence (PostgreSQL), created first if this process has not seen it, for a
    caller that draws from it inside a bigger statement (`nextval(%s)` with the name as a parameter)."""
    sequence = _sequence_name(store_id, name)
    if sequence not in _known_sequences:
        with transaction.atomic(), connection.cursor() as cursor:
            # IF NOT EXISTS alone does not see a creation that has not committed yet: two first uses at
            # once would both try, and the second would fail with "already exists". Taking a lock on the
            # name first makes the second wait until the first has committed, and then skip.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [sequence])
            cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence}")
        # Remember it only once it is committed: a rolled-back transaction takes the sequence with it.
        transaction.on_commit(lambda: _known_sequences.add(sequence))
    return sequence


def next_value(store_id: int, name: str) -> int:
    if connection.vendor == "postgresql":
        sequence = postgres_sequence(store_id, name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [sequence])
            row = cursor.fetchone()
        assert row is not None
        return int(row[0])

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stores_storecounter (store_id, name, value) VALUES (%s, %s, 1) "
            "ON CONFLICT (store_id, name) DO UPDATE SET value = value + 1 RETURNING value",
            [store_id, name],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])
