"""Housekeeping that belongs to no domain."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from aftersales.core import clock

from .kicks import run_kicks  # noqa: F401  (imported so the worker registers it)
from .models import IdempotencyRecord

# A client retries within seconds or minutes; a day is far beyond any honest retry, and keeping the
# stored answers longer would only grow the table.
IDEMPOTENCY_RETENTION = dt.timedelta(hours=24)


@shared_task(name="aftersales.core.tasks.purge_idempotency_records")
def purge_idempotency_records() -> int:
    """Deletes stored Idempotency-Key answers older than the retention; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - IDEMPOTENCY_RETENTION).delete()
    return deleted
