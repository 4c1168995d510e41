"""End to end through a real broker: a Celery worker process takes the sweep task from Redis and moves a
case in the database this test reads, on PostgreSQL and on SQLite."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from aftersales.cases.models import Case, TimelineEntry

from .conftest import open_return

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A database of its own on the local Redis, and a queue named for this run, so that neither a worker of
# another run nor of the developer's own `aftersales worker` takes the task.
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/13"
ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_answers() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class _WorkerDatabase:
    """The test database as the worker process sees it. PostgreSQL: the same database, by URL. SQLite: the
    test database lives in this process's memory, out of the worker's reach, so the worker works on a copy
    in a file and what it left there is copied back before the test reads it (the rest of the suite keeps
    its fast in-memory database)."""

    def __init__(self, tmp_path: Path) -> None:
        s = connection.settings_dict
        self.file: Path | None = None
        if connection.vendor == "sqlite":
            self.file = tmp_path / "worker.sqlite3"
            self.url = f"sqlite:///{self.file}"
        else:
            password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
            self.url = f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"

    def hand_over(self) -> None:
        if self.file is not None:
            connection.ensure_connection()
            with closing(sqlite3.connect(self.file)) as copy:
                connection.connection.backup(copy)

    def status_of(self, case_id: int) -> str | None:
        if self.file is None:
            return Case.objects.filter(pk=case_id).values_list("status", flat=True).first()
        with closing(sqlite3.connect(self.file, timeout=20)) as db:
            row = db.execute("SELECT status FROM cases_case WHERE id = ?", [case_id]).fetchone()
        return row[0] if row else None

    def dispatched(self, event_id: uuid.UUID) -> bool:
        from aftersales.notifications.models import OutboxEvent

        if self.file is None:
            return OutboxEvent.objects.filter(pk=event_id, dispatched_at__isnull=False).exists()
        with closing(sqlite3.connect(self.file, timeout=20)) as db:
            row = db.execute("SELECT dispatched_at FROM notifications_outboxevent WHERE id = ?",
                             [event_id.hex]).fetchone()
        return bool(row and row[0])

    def take_back(self) -> None:
        if self.file is not None:
            with closing(sqlite3.connect(self.file, timeout=20)) as copy:
                copy.backup(connection.connection)


def _start_worker(queue: str, database: _WorkerDatabase) -> subprocess.Popen[str]:
    env = {**os.environ, "CELERY_BROKER_URL": BROKER_URL, "DATABASE_URL": database.url,
           "DJANGO_SETTINGS_MODULE": "aftersales.settings"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aftersales", "worker", "--pool=solo", f"--queues={queue}",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_until(done: Callable[[], bool], worker: subprocess.Popen[str], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and worker.poll() is None and not done():
        time.sleep(0.5)


def _stop_worker(worker: subprocess.Popen[str]) -> str:
    """Stops the worker and returns what it printed."""
    worker.terminate()
    try:
        output, _ = worker.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output


def test_a_real_worker_runs_the_sweep_from_redis_and_the_case_moves(store, travel, tmp_path):
    if not _redis_answers():
        pytest.skip(f"Redis is not answering at {REDIS_HOST}:{REDIS_PORT}")
    database = _WorkerDatabase(tmp_path)
    travel.to(dt.datetime.now(dt.UTC) - dt.timedelta(hours=49))  # the shop's 48 hours are over by now
    case = open_return(store)
    travel.stop()
    database.hand_over()
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    worker = _start_worker(queue, database)
    try:
        sender = Celery(broker=BROKER_URL)
        sender.send_task("aftersales.sla.tasks.sweep", queue=queue)
        _wait_until(lambda: database.status_of(case.pk) == "awaiting_return", worker)
    finally:
        output = _stop_worker(worker)
        database.take_back()

    moved = Case.objects.get(pk=case.pk)
    assert moved.status == "awaiting_return", output[-4000:]
    entry = TimelineEntry.objects.get(case=case, event="approve")
    assert (entry.actor_kind, entry.data["rule"]) == ("system", "shop_review_timeout.auto_approve")
    # The sweep found the case and handed it to the workers as a batch, which moved it.
    assert "Task aftersales.sla.tasks.sweep[" in output and "Task aftersales.sla.tasks.apply_timeouts[" in output


def test_a_new_cases_follow_ups_reach_a_real_worker_in_one_message(store, tmp_path, monkeypatch):
    # Dispatching the new case's outbox event and routing the case are queued after the commit and
    # sent together (core.kicks); a worker process takes the one message from Redis and runs both.
    import redis
    from django.test import override_settings

    from aftersales.celery import app
    from aftersales.core import kicks
    from aftersales.notifications.models import OutboxEvent

    if not _redis_answers():
        pytest.skip(f"Redis is not answering at {REDIS_HOST}:{REDIS_PORT}")
    # The default queue, emptied first: the message goes where `delay` sends it, on this run's database.
    queue = app.conf.task_default_queue
    redis.Redis.from_url(BROKER_URL).delete(queue)
    before = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    database = _WorkerDatabase(tmp_path)
    monkeypatch.setattr(kicks, "INTERVAL", 3600.0)  # only the explicit flush below sends
    app._pool = None  # a pool made for another broker earlier would otherwise be used
    app.amqp._producer_pool = None
    app.conf.update(broker_url=BROKER_URL, task_always_eager=False)
    worker = None
    try:
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
            case = open_return(store)
        event = OutboxEvent.objects.get(case_id=case.pk)
        assert event.dispatched_at is None  # waiting in this process, not run in the request
        database.hand_over()
        kicks.flush()
        assert redis.Redis.from_url(BROKER_URL).llen(queue) == 1
        worker = _start_worker(queue, database)
        _wait_until(lambda: database.dispatched(event.pk), worker)
    finally:
        output = ""
        if worker is not None:
            output = _stop_worker(worker)
            database.take_back()
        redis.Redis.from_url(BROKER_URL).delete(queue)
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.update(before)

    assert OutboxEvent.objects.get(pk=event.pk).dispatched_at is not None, output[-4000:]
    assert output.count("Task aftersales.core.kicks.run_kicks[") == 2  # received and succeeded: one message
