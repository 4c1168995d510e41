"""The periodic schedule without a broker: a small runner for `CELERY_BEAT_SCHEDULE`, used by
`aftersales serve` (on a thread) and `aftersales worker` (in the foreground) when CELERY_BROKER_URL
is empty.

It reads the same setting Celery beat reads, so a task added to the schedule runs in both set-ups
without a second registration. Only interval schedules (a number of seconds, a timedelta or
`celery.schedules.schedule`) are understood here; a crontab entry needs real beat and is skipped with
a warning rather than run at a guessed time.

Every task runs once when the runner starts, then once per interval. Running at start is deliberate:
the process may have been down for a while, and the sweeps are written so that one late run catches
up everything it missed. A tick that comes late (the machine slept, a task ran long) runs a task once,
not once per interval missed, and the next run is one interval after that.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

TaskCallable = Callable[..., Any]


@dataclass
class Entry:
    name: str
    task: str
    interval: float  # seconds
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    next_run_at: float | None = None  # None: due at the first tick


def _seconds(schedule: Any) -> float | None:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, dt.timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if isinstance(run_every, dt.timedelta):
        return run_every.total_seconds()
    return None


def entries_from(beat_schedule: Mapping[str, Mapping[str, Any]]) -> list[Entry]:
    """The interval entries of a Celery beat schedule; anything else is reported and left out."""
    entries = []
    for name, spec in beat_schedule.items():
        seconds = _seconds(spec.get("schedule"))
        if seconds is None or seconds <= 0:
            logger.warning("scheduler: %s has a schedule the embedded runner does not understand; skipped", name)
            continue
        entries.append(Entry(name=name, task=spec["task"], interval=seconds, args=tuple(spec.get("args", ())),
                             kwargs=dict(spec.get("kwargs", {}))))
    return entries


def resolve_task(name: str) -> TaskCallable:
    """A task by its Celery name, falling back to a dotted import path (the default name of a task
    declared with @shared_task is its module path and function name, so both usually agree)."""
    from aftersales.celery import app

    app.loader.import_default_modules()  # runs the autodiscovery of every app's tasks module
    if name in app.tasks:
        task: TaskCallable = app.tasks[name]
        return task
    found: TaskCallable = import_string(name)
    return found


class Scheduler:
    def __init__(self, entries: list[Entry], *, resolve: Callable[[str], TaskCallable] = resolve_task) -> None:
        self.entries = entries
        self._resolve = resolve

    @classmethod
    def from_settings(cls) -> Scheduler:
        from django.conf import settings

        return cls(entries_from(getattr(settings, "CELERY_BEAT_SCHEDULE", {})))

    def tick(self, now: float) -> list[str]:
        """Runs every entry that is due at `now` (seconds on a monotonic clock); returns their names.

        A failing task is logged and scheduled again as usual: one bad run must not stop the others
        or the runner itself.
        """
        ran = []
        for entry in self.entries:
            if entry.next_run_at is not None and now < entry.next_run_at:
                continue
            entry.next_run_at = now + entry.interval
            ran.append(entry.name)
            try:
                self._resolve(entry.task)(*entry.args, **entry.kwargs)
            except Exception:
                logger.exception("scheduler: %s failed", entry.name)
        return ran

    def seconds_until_next(self, now: float) -> float:
        pending = [entry.next_run_at - now for entry in self.entries if entry.next_run_at is not None]
        if len(pending) < len(self.entries):
            return 0.0
        return max(0.0, min(pending, default=60.0))

    def run(self, stop: threading.Event, *, clock: Callable[[], float] = time.monotonic,
            max_sleep: float = 30.0) -> None:
        """Ticks until `stop` is set. Sleeping on the event means a stop request is answered at once."""
        names = ", ".join(f"{e.name} every {e.interval:g}s" for e in self.entries) or "nothing scheduled"
        logger.info("scheduler: started (%s)", names)
        try:
            while not stop.is_set():
                if self.tick(clock()):
                    # Fresh connections for each round, as for each request: a thread holding one for
                    # hours would keep an SQLite snapshot or a PostgreSQL session open for nothing.
                    close_old_connections()
                stop.wait(min(max_sleep, self.seconds_until_next(clock())))
        finally:
            connections.close_all()
            logger.info("scheduler: stopped")

    def start_thread(self) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="aftersales-scheduler", daemon=True)
        thread.start()
        return thread, stop
