"""Model instances from rows read by hand-written SQL, for the few hot paths that read several tables in
one round trip (opening a case). The column list comes from the model, so a field added later is read
too; each value goes through the field's own conversion from the database (JSON text to Python), and
the instance is marked as loaded from the database, exactly as the ORM would leave it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def columns_of(model: type[Model], alias: str) -> str:
    """The SELECT list for every concrete column of `model`, table alias `alias`, in field order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(str(f.column))}" for f in model._meta.concrete_fields)


def width_of(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def _converters(model: type[Model]) -> list[tuple[int, Field[Any, Any]]]:
    return [(index, field) for index, field in enumerate(model._meta.concrete_fields)
            if hasattr(field, "from_db_value")]


def from_row(model: type[M], values: Sequence[Any]) -> M:
    """An instance of `model` from the values of `columns_of(model, ...)`, in that order."""
    converters = _converters(model)
    if converters:
        values = list(values)
        for index, field in converters:
            values[index] = field.from_db_value(values[index], None, connection)  # type: ignore[attr-defined]
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], values)
