"""Writing many rows in one statement: of one model, for the paths that move thousands at once (sweeps,
outbox fan-out, re-sent orders), and of several models, for the busiest single write (opening a case:
`insert_together`, `one_statement`). Plain Django elsewhere; on PostgreSQL the faster forms, with only
the models' own table and column names in the SQL text and every value passed as data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from django.db import connection
from django.db.models import Field, JSONField, Model
from psycopg import Cursor


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
    connection.ensure_connection()
    with Cursor(connection.connection) as cursor:
        cursor.execute(sql, arrays, prepare=True)


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


def insert_together(groups: Sequence[tuple[type[Model], Sequence[Model]]]) -> None:
    """Inserts new rows of several models in one statement (PostgreSQL only): a data-modifying CTE per
    model. For a request that writes a handful of rows to five tables, one round trip instead of five.
    Every row must carry its primary key already (drawn from the table's sequence beforehand) when
    others refer to it, since the parts of one statement cannot see each other's rows.

    Each model's rows travel as one JSON document that PostgreSQL turns back into rows of the table's
    own type (`json_populate_recordset`): one parameter per table, encoded by orjson (dates and times
    natively, to the microsecond). An array per column (unnest) made the driver dump some forty arrays
    per request, and its escaping of a policy decision's JSON inside a text array cost more than the
    insert itself."""
    assert connection.vendor == "postgresql"
    groups = [(model, rows) for model, rows in groups if rows]
    if not groups:
        return
    parts: list[str] = []
    params: list[str] = []
    for index, (model, rows) in enumerate(groups):
        with_pk = getattr(rows[0], model._meta.pk.attname) is not None
        fields, text = _insert_part(model, with_pk)
        records = [{str(f.column): f.pre_save(row, True) for f in fields} for row in rows]
        parts.append(f"w{index} AS ({text})")
        params.append(orjson.dumps(records, default=_plain).decode())
    # Prepared: the text depends only on which models are written, so a connection plans it once.
    with Cursor(connection.connection) as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT 1", params, prepare=True)


def _plain(value: Any) -> str:
    # The column types neither JSON nor orjson has a word for; PostgreSQL reads each back from its text form.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} through insert_together")


@cache
def _insert_part(model: type[Model], with_pk: bool) -> tuple[list[Field[Any, Any]], str]:
    # Only the model's own table and column names are put in the text; the rows are the parameter.
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
    names = ", ".join(quote(str(f.column)) for f in fields)
    table = quote(meta.db_table)
    return fields, f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s::json)"  # noqa: S608


_pending: ContextVar[list[tuple[type[Model], list[Model]]] | None] = ContextVar("pending_inserts", default=None)


@contextmanager
def one_statement(*, enabled: bool = True) -> Iterator[None]:
    """Inside the block, rows given to `insert_later` (by this code or by a listener it calls, such as
    the notifications outbox) wait, and are written together by `insert_together` when the block ends
    without an error. PostgreSQL only; with `enabled` False, `insert_later` writes at once."""
    if not enabled:
        yield
        return
    groups: list[tuple[type[Model], list[Model]]] = []
    token = _pending.set(groups)
    try:
        yield
    finally:
        _pending.reset(token)
    insert_together(groups)
    alias = connection.alias
    for _model, rows in groups:
        for row in rows:
            row._state.adding = False
            row._state.db = alias


def insert_later(model: type[Model], rows: Sequence[Model]) -> None:
    """Inserts new rows now, or at the end of the `one_statement` block this runs in."""
    pending = _pending.get()
    if pending is None:
        for row in rows:
            row.save(force_insert=True)
        return
    pending.append((model, list(rows)))
