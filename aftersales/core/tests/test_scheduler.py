import datetime as dt

from celery.schedules import crontab, schedule
from django.conf import settings

from aftersales.core.scheduler import Entry, Scheduler, entries_from, resolve_task


def _scheduler(*entries):
    calls = []

    def resolve(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    return Scheduler(list(entries), resolve=resolve), calls


def test_a_task_runs_at_the_first_tick_then_once_per_interval():
    scheduler, calls = _scheduler(Entry(name="sweep", task="tasks.sweep", interval=60))

    ran = [scheduler.tick(t) for t in (1000.0, 1030.0, 1059.9, 1060.0, 1061.0, 1119.0, 1120.0)]

    assert ran == [["sweep"], [], [], ["sweep"], [], [], ["sweep"]]
    assert len(calls) == 3


def test_a_late_tick_runs_a_task_once_not_once_per_missed_interval():
    scheduler, calls = _scheduler(Entry(name="sweep", task="tasks.sweep", interval=60))
    scheduler.tick(0.0)

    assert scheduler.tick(600.0) == ["sweep"]
    assert scheduler.tick(601.0) == []
    assert scheduler.tick(660.0) == ["sweep"]
    assert len(calls) == 3


def test_each_task_keeps_its_own_interval_and_arguments():
    scheduler, calls = _scheduler(
        Entry(name="fast", task="tasks.fast", interval=10, args=(1,)),
        Entry(name="slow", task="tasks.slow", interval=25, kwargs={"limit": 5}),
    )

    ran = [scheduler.tick(t) for t in (0.0, 10.0, 20.0, 25.0, 30.0)]

    assert ran == [["fast", "slow"], ["fast"], ["fast"], ["slow"], ["fast"]]
    assert calls[:2] == [("tasks.fast", (1,), {}), ("tasks.slow", (), {"limit": 5})]


def test_a_failing_task_does_not_stop_the_others_and_runs_again_next_interval():
    calls = []

    def resolve(name):
        def run():
            calls.append(name)
            if name == "tasks.broken":
                raise RuntimeError("boom")
        return run

    scheduler = Scheduler([Entry(name="broken", task="tasks.broken", interval=5),
                           Entry(name="fine", task="tasks.fine", interval=5)], resolve=resolve)

    assert scheduler.tick(0.0) == ["broken", "fine"]
    assert scheduler.tick(5.0) == ["broken", "fine"]
    assert calls == ["tasks.broken", "tasks.fine", "tasks.broken", "tasks.fine"]


def test_the_wait_until_the_next_run_is_the_nearest_due_time():
    scheduler, _ = _scheduler(Entry(name="a", task="a", interval=30), Entry(name="b", task="b", interval=50))
    assert scheduler.seconds_until_next(0.0) == 0.0

    scheduler.tick(0.0)

    assert scheduler.seconds_until_next(12.0) == 18.0


def test_beat_entries_with_intervals_are_read_and_crontabs_are_skipped():
    entries = entries_from({
        "seconds": {"task": "t.a", "schedule": 90},
        "timedelta": {"task": "t.b", "schedule": dt.timedelta(minutes=5), "args": [1]},
        "celery-schedule": {"task": "t.c", "schedule": schedule(run_every=dt.timedelta(hours=1))},
        "crontab": {"task": "t.d", "schedule": crontab(minute=0, hour=3)},
    })

    assert [(e.name, e.task, e.interval, e.args) for e in entries] == [
        ("seconds", "t.a", 90.0, ()), ("timedelta", "t.b", 300.0, (1,)), ("celery-schedule", "t.c", 3600.0, ()),
    ]


def test_the_settings_schedule_resolves_to_registered_tasks():
    scheduler = Scheduler.from_settings()

    # Every entry of the schedule becomes an entry of the embedded runner, and each names a real task.
    assert [entry.task for entry in scheduler.entries] == [
        spec["task"] for spec in settings.CELERY_BEAT_SCHEDULE.values()
    ]
    for entry in scheduler.entries:
        assert getattr(resolve_task(entry.task), "name", None) == entry.task
    from aftersales.core.tasks import purge_idempotency_records

    resolved = resolve_task("aftersales.core.tasks.purge_idempotency_records")
    assert getattr(resolved, "name", None) == purge_idempotency_records.name
