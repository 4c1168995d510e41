"""Per-store sequences on PostgreSQL: the first use creates the sequence, even when two uses race."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from aftersales.core import sequences

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="sequences are PostgreSQL's own"),
]

STORE_ID = 987_654


@pytest.fixture
def fresh_sequence():
    name = sequences._sequence_name(STORE_ID, "race")
    sequences._known_sequences.discard(name)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SEQUENCE IF EXISTS {name}")
    yield name
    sequences._known_sequences.discard(name)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SEQUENCE IF EXISTS {name}")


def test_first_use_creates_the_sequence_and_counts_from_one(fresh_sequence):
    assert [sequences.next_value(STORE_ID, "race") for _ in range(3)] == [1, 2, 3]
    assert fresh_sequence in sequences._known_sequences


def test_a_use_that_waited_for_another_creation_counts_on(fresh_sequence):
    """One process's first use creates the sequence and holds its transaction open; another process's
    first use, knowing nothing of it, asks for a number meanwhile. It waits for the first to commit and
    then draws the next number, instead of failing with 'already exists' (the error a first case of a
    store used to get when another was opened at the same moment)."""
    started, created, release = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def creator():
        try:
            with transaction.atomic():  # on this thread's own connection
                outcome["creator"] = sequences.next_value(STORE_ID, "race")
                # The other "process" has not seen the sequence either.
                sequences._known_sequences.discard(fresh_sequence)
                created.set()
                release.wait(10)
        finally:
            connections["default"].close()

    def second():
        started.set()
        try:
            outcome["second"] = sequences.next_value(STORE_ID, "race")
        except Exception as exc:  # the test reports whatever came out
            outcome["second"] = exc
        finally:
            connections["default"].close()

    first = threading.Thread(target=creator)
    first.start()
    assert created.wait(10)
    waiting = threading.Thread(target=second)
    waiting.start()
    assert started.wait(10)
    # The second is now blocked on the uncommitted creation; let it wait a moment, then commit.
    waiting.join(0.5)
    assert waiting.is_alive()
    release.set()
    first.join(10)
    waiting.join(10)
    assert outcome == {"creator": 1, "second": 2}
