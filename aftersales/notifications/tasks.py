"""Celery tasks. Each takes ids and is safe to run twice: dispatch is once per event, a delivery is
sent under a lease and marked sent only after the send."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from . import inbound, services


@shared_task(name="aftersales.notifications.tasks.dispatch_event", acks_late=True)
def dispatch_event(event_id: str) -> int:
    return len(services.dispatch_event(event_id=event_id))


@shared_task(name="aftersales.notifications.tasks.dispatch_events", acks_late=True)
def dispatch_events(event_ids: list[str]) -> int:
    """Many events written together (a sweep); each is dispatched once, as by `dispatch_event`."""
    return sum(len(services.dispatch_event(event_id=event_id)) for event_id in event_ids)


@shared_task(name="aftersales.notifications.tasks.deliver", acks_late=True)
def deliver(delivery_id: int) -> int:
    return services.deliver(delivery_ids=[delivery_id])


@shared_task(name="aftersales.notifications.tasks.sweep", acks_late=True)
def sweep() -> dict[str, Any]:
    """Events whose kick was lost, and deliveries due for a retry or left by a worker that died."""
    return services.sweep()


@shared_task(name="aftersales.notifications.tasks.fetch_mail", acks_late=True)
def fetch_mail() -> int:
    host = getattr(settings, "AFTERSALES_IMAP_HOST", "")
    if not host:
        return 0
    return inbound.fetch_imap(host=host, port=settings.AFTERSALES_IMAP_PORT, username=settings.AFTERSALES_IMAP_USER,
                              password=settings.AFTERSALES_IMAP_PASSWORD, use_ssl=settings.AFTERSALES_IMAP_SSL)
