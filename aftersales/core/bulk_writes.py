"""Writing many rows of one model in one statement, for the paths that move thousands at once (sweeps,
outbox fan-out). Plain Django elsewhere; on PostgreSQL the faster forms, with only the model's own table
and column names in the SQL text and every value passed as data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, JSONField, Model


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
    unnest = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    # Only the model's own table and column names are put in the text; every value is a parameter.
    sql = (f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM unnest({unnest}) "  # noqa: S608
           f"AS v({', '.join(names)}) WHERE t.{names[0]} = v.{names[0]}")
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)


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
