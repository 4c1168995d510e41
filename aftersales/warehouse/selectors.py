"""Store-scoped reads of receipts, inspections and dispositions."""

from __future__ import annotations

from aftersales.cases import selectors as case_selectors
from aftersales.core.errors import NotFound
from aftersales.logistics.models import Warehouse
from aftersales.stores import permissions as perm
from aftersales.stores.permissions import Actor

from .models import Inspection, StockLevel, StockMovement


def case_inspection(actor: Actor, case_id: int) -> Inspection:
    case = case_selectors.get_case(actor, case_id)
    inspection = Inspection.objects.filter(store_id=actor.store_id, case=case).first()
    if inspection is None:
        raise NotFound("inspection")
    return inspection


def stock_levels(actor: Actor, sku: str = "") -> list[StockLevel]:
    actor.require(perm.CASE_WAREHOUSE)
    query = StockLevel.objects.filter(store_id=actor.store_id).select_related("warehouse").order_by("sku", "id")
    if sku:
        query = query.filter(sku=sku)
    return list(query[:1000])


def stock_movements(actor: Actor, *, warehouse_id: int, sku: str, limit: int = 200) -> list[StockMovement]:
    actor.require(perm.CASE_WAREHOUSE)
    if not Warehouse.objects.filter(store_id=actor.store_id, pk=warehouse_id).exists():
        raise NotFound("warehouse")
    # A SKU never counted in one of our warehouses simply has no history yet.
    return list(StockMovement.objects.filter(store_id=actor.store_id, stock__warehouse_id=warehouse_id,
                                             stock__sku=sku).order_by("-at", "-id")[:limit])
