"""Cursor pagination over (created_at, id), newest first.

A cursor names the last row seen, so a page costs an index range scan however deep it is, and rows
added while someone pages do not shift what they see.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from .errors import ValidationFailed

M = TypeVar("M", bound=Model)
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


def encode_cursor(created_at: dt.datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        moment = dt.datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, int(pk)
    except (ValueError, UnicodeError) as exc:  # binascii.Error is a ValueError
        raise ValidationFailed("the cursor is not valid", field="cursor", code="invalid_cursor") from exc


def paginate(queryset: QuerySet[M], *, cursor: str | None, limit: int, field: str = "created_at"
             ) -> tuple[list[M], str | None]:
    """Newest first by (`field`, id), where `field` is an aware datetime column the list is read by.

    The rows are model instances, or dicts from `.values(...)` (which must then include `field` and "id")."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit", code="invalid_limit")
    if cursor:
        moment, pk = decode_cursor(cursor)
        queryset = queryset.filter(Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "pk__lt": pk}))
    rows: list[Any] = list(queryset.order_by(f"-{field}", "-pk")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = (encode_cursor(last[field], last["id"]) if isinstance(last, dict)
                       else encode_cursor(getattr(last, field), last.pk))
    return rows, next_cursor
