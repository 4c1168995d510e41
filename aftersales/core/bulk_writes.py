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
from operator import attrgetter
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Field, JSONField, Model
from psycopg import Cursor
from psycopg.types.json import Json, Jsonb

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

    A model's rows go in one of two forms (`_insert_part`): each value a parameter of its own, cast to
    its column's type (VALUES), or all of them as one JSON document that PostgreSQL turns back into rows
    of the table (`json_populate_recordset`). The first costs the server less, the second the driver:
    psycopg parses the text of a statement with more than MAX_CACHED_PARAMS parameters again on every
    call. So the groups take VALUES, first come first served, as long as the statement stays within
    that; the rest go as JSON. (An array per column, tried first, made the driver dump some forty arrays
    per request, and escaping a policy decision's JSON inside a text array cost more than the insert.)

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
    # What is left for VALUES once every group has its one JSON parameter.
    spare = MAX_CACHED_PARAMS - len(params) - len(groups)
    for index, (model, rows) in enumerate(groups):
        with_pk = getattr(rows[0], model._meta.pk.attname) is not None
        columns = _insert_columns(model, with_pk)
        as_values = len(rows) * len(columns.names) - 1 <= spare
        parts.append(f"w{index} AS ({_insert_part(model, with_pk, guard is not None, len(rows) if as_values else 0)})")
        if as_values:
            spare -= len(rows) * len(columns.names) - 1
            for new in rows:
                params.extend(columns.plain(new))
                for _name, attname in columns.json:
                    value = getattr(new, attname)
                    params.append(None if value is None else Jsonb(value, dumps=_dump_records))
                params.extend(own.pre_save(new, True) for own in columns.pre_save)
        else:
            records = []
            for new in rows:
                record = dict(zip(columns.names, columns.plain(new), strict=False))
                record.update((name, getattr(new, attname)) for name, attname in columns.json)
                record.update((str(own.column), own.pre_save(new, True)) for own in columns.pre_save)
                records.append(record)
            # Handed over as the bytes orjson made (not decoded to text for the driver to encode again).
            params.append(Json(records, dumps=_dump_records))
    # Prepared: the text depends only on which models are written and how many rows of each go as
    # VALUES, so a connection plans each shape once (once per combination of parameter types, as psycopg
    # types an int by its size: a handful).
    cursor = server_cursor()
    result = "(SELECT count(*) FROM g)" if guard is not None else "1"
    cursor.execute(f"WITH {', '.join(parts)} SELECT {result}", params, prepare=True)
    row = cursor.fetchone()
    return row is not None and row[0] == 1


# psycopg keeps the parsed form of a statement's text only for statements of at most 50 parameters and
# 4,096 characters (psycopg._queries.MAX_CACHED_STATEMENT_PARAMS and _LENGTH; the tests hold this equal to
# the first, and the write of a new case within both), and parses a longer one again on every call: with
# all of a new case's rows as VALUES (65 parameters) that cost the client more than the server saved.
MAX_CACHED_PARAMS = 50


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


@dataclass(frozen=True)
class _Columns:
    """A model's columns in the order an insert lists them: first those read from the row as they are (all
    at once, `plain`), then the JSON ones (encoded by orjson), then those whose field computes the value
    on saving (auto_now dates and the like, `Field.pre_save`)."""

    names: tuple[str, ...]  # every column, in that order
    plain: Callable[[Model], tuple[Any, ...]]
    json: tuple[tuple[str, str], ...]  # the JSON columns: (column, attribute)
    pre_save: tuple[Field[Any, Any], ...]
    fields: tuple[Field[Any, Any], ...]  # every column's field, in the order of `names`


@cache
def _insert_columns(model: type[Model], with_pk: bool) -> _Columns:
    fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
    json = [f for f in fields if isinstance(f, JSONField)]
    pre_save = [f for f in fields if f not in json and type(f).pre_save is not Field.pre_save]
    plain = [f for f in fields if f not in json and f not in pre_save]
    getter = attrgetter(*(f.attname for f in plain))
    ordered = plain + json + pre_save
    return _Columns(
        names=tuple(str(f.column) for f in ordered),
        # attrgetter of one name gives the value itself, of several a tuple of them.
        plain=getter if len(plain) > 1 else lambda row: (getter(row),),
        json=tuple((str(f.column), f.attname) for f in json),
        pre_save=tuple(pre_save), fields=tuple(ordered))


# Short names of the column types, for the casts of VALUES: a text value is cast to the column's own
# varchar(n) or numeric(p, s) by the INSERT itself, which checks the length and the scale.
_CAST = {"timestamp with time zone": "timestamptz", "bigint": "int8", "integer": "int4", "smallint": "int2",
         "boolean": "bool", "double precision": "float8"}


def _cast(field: Field[Any, Any]) -> str:
    db_type = str(field.cast_db_type(connection))
    if db_type.startswith(("varchar", "char")):
        return "text"
    if db_type.startswith("numeric"):
        return "numeric"
    return _CAST.get(db_type, db_type)


@cache
def _insert_part(model: type[Model], with_pk: bool, guarded: bool, values_rows: int) -> str:
    """The text of one model's part of the statement: its rows as VALUES (`values_rows` of them), each
    value a parameter cast to its column's type, or with `values_rows` 0 as one JSON parameter. Only the
    model's own table, column names and types are put in the text; every value is a parameter.

    VALUES cost PostgreSQL less: from a JSON document it parsed the whole, then looked up every
    column's input function on each call (a case's row, 31 columns, cost it about 0.1 ms more that way).
    """
    quote = connection.ops.quote_name
    columns = _insert_columns(model, with_pk)
    names = ", ".join(quote(name) for name in columns.names)
    table = quote(model._meta.db_table)
    if values_rows:
        one_row = "(" + ", ".join(f"%s::{_cast(f)}" for f in columns.fields) + ")"
        source = f"(VALUES {', '.join([one_row] * values_rows)}) AS v"
        text = f"INSERT INTO {table} ({names}) SELECT * FROM {source}"  # noqa: S608
    else:
        text = (f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608
                f"FROM json_populate_recordset(NULL::{table}, %s::json)")
    return text + (" WHERE EXISTS (SELECT FROM g)" if guarded else "")


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
