"""Store-scoped reads of parcels, tracking, addresses and exchanges."""

from __future__ import annotations

from django.db.models import QuerySet

from aftersales.cases import selectors as case_selectors
from aftersales.core.errors import NotFound
from aftersales.stores.permissions import Actor

from .labels import ReturnSlip, SlipLine
from .models import CaseShipment, DropOffPoint, Exchange, TrackingEvent
from .services import case_categories, choose_warehouse


def case_shipments(actor: Actor, case_id: int) -> QuerySet[CaseShipment]:
    case = case_selectors.get_case(actor, case_id)  # checks case.read and the buyer's ownership
    return CaseShipment.objects.filter(store_id=actor.store_id, case=case).order_by("id")


def get_shipment(actor: Actor, shipment_id: int) -> CaseShipment:
    shipment = CaseShipment.objects.select_related("case").filter(store_id=actor.store_id, pk=shipment_id).first()
    if shipment is None:
        raise NotFound("shipment")
    case_selectors.get_case(actor, shipment.case_id)
    return shipment


def shipment_events(actor: Actor, shipment: CaseShipment) -> QuerySet[TrackingEvent]:
    return TrackingEvent.objects.filter(store_id=actor.store_id, shipment=shipment).order_by("at", "id")


def drop_off_points(actor: Actor) -> QuerySet[DropOffPoint]:
    return DropOffPoint.objects.filter(store_id=actor.store_id, active=True).order_by("id")


def case_exchanges(actor: Actor, case_id: int) -> QuerySet[Exchange]:
    case = case_selectors.get_case(actor, case_id)
    return Exchange.objects.filter(store_id=actor.store_id, case=case).order_by("id")


def return_slip(actor: Actor, case_id: int, province: str = "") -> ReturnSlip:
    case = case_selectors.get_case(actor, case_id)
    shipment = (CaseShipment.objects.filter(store_id=actor.store_id, case=case, direction="inbound")
                .select_related("warehouse").order_by("-id").first())
    warehouse = (shipment.warehouse if shipment is not None and shipment.warehouse is not None else
                 choose_warehouse(store_id=case.store_id, categories=case_categories(case), province=province))
    lines = [SlipLine(sku=line.order_line.sku, name=line.order_line.name, quantity=line.quantity)
             for line in case.lines.filter(store_id=case.store_id).select_related("order_line").order_by("id")]
    return ReturnSlip(
        case_number=case.number, store_name=case.store.name, recipient=warehouse.contact_name, phone=warehouse.phone,
        address=f"{warehouse.full_address} {warehouse.postcode}".strip(), lines=lines,
        method=shipment.method if shipment is not None else "",
        tracking=f"{shipment.carrier} {shipment.tracking_number}".strip() if shipment is not None else "")
