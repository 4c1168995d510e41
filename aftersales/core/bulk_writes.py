"""Writing many rows in one statement: of one model, for the paths that move thousands at once (sweeps,
outbox fan-out, re-sent orders), and of several models, for the busiest single write (opening a case:
`insert_together`, `one_statement`). Plain Django elsewhere; on PostgreSQL the faster forms, with only
the models' own table and column names in the SQL text and every value passed as data."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Field, JSONField, Model
from psycopg import Cursor
from psycopg.types.json import Json

# Each thread's cursor for the statements below, as each thread has its own Django connection; replaced
# when that connection is (so a closed connection is not kept alive by its cursor for long).
_threads = threading.local()


def server_cursor() -> Cursor[Any]:
    """A psycopg cursor on Django's connection for the statements bound on the server and prepared (the
    hot paths below and `cases.order_claims`), kept while the connection lives. A cursor remembers how to
    load each column type it has met, so the read of a new case (some 60 columns) does not look its
    loaders up again on every request. Django's own cursors stay as they are."""
    connection.ensure_connection()
    raw = connection.connection
    cursor: Cursor[Any] | None = getattr(_threads, "cursor", None)
    if cursor is None or cursor.connection is not raw or cursor.closed:
        cursor = _threads.cursor = Cursor(raw)
    return cursor


def update_rows(model: type[Model], rows: Sequence[Model], fields: Sequence[str]) -> None:
    """Writes `fields` of each of `rows` (saved instances of `model`) in one statement. On PostgreSQL an
    UPDATE joined to the new values passed as arrays (Django's bulk_update builds a CASE per field and row,
    whose compiling costs more than the update itself); elsewhere bulk_update."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, fields)
        return
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns: list[Field[Any, Any]] = [pk]
    for name in fields:
        column = meta.get_field(name)
        assert isinstance(column, Field)  # a concrete field, not a reverse relation
        columns.append(column)
    arrays = [_column_values(column, rows) for column in columns]
    quote = connection.ops.quote_name
    names = [quote(str(column.column)) for column in columns]
    unnest = ", ".join(f"%b::{column.db_type(connection)}[]" for column in columns)
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    # Only the model's own table and column names are put in the text; every value is a parameter, bound
    # on the server in binary form: Django's cursors quote arrays on the client, character by character
    # (a third of re-sending an order file went there).
    sql = (f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM unnest({unnest}) "  # noqa: S608
           f"AS v({', '.join(names)}) WHERE t.{names[0]} = v.{names[0]}")
    server_cursor().execute(sql, arrays, prepare=True)


def _column_values(column: Field[Any, Any], rows: Sequence[Model]) -> list[Any]:
    values = [getattr(row, column.attname) for row in rows]
    if isinstance(column, JSONField):  # the others are plain Python values the driver sends as they are
        return [column.get_db_prep_save(value, connection) for value in values]
    return values


def insert_rows(model: type[Model], rows: Sequence[Model]) -> None:
    """Inserts new rows whose ids nobody reads back (timeline entries). On PostgreSQL by COPY, several
    times faster than a multi-row INSERT for thousands of rows; elsewhere bulk_create."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and getattr(rows[0], f.attname) is None)]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) FROM STDIN"
    columns = [_column_values(f, rows) for f in fields]
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for values in zip(*columns, strict=True):
            copy.write_row(values)


@dataclass(frozen=True)
class RowVersion:
    """A row as a write read it, unlocked: `version` is its xmin (the transaction that wrote that version of
    the row), read in the same statement as everything the write was decided on. The write goes ahead
    only if the row is still that version, and then makes a new one (an UPDATE that changes nothing), so
    that a concurrent writer that read the same version finds it gone. Optimistic locking, with no lock
    held between the read and the write and no column added for it."""

    model: type[Model]
    pk: int
    version: str | None  # None: the writer holds the row's lock, so there is nothing to check, only to renew


class WriteConflict(Exception):
    """The row a guarded write depended on changed after it was read: nothing was written."""


def insert_together(groups: Sequence[tuple[type[Model], Sequence[Model]]], *, guard: RowVersion | None = None) -> bool:
    """Inserts new rows of several models in one statement (PostgreSQL only): a data-modifying CTE per
    model. For a request that writes a handful of rows to five tables, one round trip instead of five.
    Every row must carry its primary key already (drawn from the table's sequence beforehand) when
    others refer to it, since the parts of one statement cannot see each other's rows.

    Each model's rows travel as one JSON document that PostgreSQL turns back into rows of the table's
    own type (`json_populate_recordset`): one parameter per table, encoded by orjson (dates and times
    natively, to the microsecond). An array per column (unnest) made the driver dump some forty arrays
    per request, and its escaping of a policy decision's JSON inside a text array cost more than the
    insert itself.

    With a `guard`, nothing is inserted unless its row is still the version read; returns whether the
    rows went in (always True without a guard)."""
    assert connection.vendor == "postgresql"
    groups = [(model, rows) for model, rows in groups if rows]
    if not groups:
        return True
    parts: list[str] = []
    params: list[Any] = []
    if guard is not None:
        parts.append(f"g AS ({_guard_text(guard.model, guard.version is not None)})")
        params.extend([guard.pk] if guard.version is None else [guard.pk, guard.version])
    for index, (model, rows) in enumerate(groups):
        with_pk = getattr(rows[0], model._meta.pk.attname) is not None
        columns, text = _insert_part(model, with_pk, guard is not None)
        records = [{column: getattr(row, attname) if own is None else own.pre_save(row, True)
                    for column, attname, own in columns} for row in rows]
        parts.append(f"w{index} AS ({text})")
        # Handed over as the bytes orjson made (not decoded to text for the driver to encode again).
        params.append(Json(records, dumps=_dump_records))
    # Prepared: the text depends only on which models are written, so a connection plans it once.
    cursor = server_cursor()
    result = "(SELECT count(*) FROM g)" if guard is not None else "1"
    cursor.execute(f"WITH {', '.join(parts)} SELECT {result}", params, prepare=True)
    row = cursor.fetchone()
    return row is not None and row[0] == 1


@cache
def _guard_text(model: type[Model], checked: bool) -> str:
    quote = connection.ops.quote_name
    pk = quote(str(model._meta.pk.column))
    # Waiting for a concurrent writer's lock, PostgreSQL checks the condition again on the row's newest
    # version (READ COMMITTED), so a version that changed meanwhile matches no row.
    return (f"UPDATE {quote(model._meta.db_table)} SET {pk} = {pk} WHERE {pk} = %s "  # noqa: S608
            f"{'AND xmin = %s::text::xid ' if checked else ''}RETURNING 1")


def _plain(value: Any) -> str:
    # The column types neither JSON nor orjson has a word for; PostgreSQL reads each back from its text form.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} through insert_together")


def _dump_records(records: Any) -> bytes:
    return orjson.dumps(records, default=_plain)


@cache
def _insert_part(model: type[Model], with_pk: bool,
                 guarded: bool) -> tuple[list[tuple[str, str, Field[Any, Any] | None]], str]:
    """Each column's name, the attribute holding its value, and the field itself where the field computes
    the value on saving (auto_now dates, files; the others only read the attribute, `Field.pre_save`),
    with the statement's text. Only the model's own table and column names are put in the text; the rows
    are the parameter."""
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
    columns = [(str(f.column), f.attname, None if type(f).pre_save is Field.pre_save else f) for f in fields]
    names = ", ".join(quote(str(f.column)) for f in fields)
    table = quote(meta.db_table)
    text = f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s::json)"  # noqa: S608
    return columns, text + (" WHERE EXISTS (SELECT FROM g)" if guarded else "")


@dataclass
class _Block:
    rows: list[tuple[type[Model], list[Model]]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


_pending: ContextVar[_Block | None] = ContextVar("pending_inserts", default=None)


@contextmanager
def one_statement(*, enabled: bool = True, guard: RowVersion | None = None) -> Iterator[None]:
    """Inside the block, rows given to `insert_later` (by this code or by a listener it calls, such as
    the notifications outbox) wait, and are written together by `insert_together` when the block ends
    without an error; so do the callbacks given to `after_commit`, which are handed to the transaction
    once the rows are written (run at once if there is no transaction: the statement committed itself).
    With a `guard`, WriteConflict if its row changed since it was read, and then nothing is written and no
    callback runs. PostgreSQL only; with `enabled` False, `insert_later` writes at once."""
    if not enabled:
        assert guard is None
        yield
        return
    block = _Block()
    token = _pending.set(block)
    try:
        yield
    finally:
        _pending.reset(token)
    if not insert_together(block.rows, guard=guard):
        assert guard is not None
        raise WriteConflict(f"{guard.model._meta.label} {guard.pk} changed since it was read")
    alias = connection.alias
    for _model, rows in block.rows:
        for row in rows:
            row._state.adding = False
            row._state.db = alias
    for callback in block.after_commit:
        transaction.on_commit(callback)


def insert_later(model: type[Model], rows: Sequence[Model]) -> None:
    """Inserts new rows now, or at the end of the `one_statement` block this runs in."""
    block = _pending.get()
    if block is None:
        for row in rows:
            row.save(force_insert=True)
        return
    block.rows.append((model, list(rows)))


def after_commit(callback: Callable[[], None]) -> None:
    """`transaction.on_commit`, except inside a `one_statement` block, whose rows are not written yet:
    there the callback waits for them (a block that writes outside any transaction commits with its
    statement, where on_commit would have run the callback at once, before the rows existed)."""
    block = _pending.get()
    if block is None:
        transaction.on_commit(callback)
    else:
        block.after_commit.append(callback)
