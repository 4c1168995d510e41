"""SLA status of a case and the store's SLA report. Thin: check who asks, read a selector."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router

from aftersales.cases import selectors as case_selectors
from aftersales.cases.states import Status
from aftersales.core import clock
from aftersales.core.errors import PermissionDenied, ValidationFailed
from aftersales.core.schemas import ERROR_RESPONSES
from aftersales.stores import permissions as perm
from aftersales.stores.auth import request_actor

from . import selectors
from .schemas import CaseSlaOut, SlaReportOut

router = Router(tags=["sla"])


@router.get("/cases/{case_id}/sla", response={200: CaseSlaOut, **ERROR_RESPONSES},
            summary="SLA clocks and the next automatic deadline of a case",
            description="Each clock with its state and the seconds left (business or calendar time, as the "
                        "store's policy says); `deadline_at` is when the platform-style timeout acts if nobody "
                        "does. A buyer sees their own cases only. Errors: not_found.")
def case_sla(request: HttpRequest, case_id: int) -> dict[str, object]:
    actor = request_actor(request)
    case = case_selectors.get_case(actor, case_id)
    now = clock.now()
    calendar = selectors.calendar_for(store_id=case.store_id)
    return {
        "case_id": case.pk,
        "status": case.status,
        "paused": case.status in Status.WAITING_ON_BUYER,
        "deadline_at": case.deadline_at,
        "deadline_rule": case.deadline_rule,
        "deadline_seconds_left": int((case.deadline_at - now).total_seconds()) if case.deadline_at else None,
        "clocks": [selectors.clock_state(c, now, calendar)
                   for c in selectors.case_clocks(store_id=case.store_id, case_id=case.pk)],
    }


@router.get("/sla/report", response={200: SlaReportOut, **ERROR_RESPONSES},
            summary="SLA met and breached, per target, per kind and per agent",
            description="Clocks started in [since, until). Staff who assign work (agents, supervisors, admins) "
                        "and tokens with cases:write. Errors: permission_denied, invalid_range.")
def sla_report(request: HttpRequest, since: dt.datetime | None = None,
               until: dt.datetime | None = None) -> dict[str, object]:
    actor = request_actor(request)
    if actor.is_buyer:
        raise PermissionDenied("the SLA report is for the shop's staff")
    actor.require(perm.CASE_ASSIGN)
    if since and until and since >= until:
        raise ValidationFailed("since must be before until", field="since", code="invalid_range")
    return {"store_id": actor.store_id, "since": since, "until": until,
            **selectors.report(store_id=actor.store_id, since=since, until=until)}
