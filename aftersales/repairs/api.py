"""HTTP endpoints for repairs. Repair orders are looked up in the caller's store (and, for a buyer,
among their own cases), so another store's repair order is a 404."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from aftersales.cases import selectors as case_selectors
from aftersales.core.schemas import ERROR_RESPONSES, IDEMPOTENT
from aftersales.logistics.schemas import ShipmentOut
from aftersales.stores.auth import request_actor

from . import selectors, services
from .schemas import (
    ConvertIn,
    DiagnosisIn,
    QuoteAnswerIn,
    RepairOrderIn,
    RepairOrderOut,
    ResultIn,
    ServiceCentreIn,
    ServiceCentreOut,
    ShipBackIn,
)

router = Router(tags=["repairs"])


@router.get("/repairs/service-centres", response={200: list[ServiceCentreOut], **ERROR_RESPONSES})
def list_centres(request: HttpRequest) -> list[Any]:
    return list(selectors.service_centres(request_actor(request)))


@router.post("/repairs/service-centres", response={201: ServiceCentreOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT)
def create_centre(request: HttpRequest, body: ServiceCentreIn) -> Status[Any]:
    return Status(201, services.create_service_centre(actor=request_actor(request), **body.model_dump()))


@router.get("/repairs/cases/{case_id}/orders", response={200: list[RepairOrderOut], **ERROR_RESPONSES})
def case_orders(request: HttpRequest, case_id: int) -> list[Any]:
    return list(selectors.case_repair_orders(request_actor(request), case_id))


@router.post("/repairs/cases/{case_id}/orders", response={201: RepairOrderOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Open a repair attempt on a received device",
             description="Errors: field_required, invalid_service_centre (422); not_a_repair, repair_open, "
                         "action_not_allowed (409).")
def open_order(request: HttpRequest, case_id: int, body: RepairOrderIn) -> Status[Any]:
    actor = request_actor(request)
    case_selectors.get_case(actor, case_id)
    return Status(201, services.open_repair_order(actor=actor, case_id=case_id, **body.model_dump()))


@router.get("/repairs/orders/{repair_order_id}", response={200: RepairOrderOut, **ERROR_RESPONSES})
def get_order(request: HttpRequest, repair_order_id: int) -> Any:
    return selectors.get_repair_order(request_actor(request), repair_order_id)


@router.post("/repairs/orders/{repair_order_id}/diagnosis", response={200: RepairOrderOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Diagnose: covered starts the repair, otherwise a quote",
             description="Errors: field_required, invalid_part, invalid_amount (422); already_diagnosed, "
                         "action_not_allowed (409).")
def diagnose(request: HttpRequest, repair_order_id: int, body: DiagnosisIn) -> Any:
    actor = request_actor(request)
    selectors.get_repair_order(actor, repair_order_id)
    return services.diagnose(actor=actor, repair_order_id=repair_order_id, diagnosis=body.diagnosis,
                             covered=body.covered, parts=[p.model_dump() for p in body.parts],
                             labour_amount=body.labour_amount)


@router.post("/repairs/orders/{repair_order_id}/quote-answer", response={200: RepairOrderOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="The buyer accepts or declines the quote")
def quote_answer(request: HttpRequest, repair_order_id: int, body: QuoteAnswerIn) -> Any:
    actor = request_actor(request)
    selectors.get_repair_order(actor, repair_order_id)
    return services.answer_quote(actor=actor, repair_order_id=repair_order_id, accept=body.accept)


@router.post("/repairs/orders/{repair_order_id}/result", response={200: RepairOrderOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Repaired or failed; records the days in repair")
def result(request: HttpRequest, repair_order_id: int, body: ResultIn) -> Any:
    actor = request_actor(request)
    selectors.get_repair_order(actor, repair_order_id)
    return services.finish_repair(actor=actor, repair_order_id=repair_order_id, success=body.success, note=body.note)


@router.post("/repairs/cases/{case_id}/convert", response={200: dict[str, str], **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="三包: exchange or return after two failed repairs",
             description="Errors: invalid_outcome (422); conversion_not_due, action_not_allowed (409).")
def convert(request: HttpRequest, case_id: int, body: ConvertIn) -> dict[str, str]:
    actor = request_actor(request)
    case_selectors.get_case(actor, case_id)
    case = services.convert(actor=actor, case_id=case_id, to=body.to)
    return {"kind": case.kind, "status": case.status}


@router.post("/repairs/cases/{case_id}/ship-back", response={201: ShipmentOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Ship the device back; the case closes on delivery")
def ship_back(request: HttpRequest, case_id: int, body: ShipBackIn) -> Status[Any]:
    actor = request_actor(request)
    case_selectors.get_case(actor, case_id)
    shipment = services.ship_back(actor=actor, case_id=case_id, carrier=body.carrier,
                                  tracking_number=body.tracking_number)
    return Status(201, {**{f: getattr(shipment, f) for f in ShipmentOut.model_fields if f != "events"}, "events": []})
