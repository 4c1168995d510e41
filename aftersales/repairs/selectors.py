"""Store-scoped reads of service centres and repair orders."""

from __future__ import annotations

from django.db.models import QuerySet

from aftersales.cases import selectors as case_selectors
from aftersales.core.errors import NotFound
from aftersales.stores.permissions import CASE_READ, Actor

from .models import RepairOrder, ServiceCentre


def service_centres(actor: Actor) -> QuerySet[ServiceCentre]:
    actor.require(CASE_READ)
    return ServiceCentre.objects.filter(store_id=actor.store_id, active=True).order_by("id")


def case_repair_orders(actor: Actor, case_id: int) -> QuerySet[RepairOrder]:
    case = case_selectors.get_case(actor, case_id)
    return RepairOrder.objects.filter(store_id=actor.store_id, case=case).order_by("attempt")


def get_repair_order(actor: Actor, repair_order_id: int) -> RepairOrder:
    order = RepairOrder.objects.filter(store_id=actor.store_id, pk=repair_order_id).first()
    if order is None:
        raise NotFound("repair order")
    case_selectors.get_case(actor, order.case_id)  # a buyer sees only their own
    return order
