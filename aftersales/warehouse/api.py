"""HTTP endpoints for the warehouse: scan in, inspect (with photos), decide, export adjustments."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile

from aftersales.cases import selectors as case_selectors
from aftersales.core.errors import ValidationFailed
from aftersales.core.schemas import ERROR_RESPONSES, IDEMPOTENT
from aftersales.stores.auth import request_actor

from . import selectors, services
from .models import StockLevel
from .schemas import (
    DispositionOut,
    DispositionsIn,
    InspectionForm,
    InspectionOut,
    MovementOut,
    ScanIn,
    ScanOut,
    StockAdjustIn,
    StockOut,
    StockSetIn,
)

router = Router(tags=["warehouse"])


@router.post("/warehouse/receipts", response={200: ScanOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Scan a parcel in by case number or tracking number",
             description="Errors: field_required (422); not_found (404); not_expected, action_not_allowed (409).")
def scan(request: HttpRequest, body: ScanIn) -> dict[str, Any]:
    actor = request_actor(request)
    case = services.receive(actor=actor, code=body.code)
    return {"case_id": case.pk, "number": case.number, "status": case.status,
            "checklist": services.checklist_for(actor=actor, case_id=case.pk)}


@router.get("/warehouse/cases/{case_id}/checklist", response={200: list[str], **ERROR_RESPONSES})
def checklist(request: HttpRequest, case_id: int) -> list[str]:
    actor = request_actor(request)
    case_selectors.get_case(actor, case_id)
    return services.checklist_for(actor=actor, case_id=case_id)


@router.get("/warehouse/cases/{case_id}/inspection", response={200: InspectionOut, **ERROR_RESPONSES})
def get_inspection(request: HttpRequest, case_id: int) -> Any:
    return selectors.case_inspection(request_actor(request), case_id)


@router.post("/warehouse/cases/{case_id}/inspection", response={201: InspectionOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Record the inspection, with photos (multipart)",
             description="Errors: invalid_grade, invalid_checklist, invalid_checklist_item, checklist_incomplete, "
                         "photos_required, too_many_photos, file_type_not_allowed (422); action_not_allowed (409).")
def inspect(request: HttpRequest, case_id: int, form: Form[InspectionForm],
            photos: File[list[UploadedFile]] | None = None) -> Status[Any]:
    actor = request_actor(request)
    case_selectors.get_case(actor, case_id)
    try:
        checklist = json.loads(form.checklist)
    except ValueError as exc:
        raise ValidationFailed("checklist is not JSON", field="checklist", code="invalid_checklist") from exc
    if not isinstance(checklist, dict):
        raise ValidationFailed("checklist must be an object", field="checklist", code="invalid_checklist")
    limit = settings.AFTERSALES_MAX_ATTACHMENT_BYTES + 1
    # Read from the request itself: the optional list parameter documents the field, but Ninja leaves it
    # empty when it is optional.
    uploads = request.FILES.getlist("photos")
    files = [services.Photo(content=p.read(limit), filename=p.name or "photo") for p in uploads]
    inspection = services.record_inspection(actor=actor, case_id=case_id, checklist=checklist, grade=form.grade,
                                            notes=form.notes, photos=files)
    return Status(201, inspection)


@router.post("/warehouse/cases/{case_id}/dispositions", response={201: list[DispositionOut], **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Restock, refurbish, return to vendor or scrap each line",
             description="Errors: lines_required, line_not_in_case, invalid_disposition (422); not_inspected, "
                         "already_disposed (409).")
def dispositions(request: HttpRequest, case_id: int, body: DispositionsIn) -> Status[list[Any]]:
    actor = request_actor(request)
    case_selectors.get_case(actor, case_id)
    rows = services.set_dispositions(
        actor=actor, case_id=case_id, warehouse_code=body.warehouse_code,
        decisions=[services.LineDecision(case_line_id=line.case_line_id, disposition=line.disposition)
                   for line in body.lines])
    return Status(201, rows)


@router.get("/warehouse/inventory-adjustments.csv", response={200: None, **ERROR_RESPONSES},
            summary="Inventory adjustments decided in [since, until), as CSV")
def adjustments_csv(request: HttpRequest, since: dt.datetime, until: dt.datetime) -> HttpResponse:
    text = services.inventory_adjustments_csv(actor=request_actor(request), since=since, until=until)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="inventory-adjustments.csv"'
    return response


def _stock_out(stock: StockLevel) -> dict[str, Any]:
    return {"warehouse_id": stock.warehouse_id, "warehouse_code": stock.warehouse.code, "sku": stock.sku,
            "on_hand": stock.on_hand, "reserved": stock.reserved, "available": stock.available,
            "updated_at": stock.updated_at}


@router.get("/warehouse/stock", response={200: list[StockOut], **ERROR_RESPONSES},
            summary="Stock levels per warehouse and SKU: on hand, reserved for replacements, available")
def stock_levels(request: HttpRequest, sku: str = "") -> list[dict[str, Any]]:
    return [_stock_out(s) for s in selectors.stock_levels(request_actor(request), sku=sku)]


@router.put("/warehouse/stock", response={200: StockOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
            summary="Set a stock level from a count",
            description="Errors: invalid_sku, invalid_quantity (422); not_found (404, warehouse); below_reserved "
                        "(409, the count is below the units held for replacements).")
def set_stock(request: HttpRequest, body: StockSetIn) -> dict[str, Any]:
    stock = services.set_stock(actor=request_actor(request), warehouse_id=body.warehouse_id, sku=body.sku,
                               on_hand=body.on_hand, reason=body.reason)
    return _stock_out(stock)


@router.post("/warehouse/stock/adjustments", response={200: StockOut, **ERROR_RESPONSES},
             summary="Adjust a stock level by a number of units, with the reason",
             description="Errors: invalid_sku, invalid_quantity, field_required (422); not_found (404, warehouse); "
                         "insufficient_stock (409, below zero or below what is reserved).")
def adjust_stock(request: HttpRequest, body: StockAdjustIn) -> dict[str, Any]:
    stock = services.adjust_stock(actor=request_actor(request), warehouse_id=body.warehouse_id, sku=body.sku,
                                  delta=body.delta, reason=body.reason)
    return _stock_out(stock)


@router.get("/warehouse/stock/{warehouse_id}/{sku}/movements", response={200: list[MovementOut], **ERROR_RESPONSES},
            summary="The history of one stock level, newest first")
def stock_movements(request: HttpRequest, warehouse_id: int, sku: str) -> list[Any]:
    return selectors.stock_movements(request_actor(request), warehouse_id=warehouse_id, sku=sku)
