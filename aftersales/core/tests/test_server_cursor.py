"""`core.bulk_writes.server_cursor`: one cursor per thread for the statements bound on the server, kept
while the thread's connection lives, never one of a connection that is gone or another thread's."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from aftersales.core.bulk_writes import server_cursor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the server-bound statements are PostgreSQL's"),
]


def _one(cursor):
    cursor.execute("SELECT %s::int + 1", [41], prepare=True)
    return cursor.fetchone()[0]


def test_a_thread_keeps_its_cursor_while_its_connection_lives():
    first = server_cursor()
    assert _one(first) == 42
    assert server_cursor() is first
    assert first.connection is connection.connection


def test_a_new_connection_gets_a_new_cursor():
    old = server_cursor()
    connection.close()  # as Django does past CONN_MAX_AGE or after an error
    new = server_cursor()
    assert new is not old and new.connection is connection.connection
    assert _one(new) == 42


def test_each_thread_has_its_own():
    mine = server_cursor()
    seen = {}

    def other():
        try:
            seen["cursor"] = server_cursor()
            seen["answer"] = _one(seen["cursor"])
            seen["connection"] = connection.connection
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["answer"] == 42
    assert seen["cursor"] is not mine and seen["connection"] is not mine.connection
    assert server_cursor() is mine
