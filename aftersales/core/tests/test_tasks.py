import datetime as dt

import pytest
import time_machine

from aftersales.core.models import IdempotencyRecord
from aftersales.core.tasks import purge_idempotency_records

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.UTC)


def _record(key, created_at):
    with time_machine.travel(created_at, tick=False):
        return IdempotencyRecord.objects.create(principal="token:1", key=key, request_hash="h", status_code=201,
                                                response_body="{}")


def test_records_older_than_a_day_are_purged_and_younger_ones_kept():
    _record("old", NOW - dt.timedelta(hours=25))
    _record("edge", NOW - dt.timedelta(hours=23, minutes=59))
    _record("new", NOW - dt.timedelta(minutes=5))

    with time_machine.travel(NOW, tick=False):
        deleted = purge_idempotency_records()

    assert deleted == 1
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["edge", "new"]
