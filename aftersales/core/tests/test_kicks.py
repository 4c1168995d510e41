"""Follow-up jobs after a commit (core.kicks): at once without a broker; with one, gathered into one
message that a worker runs job by job."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import redis
from django.test import override_settings

from aftersales.core import clock, kicks
from aftersales.core.models import IdempotencyRecord
from aftersales.core.tasks import purge_idempotency_records

pytestmark = pytest.mark.django_db

# A database of its own on the local Redis, so that no worker of anything else takes the message.
BROKER_URL = "redis://127.0.0.1:6379/14"


def _old_record() -> IdempotencyRecord:
    record = IdempotencyRecord.objects.create(principal="token:1", key="k", request_hash="0" * 64, status_code=201,
                                              response_body="{}")
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=clock.now() - dt.timedelta(days=2))
    return record


def test_without_a_broker_a_job_runs_at_once():
    record = _old_record()
    kicks.send(purge_idempotency_records)
    assert not IdempotencyRecord.objects.filter(pk=record.pk).exists()


def test_a_failing_job_does_not_stop_the_others_in_its_batch():
    record = _old_record()
    failed = kicks.run_kicks([["aftersales.no_such_task", [1]], [purge_idempotency_records.name, []]])
    assert failed == 1
    assert not IdempotencyRecord.objects.filter(pk=record.pk).exists()


def _forget_connections(app) -> None:
    app._pool = None
    app.amqp._producer_pool = None


def test_with_a_broker_jobs_sent_together_travel_as_one_message(monkeypatch):
    from aftersales.celery import app

    broker = redis.Redis.from_url(BROKER_URL)
    try:
        broker.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not answering")
    monkeypatch.setattr(kicks, "INTERVAL", 3600.0)  # only the explicit flush below sends
    before = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    _forget_connections(app)  # a pool made for another broker earlier would otherwise be used
    app.conf.update(broker_url=BROKER_URL, task_always_eager=False)
    queue = app.conf.task_default_queue
    broker.delete(queue)
    try:
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
            for _ in range(3):
                kicks.send(purge_idempotency_records)
            assert broker.llen(queue) == 0  # waiting in the process, not sent one by one
            kicks.flush()
        messages = [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
    finally:
        broker.delete(queue)
        _forget_connections(app)
        app.conf.update(before)
    assert [m["headers"]["task"] for m in messages] == ["aftersales.core.kicks.run_kicks"]
    args, kwargs, _ = json.loads(base64.b64decode(messages[0]["body"]))
    assert args == [[[purge_idempotency_records.name, []]] * 3]
    assert kwargs == {}
