"""Background work of the refunds app. Every task is safe to run twice or to be lost: the sweep
catches up whatever a lost task left behind."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from celery import shared_task

from aftersales.core import clock
from aftersales.stores.models import Store

from . import services
from .gateways import sandbox
from .models import ChargeAttempt, ChargeRefundAttempt, RefundAttempt

# An attempt younger than this may still be in the hands of the worker that sent it.
STALE_AFTER = dt.timedelta(minutes=2)


@shared_task(name="aftersales.refunds.tasks.process_refund")
def process_refund(refund_id: int) -> None:
    services.process_refund(refund_id=refund_id)


@shared_task(name="aftersales.refunds.tasks.deliver_sandbox_callbacks")
def deliver_sandbox_callbacks(now: str | None = None) -> int:
    """Plays the sandbox gateway's side: posts the callbacks it owes (through the same handler as the
    HTTP endpoint). Returns how many were delivered, duplicates included."""
    moment = dt.datetime.fromisoformat(now) if now else None
    delivered = 0
    for body, headers in sandbox.due_callbacks(now=moment):
        services.handle_callback(gateway_name="sandbox", body=body, headers=headers)
        delivered += 1
    return delivered


@shared_task(name="aftersales.refunds.tasks.sweep")
def sweep(now: str | None = None) -> int:
    """Asks the gateway about attempts left open, sends approved items whose kick was lost, and delivers
    the sandbox's due callbacks."""
    moment = dt.datetime.fromisoformat(now) if now else clock.now()
    seen = services.resolve_stale(older_than=moment - STALE_AFTER)
    seen += services.resolve_stale_charges(older_than=moment - STALE_AFTER)
    seen += services.resolve_stale_paybacks(older_than=moment - STALE_AFTER)
    deliver_sandbox_callbacks(moment.isoformat())
    return seen


@shared_task(name="aftersales.refunds.tasks.daily_reconciliation")
def daily_reconciliation(day: str | None = None) -> int:
    """Reconciles, for every store that sent refunds or charges lately, its yesterday in its own time zone
    (or `day` when given). Returns the number of reports."""
    now = clock.now()
    since = (dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) if day else now) - dt.timedelta(days=3)
    pairs: set[tuple[int, str]] = set()
    for model in (RefundAttempt, ChargeAttempt, ChargeRefundAttempt):
        pairs.update(model.objects.filter(created_at__gte=since).values_list("store_id", "gateway").distinct())
    zones = dict(Store.objects.filter(pk__in={store_id for store_id, _ in pairs}).values_list("pk", "timezone"))
    count = 0
    for store_id, gateway in sorted(pairs):
        if gateway == services.INTERNAL:
            continue
        tz = ZoneInfo(zones[store_id])
        target = dt.date.fromisoformat(day) if day else now.astimezone(tz).date() - dt.timedelta(days=1)
        start, end = sandbox.local_day_bounds(target, tz)
        if not any(model.objects.filter(store_id=store_id, gateway=gateway, created_at__gte=start,
                                        created_at__lt=end).exists()
                   for model in (RefundAttempt, ChargeAttempt, ChargeRefundAttempt)):
            continue  # nothing sent that day
        services.reconcile(store_id=store_id, day=target, gateway_name=gateway)
        count += 1
    return count


@shared_task(name="aftersales.refunds.tasks.process_charge")
def process_charge(charge_id: int) -> None:
    services.process_charge(charge_id=charge_id)


@shared_task(name="aftersales.refunds.tasks.process_charge_refund")
def process_charge_refund(payback_id: int) -> None:
    services.process_charge_refund(payback_id=payback_id)
