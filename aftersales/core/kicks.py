"""Follow-up jobs queued after a commit ("dispatch this outbox event", "route that new case"), sent to
the broker in batches instead of one message each.

Publishing a Celery message costs a web process about as much as the rest of a small request (kombu
builds headers, serialises and talks to the broker for each one), and a busy process queues two for
every new case. These jobs are small, idempotent and backed by a periodic sweep that repairs a lost
one (the outbox sweep re-dispatches what nobody dispatched; a case nobody routed stays in the
unassigned queue for a person), so they may wait a moment: a background thread of each
process sends whatever gathered as one `run_kicks` message every `INTERVAL` seconds (a quarter: a busy
process then sends one message for dozens of jobs, and nobody notices the wait; at a tenth, four
web processes publishing forty messages a second cost 3–5 % of their CPU), or sooner when
`MAX_BATCH` are waiting. The worker runs them one after the other, each on its own, so one failing
job does not stop the others.

Without a broker (the embedded default, tests) each job runs at once in the caller, as `delay` would.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)

INTERVAL = 0.25
MAX_BATCH = 200

_lock = threading.Lock()
_waiting: list[tuple[str, list[Any]]] = []
_wake = threading.Event()
_owner_pid: int | None = None  # the process whose thread sends; a forked child starts its own
# Task names by the identity of the task object (kept here too, so no other object can take its id): a
# task imported from a tasks module is Celery's lazy proxy, which looks the task up in the app's
# registry again on every attribute read.
_task_names: dict[int, tuple[Any, str]] = {}


def send(task: Any, *args: Any) -> None:
    """Queues `task(*args)` (a Celery task taking JSON-able arguments) to run on a worker soon."""
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        task.delay(*args)
        return
    known = _task_names.get(id(task))
    if known is None:
        known = _task_names[id(task)] = (task, task.name)
    name = known[1]
    with _lock:
        _ensure_sender()
        _waiting.append((name, list(args)))
        full = len(_waiting) >= MAX_BATCH
    if full:
        _wake.set()


def flush() -> None:
    """Sends what is waiting now (at exit, and for tests that look at the broker)."""
    with _lock:
        batch = _waiting[:]
        _waiting.clear()
    for start in range(0, len(batch), MAX_BATCH):
        try:
            run_kicks.delay(batch[start:start + MAX_BATCH])
        except Exception:  # the change is committed; the sweeps repair what a lost message left behind
            logger.exception("kicks: could not queue %s follow-up jobs", len(batch[start:start + MAX_BATCH]))


def _ensure_sender() -> None:
    global _owner_pid
    if _owner_pid == os.getpid():
        return
    _owner_pid = os.getpid()
    threading.Thread(target=_send_forever, name="aftersales-kicks", daemon=True).start()


def _send_forever() -> None:
    while True:
        _wake.wait(INTERVAL)
        _wake.clear()
        if _waiting:
            flush()


atexit.register(flush)


@shared_task(name="aftersales.core.kicks.run_kicks")
def run_kicks(batch: list[list[Any]]) -> int:
    """Runs a batch of follow-up jobs in order; returns how many failed (each failure is logged)."""
    from celery import current_app

    failed = 0
    for name, args in batch:
        try:
            current_app.tasks[name](*args)
        except Exception:
            failed += 1
            logger.exception("kicks: %s%s failed", name, tuple(args))
    return failed
