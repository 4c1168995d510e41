"""Celery tasks. Each takes ids, reloads what it needs and re-checks it under a row lock, so a retry, a
duplicate delivery or a run after a crash does nothing twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import services


@shared_task(name="aftersales.sla.tasks.sweep", acks_late=True)
def sweep() -> dict[str, Any]:
    """The periodic sweep: platform timeouts, then SLA warnings and breaches."""
    result = services.sweep()
    return {"acted": result.acted, "skipped": result.skipped, "failed": result.failed, "warned": result.warned,
            "breached": result.breached}


@shared_task(name="aftersales.sla.tasks.apply_timeout", acks_late=True)
def apply_timeout(store_id: int, case_id: int, rule: str) -> bool:
    return services.apply_timeout(store_id=store_id, case_id=case_id, rule=rule)


@shared_task(name="aftersales.sla.tasks.route_case", acks_late=True)
def route_case(store_id: int, case_id: int) -> int | None:
    return services.route_case(store_id=store_id, case_id=case_id)
