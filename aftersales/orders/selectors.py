"""Store-scoped reads of the orders mirror. A buyer sees only their own orders; nobody sees another store's."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, QuerySet

from aftersales.core.errors import NotFound
from aftersales.core.pagination import paginate
from aftersales.stores.permissions import ORDER_READ, Actor

from .models import Order, OrderLine, Payment, Shipment


def visible_orders(actor: Actor) -> QuerySet[Order]:
    actor.require(ORDER_READ)
    queryset = Order.objects.filter(store_id=actor.store_id)
    if actor.is_buyer:
        queryset = queryset.filter(buyer_id=actor.buyer_id or 0)
    return queryset


def filter_orders(
    queryset: QuerySet[Order],
    *,
    external_id: str | None = None,
    buyer_id: int | None = None,
    buyer_external_id: str | None = None,
    placed_after: dt.datetime | None = None,
    placed_before: dt.datetime | None = None,
) -> QuerySet[Order]:
    if external_id:
        queryset = queryset.filter(external_id=external_id)
    if buyer_id is not None:
        queryset = queryset.filter(buyer_id=buyer_id)
    if buyer_external_id:
        queryset = queryset.filter(buyer__external_id=buyer_external_id)
    if placed_after is not None:
        queryset = queryset.filter(placed_at__gte=placed_after)
    if placed_before is not None:
        queryset = queryset.filter(placed_at__lt=placed_before)
    return queryset


def page_orders(queryset: QuerySet[Order], *, cursor: str | None, limit: int) -> tuple[list[Order], str | None]:
    """Newest placed first, by (placed_at, id): the order people look for orders in. The cursor names
    the last order seen, so orders imported while someone pages do not shift the pages."""
    return paginate(queryset.select_related("buyer"), cursor=cursor, limit=limit, field="placed_at")


def get_order(actor: Actor, order_id: int) -> Order:
    lines: QuerySet[OrderLine] = OrderLine.objects.filter(store_id=actor.store_id).order_by("line_no")
    payments: QuerySet[Payment] = Payment.objects.filter(store_id=actor.store_id).order_by("pk")
    shipments: QuerySet[Shipment] = Shipment.objects.filter(store_id=actor.store_id).order_by("pk")
    order = (
        visible_orders(actor).select_related("buyer").filter(pk=order_id)
        .prefetch_related(Prefetch("lines", queryset=lines), Prefetch("payments", queryset=payments),
                          Prefetch("shipments", queryset=shipments))
        .first()
    )
    if order is None:
        raise NotFound("order")
    return order
