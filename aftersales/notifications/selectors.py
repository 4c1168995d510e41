"""Reads, always inside the caller's store."""

from __future__ import annotations

from aftersales.core.errors import NotFound
from aftersales.stores import permissions as perm
from aftersales.stores.permissions import Actor

from .models import Delivery, DeliveryAttempt, WebhookEndpoint


def endpoints(actor: Actor) -> list[WebhookEndpoint]:
    actor.require(perm.STORE_ADMIN)
    return list(WebhookEndpoint.objects.filter(store_id=actor.store_id).order_by("pk"))


def endpoint(actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    actor.require(perm.STORE_ADMIN)
    found = WebhookEndpoint.objects.filter(store_id=actor.store_id, pk=endpoint_id).first()
    if found is None:
        raise NotFound("webhook endpoint")
    return found


def deliveries_of(actor: Actor, endpoint_id: int, *, limit: int = 50) -> list[Delivery]:
    endpoint(actor, endpoint_id)
    return list(Delivery.objects.select_related("event").filter(store_id=actor.store_id, endpoint_id=endpoint_id)
                .order_by("-created_at", "-pk")[:limit])


def delivery(actor: Actor, delivery_id: int) -> tuple[Delivery, list[DeliveryAttempt]]:
    actor.require(perm.STORE_ADMIN)
    found = Delivery.objects.select_related("event").filter(store_id=actor.store_id, pk=delivery_id).first()
    if found is None:
        raise NotFound("delivery")
    log = list(DeliveryAttempt.objects.filter(store_id=actor.store_id, delivery=found).order_by("attempted_at", "pk"))
    return found, log


def webhook_log(actor: Actor, *, endpoint_id: int | None = None, status: str = "",
                limit: int = 50) -> list[tuple[Delivery, DeliveryAttempt | None]]:
    """The store's latest webhook deliveries, newest first, each with its last attempt (response code,
    timing), for the console's delivery log. Two queries whatever the number of rows."""
    actor.require(perm.STORE_ADMIN)
    rows = Delivery.objects.select_related("event", "endpoint").filter(store_id=actor.store_id,
                                                                       endpoint__isnull=False)
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    if status:
        rows = rows.filter(status=status)
    deliveries = list(rows.order_by("-created_at", "-pk")[:limit])
    last: dict[int, DeliveryAttempt] = {}
    for attempt in (DeliveryAttempt.objects.filter(store_id=actor.store_id, delivery__in=deliveries)
                    .order_by("delivery_id", "-attempted_at", "-pk")):
        last.setdefault(attempt.delivery_id, attempt)
    return [(d, last.get(d.pk)) for d in deliveries]
