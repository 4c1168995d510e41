"""HTTP endpoints: webhook endpoints and their delivery log (store admins), preferences, and the
inbound-mail webhook a mail provider posts raw messages to."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status

from aftersales.core.errors import DomainError, PermissionDenied
from aftersales.core.schemas import ERROR_RESPONSES
from aftersales.stores.auth import request_actor

from . import inbound, selectors, services
from .models import Delivery, DeliveryAttempt, WebhookEndpoint

router = Router(tags=["notifications"])


class EndpointIn(Schema):
    url: str
    event_types: list[str] = []
    description: str = ""


class EndpointPatch(Schema):
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    is_active: bool | None = None


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    event_types: list[str]
    is_active: bool
    failing_since: dt.datetime | None
    created_at: dt.datetime


class EndpointWithSecretOut(EndpointOut):
    secret: str
    previous_secret_expires_at: dt.datetime | None


class RotateIn(Schema):
    overlap_hours: int = 24


class DeliveryOut(Schema):
    id: int
    event_id: str
    event_type: str
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str


class AttemptOut(Schema):
    attempted_at: dt.datetime
    duration_ms: int
    request_headers: dict[str, Any]
    request_body: str
    response_status: int | None
    response_headers: dict[str, Any]
    response_body: str
    error: str
    succeeded: bool


class DeliveryDetailOut(DeliveryOut):
    log: list[AttemptOut]


class PreferencesIn(Schema):
    email: bool | None = None
    sms: bool | None = None
    events: list[str] | None = None


class PreferencesOut(Schema):
    email: bool | None = None
    sms: bool | None = None
    events: list[str] | None = None


class InboundOut(Schema):
    outcome: str
    case_id: int | None


def _endpoint_out(endpoint: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    data = {f: getattr(endpoint, f) for f in EndpointOut.model_fields}
    if secret:
        data["secret"] = endpoint.secret
        data["previous_secret_expires_at"] = endpoint.previous_secret_expires_at
    return data


def _delivery_out(delivery: Delivery, log: list[DeliveryAttempt] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": delivery.pk, "event_id": str(delivery.event_id), "event_type": delivery.event.type,
        "channel": delivery.channel, "target": delivery.target, "status": delivery.status,
        "attempts": delivery.attempts, "next_attempt_at": delivery.next_attempt_at, "sent_at": delivery.sent_at,
        "last_error": delivery.last_error,
    }
    if log is not None:
        data["log"] = [{f: getattr(a, f) for f in AttemptOut.model_fields} for a in log]
    return data


@router.get("/webhooks/endpoints", response={200: list[EndpointOut], **ERROR_RESPONSES})
def list_endpoints(request: HttpRequest) -> list[dict[str, Any]]:
    return [_endpoint_out(e) for e in selectors.endpoints(request_actor(request))]


@router.post("/webhooks/endpoints", response={201: EndpointWithSecretOut, **ERROR_RESPONSES})
def create_endpoint(request: HttpRequest, body: EndpointIn) -> Status[dict[str, Any]]:
    endpoint = services.create_endpoint(actor=request_actor(request), url=body.url, event_types=body.event_types,
                                        description=body.description)
    return Status(201, _endpoint_out(endpoint, secret=True))


@router.patch("/webhooks/endpoints/{endpoint_id}", response={200: EndpointOut, **ERROR_RESPONSES})
def update_endpoint(request: HttpRequest, endpoint_id: int, body: EndpointPatch) -> dict[str, Any]:
    endpoint = services.update_endpoint(actor=request_actor(request), endpoint_id=endpoint_id, url=body.url,
                                        event_types=body.event_types, description=body.description,
                                        is_active=body.is_active)
    return _endpoint_out(endpoint)


@router.delete("/webhooks/endpoints/{endpoint_id}", response={204: None, **ERROR_RESPONSES})
def delete_endpoint(request: HttpRequest, endpoint_id: int) -> Status[None]:
    services.delete_endpoint(actor=request_actor(request), endpoint_id=endpoint_id)
    return Status(204, None)


@router.post("/webhooks/endpoints/{endpoint_id}/rotate-secret",
             response={200: EndpointWithSecretOut, **ERROR_RESPONSES})
def rotate_secret(request: HttpRequest, endpoint_id: int, body: RotateIn) -> dict[str, Any]:
    endpoint = services.rotate_secret(actor=request_actor(request), endpoint_id=endpoint_id,
                                      overlap=dt.timedelta(hours=body.overlap_hours))
    return _endpoint_out(endpoint, secret=True)


@router.get("/webhooks/endpoints/{endpoint_id}/deliveries", response={200: list[DeliveryOut], **ERROR_RESPONSES})
def endpoint_deliveries(request: HttpRequest, endpoint_id: int, limit: int = 50) -> list[dict[str, Any]]:
    return [_delivery_out(d) for d in selectors.deliveries_of(request_actor(request), endpoint_id, limit=min(max(limit, 1), 200))]


@router.get("/notifications/deliveries/{delivery_id}", response={200: DeliveryDetailOut, **ERROR_RESPONSES})
def delivery_detail(request: HttpRequest, delivery_id: int) -> dict[str, Any]:
    delivery, log = selectors.delivery(request_actor(request), delivery_id)
    return _delivery_out(delivery, log)


@router.post("/notifications/deliveries/{delivery_id}/resend", response={202: DeliveryOut, **ERROR_RESPONSES})
def resend(request: HttpRequest, delivery_id: int) -> Status[dict[str, Any]]:
    actor = request_actor(request)
    services.resend_delivery(actor=actor, delivery_id=delivery_id)
    delivery, _ = selectors.delivery(actor, delivery_id)
    return Status(202, _delivery_out(delivery))


@router.put("/notifications/preferences", response={200: PreferencesOut, **ERROR_RESPONSES})
def set_preferences(request: HttpRequest, body: PreferencesIn) -> dict[str, Any]:
    """A buyer chooses channels (email, sms); a member of staff chooses events."""
    actor = request_actor(request)
    if actor.is_buyer and actor.buyer_id is not None:
        preference = services.set_buyer_preferences(actor=actor, buyer_id=actor.buyer_id, email=body.email,
                                                    sms=body.sms)
        return {"email": preference.email, "sms": preference.sms and preference.sms_opted_out_at is None}
    staff = services.set_staff_preferences(actor=actor, events=body.events or [])
    return {"events": staff.events}


@router.post("/notifications/inbound-mail", auth=None, response={202: InboundOut, **ERROR_RESPONSES})
def inbound_mail(request: HttpRequest, recipient: str | None = None) -> Status[dict[str, Any]]:
    """A mail provider posts the raw RFC 822 message as the body, with the shared secret in the
    X-Inbound-Secret header; `recipient` is the envelope recipient when the provider knows it."""
    secret = settings.AFTERSALES_INBOUND_MAIL_SECRET
    given = request.headers.get("X-Inbound-Secret", "")
    if not secret or not hmac.compare_digest(secret.encode(), given.encode()):
        raise PermissionDenied("wrong or missing X-Inbound-Secret")
    if not request.body:
        raise DomainError("empty_message", "the body must be the raw message", status=422)
    record = inbound.handle_inbound(raw=request.body, recipient=recipient)
    return Status(202, {"outcome": record.outcome, "case_id": record.case_id})
