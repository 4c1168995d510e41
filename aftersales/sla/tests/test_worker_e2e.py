"""End to end through a real broker: a Celery worker process takes the sweep task from Redis and moves a
case in the database this test reads."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
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


def _database_url_for_the_worker() -> str:
    """The test database, as a URL the worker's settings read. An in-memory SQLite database exists only
    inside this process: the worker could not see it, so the test is skipped there (it runs on
    PostgreSQL, and on SQLite when the test database is given a file name)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(s["NAME"])
        if "memory" in name:
            pytest.skip("the SQLite test database is in memory, where a worker process cannot see it")
        return f"sqlite:///{name}"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_a_real_worker_runs_the_sweep_from_redis_and_the_case_moves(store, travel):
    if not _redis_answers():
        pytest.skip(f"Redis is not answering at {REDIS_HOST}:{REDIS_PORT}")
    database_url = _database_url_for_the_worker()
    travel.to(dt.datetime.now(dt.UTC) - dt.timedelta(hours=49))  # the shop's 48 hours are over by now
    case = open_return(store)
    travel.stop()
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "CELERY_BROKER_URL": BROKER_URL, "DATABASE_URL": database_url,
           "DJANGO_SETTINGS_MODULE": "aftersales.settings"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aftersales", "worker", "--pool=solo", f"--queues={queue}",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        sender = Celery(broker=BROKER_URL)
        sender.send_task("aftersales.sla.tasks.sweep", queue=queue)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            if Case.objects.filter(pk=case.pk, status="awaiting_return").exists():
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()

    moved = Case.objects.get(pk=case.pk)
    assert moved.status == "awaiting_return", output[-4000:]
    entry = TimelineEntry.objects.get(case=case, event="approve")
    assert (entry.actor_kind, entry.data["rule"]) == ("system", "shop_review_timeout.auto_approve")
    # The sweep found the case and handed it to the workers as a batch, which moved it.
    assert "Task aftersales.sla.tasks.sweep[" in output and "Task aftersales.sla.tasks.apply_timeouts[" in output
