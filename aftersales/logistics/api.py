"""HTTP endpoints for return logistics and exchanges, and the carriers' webhook.

Staff, buyers and tokens call the /logistics/cases/... and /logistics/shipments/... routes with the
API's usual authentication; the webhook has none of that and is authenticated by the store's secret
instead, because carriers cannot hold our tokens.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from aftersales.core.schemas import ERROR_RESPONSES, IDEMPOTENT
from aftersales.stores.auth import request_actor
from aftersales.stores.permissions import Actor

from . import selectors, services
from .labels import render_return_slip
from .models import CaseShipment, Warehouse
from .schemas import (
    AddressOut,
    CollectedIn,
    DropOffPointOut,
    ExchangeOut,
    PickupIn,
    PushAccepted,
    ReplacementIn,
    ReshipIn,
    ShipmentOut,
    ShipReturnIn,
)

router = Router(tags=["logistics"])


def _shipment_out(actor: Actor, shipment: CaseShipment) -> dict[str, Any]:
    fields = {f: getattr(shipment, f) for f in ShipmentOut.model_fields if f != "events"}
    return {**fields, "events": list(selectors.shipment_events(actor, shipment))}


def _address(warehouse: Warehouse) -> dict[str, Any]:
    return {"warehouse_id": warehouse.pk, "name": warehouse.name, "recipient": warehouse.contact_name,
            "phone": warehouse.phone, "address": warehouse.full_address, "postcode": warehouse.postcode}


@router.get("/logistics/cases/{case_id}/return-address", response={200: AddressOut, **ERROR_RESPONSES},
            summary="Where to send the goods back (routed by category and region)")
def return_address(request: HttpRequest, case_id: int, province: str = "") -> dict[str, Any]:
    actor = request_actor(request)
    selectors.case_shipments(actor, case_id)  # 404 for a case the caller may not see
    return _address(services.return_address_for(actor=actor, case_id=case_id, province=province))


@router.get("/logistics/cases/{case_id}/return-slip.pdf", response={200: None, **ERROR_RESPONSES},
            summary="The return slip to print: case number as barcode and QR code, address, items")
def return_slip(request: HttpRequest, case_id: int, province: str = "") -> HttpResponse:
    slip = selectors.return_slip(request_actor(request), case_id, province)
    response = HttpResponse(render_return_slip(slip), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="return-slip-{slip.case_number}.pdf"'
    return response


@router.post("/logistics/cases/{case_id}/return-slip", response={201: dict[str, Any], **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="File the return slip on the case (announced as case.return_label_ready)",
             description="Approving a return files it by itself; this files a fresh one (e.g. after the return "
                         "address changed). Errors: no_return_address (409).")
def attach_return_slip(request: HttpRequest, case_id: int, province: str = "") -> Status[dict[str, Any]]:
    actor = request_actor(request)
    selectors.case_shipments(actor, case_id)
    return Status(201, {"attachment_id": services.attach_return_slip(actor=actor, case_id=case_id,
                                                                     province=province)})


@router.get("/logistics/drop-off-points", response={200: list[DropOffPointOut], **ERROR_RESPONSES})
def drop_off_points(request: HttpRequest) -> list[Any]:
    return list(selectors.drop_off_points(request_actor(request)))


@router.get("/logistics/cases/{case_id}/shipments", response={200: list[ShipmentOut], **ERROR_RESPONSES},
            summary="The case's parcels with their tracking events")
def case_shipments(request: HttpRequest, case_id: int) -> list[Any]:
    actor = request_actor(request)
    return [_shipment_out(actor, s) for s in selectors.case_shipments(actor, case_id)]


@router.post("/logistics/cases/{case_id}/return-shipment", response={201: ShipmentOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="The buyer has shipped the goods (self-ship or drop-off)",
             description="Errors: unknown_carrier, invalid_tracking_number, return_method_not_offered, "
                         "invalid_drop_off_point (422); already_shipped, tracking_number_in_use, "
                         "action_not_allowed, no_return_address (409).")
def ship_return(request: HttpRequest, case_id: int, body: ShipReturnIn) -> Status[dict[str, Any]]:
    actor = request_actor(request)
    selectors.case_shipments(actor, case_id)
    shipment = services.ship_return(actor=actor, case_id=case_id, carrier=body.carrier,
                                    tracking_number=body.tracking_number, method=body.method,
                                    drop_off_point_id=body.drop_off_point_id, province=body.province)
    return Status(201, _shipment_out(actor, shipment))


@router.post("/logistics/cases/{case_id}/pickup", response={201: ShipmentOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Book a courier pickup (上门取件)",
             description="Errors: unknown_carrier, field_required, invalid_window, return_method_not_offered "
                         "(422); action_not_allowed, already_shipped (409).")
def book_pickup(request: HttpRequest, case_id: int, body: PickupIn) -> Status[dict[str, Any]]:
    actor = request_actor(request)
    selectors.case_shipments(actor, case_id)
    shipment = services.book_pickup(actor=actor, case_id=case_id, carrier=body.carrier, address=body.address,
                                    contact_name=body.contact_name, contact_phone=body.contact_phone,
                                    window_start=body.window_start, window_end=body.window_end,
                                    province=body.province)
    return Status(201, _shipment_out(actor, shipment))


@router.get("/logistics/shipments/{shipment_id}", response={200: ShipmentOut, **ERROR_RESPONSES})
def get_shipment(request: HttpRequest, shipment_id: int) -> dict[str, Any]:
    actor = request_actor(request)
    return _shipment_out(actor, selectors.get_shipment(actor, shipment_id))


@router.post("/logistics/shipments/{shipment_id}/collected", response={200: ShipmentOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="The courier collected a booked pickup: its waybill number")
def pickup_collected(request: HttpRequest, shipment_id: int, body: CollectedIn) -> dict[str, Any]:
    actor = request_actor(request)
    selectors.get_shipment(actor, shipment_id)
    shipment = services.record_pickup_collected(actor=actor, shipment_id=shipment_id,
                                                tracking_number=body.tracking_number)
    return _shipment_out(actor, shipment)


@router.get("/logistics/cases/{case_id}/exchanges", response={200: list[ExchangeOut], **ERROR_RESPONSES})
def case_exchanges(request: HttpRequest, case_id: int) -> list[Any]:
    return list(selectors.case_exchanges(request_actor(request), case_id))


@router.post("/logistics/cases/{case_id}/exchanges", response={201: ExchangeOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Choose and reserve the replacement for a line",
             description="Errors: line_not_in_case, unknown_sku (422); not_an_open_exchange (409).")
def choose_replacement(request: HttpRequest, case_id: int, body: ReplacementIn) -> Status[Any]:
    actor = request_actor(request)
    selectors.case_shipments(actor, case_id)
    return Status(201, services.choose_replacement(actor=actor, case_id=case_id, order_line_id=body.order_line_id,
                                                   sku=body.sku))


@router.post("/logistics/cases/{case_id}/reship", response={201: ShipmentOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Ship the reserved replacement; the case closes on delivery",
             description="Errors: unknown_carrier, invalid_tracking_number (422); no_replacement_reserved, "
                         "action_not_allowed, tracking_number_in_use (409).")
def reship(request: HttpRequest, case_id: int, body: ReshipIn) -> Status[dict[str, Any]]:
    actor = request_actor(request)
    selectors.case_shipments(actor, case_id)
    shipment = services.reship_exchange(actor=actor, case_id=case_id, carrier=body.carrier,
                                        tracking_number=body.tracking_number)
    return Status(201, _shipment_out(actor, shipment))


_PUSH_ERRORS = {400: ERROR_RESPONSES[400], 401: ERROR_RESPONSES[401], 404: ERROR_RESPONSES[404],
                409: ERROR_RESPONSES[409]}


@router.post("/logistics/webhooks/{store_slug}/aggregator", auth=None, response={200: PushAccepted, **_PUSH_ERRORS},
             summary="Carrier push, aggregator format (form or JSON: param + sign)",
             description="`param` is JSON text with `lastResult` {`com`, `nu`, `state`, `data`: events newest "
                         "first, each `time`, `context`, optional `status`, `areaName`}; `sign` is the upper-case "
                         "hex MD5 of param followed by the store's webhook secret. The same push twice stores "
                         "its events once. Errors: malformed_push (400), invalid_signature (401), "
                         "unknown_shipment, not_found (404).")
def aggregator_push(request: HttpRequest, store_slug: str) -> dict[str, Any]:
    content_type = request.content_type or ""
    form = request.POST.dict() if content_type.startswith("multipart/") else None
    count = services.receive_push(store_slug=store_slug, fmt="aggregator",
                                  body=b"" if form is not None else request.body, content_type=content_type, form=form)
    return {"result": True, "returnCode": "200", "message": "成功", "new_events": count}


@router.post("/logistics/webhooks/{store_slug}/generic", auth=None, response={200: PushAccepted, **_PUSH_ERRORS},
             summary="Carrier push, generic JSON format",
             description="`{carrier, tracking_number, events: [{at, status, description, location}]}` with "
                         "`X-Signature: sha256=<hex HMAC-SHA256 of the raw body with the store's secret>`. "
                         "Errors: malformed_push (400), invalid_signature (401), unknown_shipment, not_found (404).")
def generic_push(request: HttpRequest, store_slug: str) -> dict[str, Any]:
    count = services.receive_push(store_slug=store_slug, fmt="generic", body=request.body,
                                  signature=request.headers.get("X-Signature", ""))
    return {"result": True, "returnCode": "200", "message": "ok", "new_events": count}
