"""HTTP endpoints for cases. Thin: parse, call a selector or a service, shape the answer.

Every route that names a case looks it up in the caller's store first, so a case of another store is
a 404 whatever the caller may or may not do to it: a 403 there would confirm that the case exists.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import File, Query, Router, Status
from ninja.files import UploadedFile

from aftersales.core.errors import ValidationFailed
from aftersales.core.pagination import paginate
from aftersales.core.renderers import ApiRenderer
from aftersales.core.schemas import ERROR_RESPONSES, IDEMPOTENT
from aftersales.stores.auth import request_actor
from aftersales.stores.permissions import Actor

from . import selectors, services
from .models import Case
from .schemas import (
    ActionIn,
    ActionName,
    AssignIn,
    AttachmentOut,
    CaseCreateIn,
    CaseDetailOut,
    CaseFilters,
    CaseOut,
    CasePage,
    MessageIn,
    MessageOut,
    PriorityIn,
    RatingIn,
    ReasonCodeOut,
    TimelineOut,
)

router = Router(tags=["cases"])

_FILTER_NAMES = frozenset(CaseFilters.model_fields)


_RENDERER = ApiRenderer()


def _render(request: HttpRequest, data: dict[str, object], status: int = 200) -> HttpResponse:
    """Answers with data already in the response schema's shape, rendered as the API renders."""
    return HttpResponse(_RENDERER.render(request, data, response_status=status), status=status,
                        content_type=f"{_RENDERER.media_type}; charset={_RENDERER.charset}")


def _visible(request: HttpRequest, case_id: int) -> tuple[Actor, Case]:
    actor = request_actor(request)
    return actor, selectors.get_case(actor, case_id)


# A list row is read as plain values (no model instances) and answered as they come: validating 25
# rows through the schema again cost more than the query. The names are the schema's own, so the shape
# cannot drift from what the OpenAPI document says; test_case_list checks them against the detail.
_LIST_VALUES = {name: ("reason__code" if name == "reason" else name) for name in CaseOut.model_fields}

# The schemas' field names, read once: every read of `model_fields` is a call into pydantic.
_ROW_ATTRIBUTES = tuple(f for f in CaseOut.model_fields if f != "reason")
_DETAIL_ATTRIBUTES = tuple(f for f in CaseDetailOut.model_fields
                           if f not in CaseOut.model_fields and f not in ("lines", "allowed_actions"))
_DETAIL_FIELDS = tuple(CaseDetailOut.model_fields)


def _case_out(case: Case) -> dict[str, object]:
    return {**{f: getattr(case, f) for f in _ROW_ATTRIBUTES},
            "reason": case.reason.code if case.reason_id and case.reason else None}


def _detail(case: Case, actor: Actor) -> dict[str, object]:
    lines = [
        {"order_line_id": line.order_line_id, "sku": line.order_line.sku, "name": line.order_line.name,
         "quantity": line.quantity}
        for line in selectors.case_lines(case)
    ]
    extra = {f: getattr(case, f) for f in _DETAIL_ATTRIBUTES}
    return {**_case_out(case), **extra, "lines": lines, "allowed_actions": services.allowed_actions(case, actor)}


def _fresh_detail(actor: Actor, case_id: int) -> dict[str, object]:
    return _detail(selectors.get_case(actor, case_id), actor)


@router.get("/cases", response={200: CasePage, **ERROR_RESPONSES}, summary="List cases, newest first",
            description="Cursor-paged: pass `next_cursor` back as `cursor` until it is null. Errors: "
                        "invalid_cursor, invalid_limit (1 to 100), unknown_parameter, conflicting_filters "
                        "(unassigned with assignee_id), validation_error.")
def list_cases(request: HttpRequest, filters: Query[CaseFilters]) -> HttpResponse:
    # Query parameters are not a model Ninja can close, so a misspelt filter is caught here rather
    # than silently widening the list to everything.
    unknown = sorted(set(request.GET) - _FILTER_NAMES)
    if unknown:
        raise ValidationFailed("unknown query parameters", field=unknown[0], code="unknown_parameter",
                               details={"unknown": unknown, "allowed": sorted(_FILTER_NAMES)})
    actor = request_actor(request)
    queryset = selectors.filter_cases(selectors.visible_cases(actor), **filters.model_dump(exclude={"cursor", "limit"}))
    # Only the columns a list row shows: the decision JSON and the texts stay on disk.
    rows, next_cursor = paginate(queryset.values(*_LIST_VALUES.values()), cursor=filters.cursor, limit=filters.limit)
    items = [{name: row[column] for name, column in _LIST_VALUES.items()} for row in rows]
    return _render(request, {"items": items, "next_cursor": next_cursor})


@router.post("/cases", response={201: CaseDetailOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Open a case (send an Idempotency-Key to retry safely)",
             description="Errors: validation_error, order_required, buyer_required, reason_required, "
                         "invalid_reason, lines_required, lines_not_allowed, duplicate_line, line_not_in_order, "
                         "quantity_exceeds_available (422); not_found for an order or buyer not in this store (404).")
def create_case(request: HttpRequest, body: CaseCreateIn) -> HttpResponse:
    actor = request_actor(request)
    case = services.create_case(
        actor=actor, kind=body.kind, order_id=body.order_id, buyer_id=body.buyer_id,
        lines=[services.LineRequest(order_line_id=line.order_line_id, quantity=line.quantity) for line in body.lines],
        reason_code=body.reason, description=body.description, subject=body.subject, channel=body.channel,
        priority=body.priority, requested_amount=body.requested_amount,
    )
    # The service hands back the case with its store and reason attached: no need to read it again.
    # Built in the schema's own shape and order and rendered as it stands, for the busiest write of all:
    # validating it through the schema again cost a tenth of the request. A test holds it equal to GET.
    detail = _detail(case, actor)
    return _render(request, {name: detail[name] for name in _DETAIL_FIELDS}, status=201)


@router.get("/cases/{case_id}", response={200: CaseDetailOut, **ERROR_RESPONSES},
            summary="One case, with what may be done now")
def get_case(request: HttpRequest, case_id: int) -> dict[str, object]:
    actor, case = _visible(request, case_id)
    return _detail(case, actor)


@router.post("/cases/{case_id}/actions/{action}", response={200: CaseDetailOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT,
             summary="Move a case: approve, reject, refund, ... (409 lists what is allowed now)",
             description="`allowed_actions` on the case says what may be done now, and which `outcome` each "
                         "needs. Errors: action_not_allowed and platform_not_available (409, with `status` and "
                         "`allowed_actions`), already_refunded (409), outcome_required, invalid_outcome, "
                         "field_required, invalid_amount, amount_exceeds_paid, invalid_tracking_number (422), "
                         "permission_denied (403).")
def act_on_case(request: HttpRequest, case_id: int, action: ActionName, body: ActionIn) -> dict[str, object]:
    actor, _ = _visible(request, case_id)
    payload = body.model_dump(exclude_none=True, exclude={"outcome"})
    services.transition_case(actor=actor, case_id=case_id, action=action, outcome=body.outcome, payload=payload)
    return _fresh_detail(actor, case_id)


@router.get("/cases/{case_id}/timeline", response={200: list[TimelineOut], **ERROR_RESPONSES},
            summary="Everything that happened, oldest first")
def get_timeline(request: HttpRequest, case_id: int) -> list[Any]:
    actor, case = _visible(request, case_id)
    return list(selectors.case_timeline(actor, case))


@router.get("/cases/{case_id}/messages", response={200: list[MessageOut], **ERROR_RESPONSES},
            summary="The conversation, oldest first (a buyer sees only public messages)")
def list_messages(request: HttpRequest, case_id: int) -> list[Any]:
    actor, case = _visible(request, case_id)
    return list(selectors.case_messages(actor, case))


@router.post("/cases/{case_id}/messages", response={201: MessageOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="Reply to the buyer or add an internal note")
def post_message(request: HttpRequest, case_id: int, body: MessageIn) -> Status[Any]:
    actor, _ = _visible(request, case_id)
    return Status(201, services.post_message(actor=actor, case_id=case_id, body=body.body, visibility=body.visibility))


@router.get("/cases/{case_id}/attachments", response={200: list[AttachmentOut], **ERROR_RESPONSES})
def list_attachments(request: HttpRequest, case_id: int) -> list[Any]:
    actor, case = _visible(request, case_id)
    return list(selectors.case_attachments(actor, case))


@router.post("/cases/{case_id}/attachments", response={201: AttachmentOut, **ERROR_RESPONSES},
             openapi_extra=IDEMPOTENT, summary="Upload evidence (JPEG, PNG, WebP or PDF, checked by content)",
             description="The type is read from the content, never from the name. Errors (422): file_empty, "
                         "file_too_large, file_type_not_allowed, file_corrupt.")
def upload_attachment(request: HttpRequest, case_id: int, file: File[UploadedFile]) -> Status[Any]:
    actor, _ = _visible(request, case_id)
    # One byte past the limit is enough to refuse it: a huge upload is never read into memory whole.
    content = file.read(settings.AFTERSALES_MAX_ATTACHMENT_BYTES + 1)
    return Status(201, services.add_attachment(actor=actor, case_id=case_id, content=content,
                                               filename=file.name or "upload"))


@router.post("/cases/{case_id}/assign", response={200: CaseDetailOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT)
def assign(request: HttpRequest, case_id: int, body: AssignIn) -> dict[str, object]:
    actor, _ = _visible(request, case_id)
    services.assign_case(actor=actor, case_id=case_id, assignee_id=body.assignee_id)
    return _fresh_detail(actor, case_id)


@router.post("/cases/{case_id}/priority", response={200: CaseDetailOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT)
def change_priority(request: HttpRequest, case_id: int, body: PriorityIn) -> dict[str, object]:
    actor, _ = _visible(request, case_id)
    services.set_priority(actor=actor, case_id=case_id, priority=body.priority)
    return _fresh_detail(actor, case_id)


@router.post("/cases/{case_id}/rating", response={200: CaseDetailOut, **ERROR_RESPONSES}, openapi_extra=IDEMPOTENT,
             summary="The buyer rates the service (1–5)")
def rate(request: HttpRequest, case_id: int, body: RatingIn) -> dict[str, object]:
    actor, _ = _visible(request, case_id)
    services.rate_case(actor=actor, case_id=case_id, rating=body.rating, comment=body.comment)
    return _fresh_detail(actor, case_id)


@router.get("/reason-codes", response={200: list[ReasonCodeOut], **ERROR_RESPONSES},
            summary="The reasons a buyer can give in this store")
def reason_codes(request: HttpRequest) -> list[Any]:
    return list(selectors.reason_codes(request_actor(request)))
