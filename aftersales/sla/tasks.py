"""Celery tasks. Each takes ids, reloads what it needs and re-checks it under a row lock, so a retry, a
duplicate delivery or a run after a crash does nothing twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from aftersales.core import clock

from . import services


@shared_task(name="aftersales.sla.tasks.sweep", acks_late=True, bind=True)
def sweep(self: Any) -> dict[str, Any]:
    """The periodic sweep: platform timeouts, then SLA warnings and breaches.

    With a broker, the due deadlines are found here (set-based, a range scan of an index) and handed to
    the workers in batches, so a backlog after an outage is worked off by every worker at once and this
    task stays short; without one, this process acts on them itself.
    """
    now = clock.now()
    if settings.CELERY_TASK_ALWAYS_EAGER:
        result = services.sweep(now=now)
        return {"acted": result.acted, "skipped": result.skipped, "failed": result.failed,
                "warned": result.warned, "breached": result.breached}
    dispatched = 0
    # The batches go to the queue this sweep came from, so a deployment that routes the SLA work to its
    # own workers keeps it there.
    queue = (self.request.delivery_info or {}).get("routing_key") or None
    for items in services.due_batches(now=now):
        # A batch still queued when the next sweep runs is superseded by that sweep's own batches.
        apply_timeouts.apply_async(args=[items], queue=queue, expires=settings.AFTERSALES_SLA_SWEEP_SECONDS)
        dispatched += len(items)
    clocks = services.sweep_clocks(now=now)
    return {"dispatched": dispatched, "warned": clocks.warned, "breached": clocks.breached}


@shared_task(name="aftersales.sla.tasks.apply_timeouts", acks_late=True)
def apply_timeouts(items: list[list[Any]]) -> dict[str, int]:
    """A batch of [store id, case id, rule]; each is re-checked under its row lock, so a batch delivered
    twice, or after another sweep already acted, changes nothing the second time."""
    result = services.apply_timeouts(items=[(int(s), int(c), str(r)) for s, c, r in items])
    return {"acted": result.acted, "skipped": result.skipped, "failed": result.failed}


@shared_task(name="aftersales.sla.tasks.apply_timeout", acks_late=True)
def apply_timeout(store_id: int, case_id: int, rule: str) -> bool:
    return services.apply_timeout(store_id=store_id, case_id=case_id, rule=rule)


@shared_task(name="aftersales.sla.tasks.route_case", acks_late=True)
def route_case(store_id: int, case_id: int) -> int | None:
    return services.route_case(store_id=store_id, case_id=case_id)
