"""HTTP endpoints for cases. Thin: parse, call a selector or a service, shape the answer."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import File, Query, Router, Schema
from ninja.files import UploadedFile

from aftersales.core.pagination import paginate
from aftersales.stores.permissions import Actor

from . import selectors, services
from .models import Case, ReasonCode
from .schemas import (
    ActionIn,
    ActionName,
    AssignIn,
    AttachmentOut,
    CaseCreateIn,
    CaseDetailOut,
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


def _actor(request: HttpRequest) -> Actor:
    return request.auth  # type: ignore[attr-defined]


def _case_out(case: Case) -> dict[str, object]:
    return {**{f: getattr(case, f) for f in CaseOut.model_fields if f != "reason"},
            "reason": case.reason.code if case.reason_id and case.reason else None}


def _detail(case: Case, actor: Actor) -> dict[str, object]:
    lines = [
        {"order_line_id": line.order_line_id, "sku": line.order_line.sku, "name": line.order_line.name,
         "quantity": line.quantity}
        for line in case.lines.select_related("order_line").order_by("id")
    ]
    extra = {f: getattr(case, f) for f in CaseDetailOut.model_fields if f not in CaseOut.model_fields
             and f not in ("lines", "allowed_actions")}
    return {**_case_out(case), **extra, "lines": lines, "allowed_actions": services.allowed_actions(case, actor)}


class CaseFilters(Schema):
    status: str | None = None
    kind: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    order_id: int | None = None
    buyer_id: int | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    cursor: str | None = None
    limit: int = 25


@router.get("/cases", response=CasePage, summary="List cases, newest first")
def list_cases(request: HttpRequest, filters: Query[CaseFilters]) -> dict[str, object]:
    actor = _actor(request)
    queryset = selectors.filter_cases(
        selectors.visible_cases(actor).select_related("reason"),
        **filters.model_dump(exclude={"cursor", "limit"}),
    )
    rows, next_cursor = paginate(queryset, cursor=filters.cursor, limit=filters.limit)
    return {"items": [_case_out(c) for c in rows], "next_cursor": next_cursor}


@router.post("/cases", response={201: CaseDetailOut}, summary="Open a case")
def create_case(request: HttpRequest, body: CaseCreateIn) -> tuple[int, dict[str, object]]:
    actor = _actor(request)
    case = services.create_case(
        actor=actor, kind=body.kind, order_id=body.order_id, buyer_id=body.buyer_id,
        lines=[services.LineRequest(order_line_id=line.order_line_id, quantity=line.quantity) for line in body.lines],
        reason_code=body.reason, description=body.description, subject=body.subject, channel=body.channel,
        priority=body.priority, requested_amount=body.requested_amount,
    )
    return 201, _detail(selectors.get_case(actor, case.pk), actor)


@router.get("/cases/{case_id}", response=CaseDetailOut, summary="One case, with what may be done now")
def get_case(request: HttpRequest, case_id: int) -> dict[str, object]:
    actor = _actor(request)
    return _detail(selectors.get_case(actor, case_id), actor)


@router.post("/cases/{case_id}/actions/{action}", response=CaseDetailOut,
             summary="Move a case: approve, reject, refund, ... (409 lists what is allowed now)")
def act_on_case(request: HttpRequest, case_id: int, action: ActionName, body: ActionIn) -> dict[str, object]:
    actor = _actor(request)
    payload = body.model_dump(exclude_none=True, exclude={"outcome"})
    services.transition_case(actor=actor, case_id=case_id, action=action, outcome=body.outcome, payload=payload)
    return _detail(selectors.get_case(actor, case_id), actor)


@router.get("/cases/{case_id}/timeline", response=list[TimelineOut], summary="Everything that happened, oldest first")
def get_timeline(request: HttpRequest, case_id: int) -> list[object]:
    actor = _actor(request)
    return list(selectors.case_timeline(actor, selectors.get_case(actor, case_id)))


@router.get("/cases/{case_id}/messages", response=list[MessageOut])
def list_messages(request: HttpRequest, case_id: int) -> list[object]:
    actor = _actor(request)
    return list(selectors.case_messages(actor, selectors.get_case(actor, case_id)))


@router.post("/cases/{case_id}/messages", response={201: MessageOut}, summary="Reply to the buyer or add an internal note")
def post_message(request: HttpRequest, case_id: int, body: MessageIn) -> tuple[int, object]:
    actor = _actor(request)
    return 201, services.post_message(actor=actor, case_id=case_id, body=body.body, visibility=body.visibility)


@router.get("/cases/{case_id}/attachments", response=list[AttachmentOut])
def list_attachments(request: HttpRequest, case_id: int) -> list[object]:
    actor = _actor(request)
    case = selectors.get_case(actor, case_id)
    return list(case.attachments.order_by("id"))


@router.post("/cases/{case_id}/attachments", response={201: AttachmentOut},
             summary="Upload evidence (JPEG, PNG, WebP or PDF, checked by content)")
def upload_attachment(request: HttpRequest, case_id: int, file: File[UploadedFile]) -> tuple[int, object]:
    actor = _actor(request)
    selectors.get_case(actor, case_id)
    content = file.read()
    return 201, services.add_attachment(actor=actor, case_id=case_id, content=content, filename=file.name or "upload")


@router.post("/cases/{case_id}/assign", response=CaseDetailOut)
def assign(request: HttpRequest, case_id: int, body: AssignIn) -> dict[str, object]:
    actor = _actor(request)
    services.assign_case(actor=actor, case_id=case_id, assignee_id=body.assignee_id)
    return _detail(selectors.get_case(actor, case_id), actor)


@router.post("/cases/{case_id}/priority", response=CaseDetailOut)
def change_priority(request: HttpRequest, case_id: int, body: PriorityIn) -> dict[str, object]:
    actor = _actor(request)
    services.set_priority(actor=actor, case_id=case_id, priority=body.priority)
    return _detail(selectors.get_case(actor, case_id), actor)


@router.post("/cases/{case_id}/rating", response=CaseDetailOut, summary="The buyer rates the service (1–5)")
def rate(request: HttpRequest, case_id: int, body: RatingIn) -> dict[str, object]:
    actor = _actor(request)
    services.rate_case(actor=actor, case_id=case_id, rating=body.rating, comment=body.comment)
    return _detail(selectors.get_case(actor, case_id), actor)


@router.get("/reason-codes", response=list[ReasonCodeOut], summary="The reasons a buyer can give in this store")
def reason_codes(request: HttpRequest) -> list[object]:
    actor = _actor(request)
    return list(ReasonCode.objects.filter(store_id=actor.store_id, active=True))
