"""HTTP endpoints for the orders mirror. Thin: parse, call a selector or a service, shape the answer."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from django.http import HttpRequest
from ninja import Query, Router, Schema

from aftersales.stores.auth import request_actor

from . import selectors, services
from .models import Order
from .schemas import ImportIn, ImportResultOut, OrderDetailOut, OrderPage

router = Router(tags=["orders"])


class OrderFilters(Schema):
    external_id: str | None = None
    buyer_id: int | None = None
    buyer_external_id: str | None = None
    placed_after: dt.datetime | None = None
    placed_before: dt.datetime | None = None
    cursor: str | None = None
    limit: int = 25


@router.post(
    "/orders/import", response=ImportResultOut,
    summary="Create or update up to 1,000 orders, idempotent on external_id",
    description="Each order is checked on its own: good orders are written, bad ones are listed in `errors` "
                "(with their index, field and code) and written not at all. Re-sending an order updates it.",
)
def import_orders(request: HttpRequest, body: ImportIn) -> dict[str, object]:
    result = services.import_orders(actor=request_actor(request), orders=body.orders)
    return {"created": result.created, "updated": result.updated, "errors": [asdict(e) for e in result.errors]}


@router.get("/orders", response=OrderPage, summary="List orders, most recently placed first")
def list_orders(request: HttpRequest, filters: Query[OrderFilters]) -> dict[str, object]:
    queryset = selectors.filter_orders(
        selectors.visible_orders(request_actor(request)), **filters.model_dump(exclude={"cursor", "limit"})
    )
    rows, next_cursor = selectors.page_orders(queryset, cursor=filters.cursor, limit=filters.limit)
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/orders/{order_id}", response=OrderDetailOut, summary="One order with its lines, payments and shipments")
def get_order(request: HttpRequest, order_id: int) -> Order:
    return selectors.get_order(request_actor(request), order_id)
