"""The agent console: the queue, the case page, the warehouse desk and the supervisor's overview.

Every read goes through the cases and orders selectors and every write through the case services,
with the Actor of the signed-in staff member, so the console can do exactly what the API allows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from aftersales.cases import selectors, services
from aftersales.cases.models import Case, Channel, Priority, Visibility
from aftersales.cases.states import Kind, Status
from aftersales.core import clock
from aftersales.core.errors import DomainError, ValidationFailed
from aftersales.core.pagination import decode_cursor, encode_cursor
from aftersales.notifications import selectors as notification_selectors
from aftersales.notifications import services as notification_services
from aftersales.notifications.models import DeliveryStatus
from aftersales.orders import selectors as order_selectors
from aftersales.sla import selectors as sla_selectors
from aftersales.stores import permissions as perm
from aftersales.stores.models import Membership
from aftersales.stores.permissions import Actor

from . import live
from . import sla as sla_view
from .web import error_text, staff_page

PAGE_SIZE = 25
DUE_SOON = dt.timedelta(hours=24)
# A case in one of these needs nobody's work any more; the views of work to do leave them out.
FINISHED = frozenset(Status.TERMINAL | {Status.REFUNDED, Status.RESOLVED, Status.RESHIPPED})
# Named rather than "not finished", so the (store, status) index answers instead of a scan of history.
LIVE = tuple(sorted(set(Status.LABELS) - FINISHED))
SAVED_VIEWS = ("all", "mine", "unassigned", "due_soon", "breached", "waiting")
SORTS = ("newest", "oldest", "deadline")
# Fields an action form may send; anything else in the POST is ignored rather than passed on.
PAYLOAD_FIELDS = ("reason", "amount", "message", "carrier", "tracking_number", "notes", "grade", "diagnosis")
WAREHOUSE_ACTIONS = frozenset({"mark_received", "start_inspection", "record_inspection", "reship"})
# Where a parcel the warehouse scans can belong: goods on their way back or being checked in.
AT_THE_WAREHOUSE = (Status.AWAITING_RETURN, Status.RETURN_IN_TRANSIT, Status.RECEIVED, Status.INSPECTING,
                    Status.AWAITING_DEVICE, Status.DEVICE_IN_TRANSIT, Status.DEVICE_RECEIVED)


def _queue_poll_seconds() -> int:
    # Less often than a case page (see live.py): a queue page costs more and changes row by row.
    return int(getattr(settings, "AFTERSALES_QUEUE_POLL_SECONDS", 15))


def _view_label(view: str) -> str:
    return {
        "all": _("All"), "mine": _("Mine"), "unassigned": _("Unassigned"), "due_soon": _("Due within 24 h"),
        "breached": _("Overdue"), "waiting": _("Waiting on buyer"),
    }[view]


def _apply_view(queryset: QuerySet[Case], view: str, actor: Actor) -> QuerySet[Case]:
    now = clock.now()
    if view == "mine":
        return queryset.filter(assignee_id=actor.user_id, status__in=LIVE)
    if view == "unassigned":
        return queryset.filter(assignee__isnull=True, status__in=LIVE)
    if view == "due_soon":
        return queryset.filter(deadline_at__gte=now, deadline_at__lt=now + DUE_SOON)
    if view == "breached":
        return queryset.filter(deadline_at__lt=now)
    if view == "waiting":
        return queryset.filter(status__in=Status.WAITING_ON_BUYER)
    return queryset


def _choice(request: HttpRequest, name: str, allowed: Any) -> str:
    value = request.GET.get(name, "")
    return value if value in allowed else ""


def page_cases(queryset: QuerySet[Case], *, sort: str, cursor: str | None) -> tuple[list[Case], str | None]:
    """One page in the chosen order, keyed on (time, id) so a page costs one index range scan."""
    field = {"newest": "created_at", "oldest": "created_at", "deadline": "deadline_at"}[sort]
    descending = sort == "newest"
    if sort == "deadline":
        queryset = queryset.filter(deadline_at__isnull=False)
    if cursor:
        moment, pk = decode_cursor(cursor)
        if descending:
            queryset = queryset.filter(Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "pk__lt": pk}))
        else:
            queryset = queryset.filter(Q(**{f"{field}__gt": moment}) | Q(**{field: moment, "pk__gt": pk}))
    order = (f"-{field}", "-pk") if descending else (field, "pk")
    rows = list(queryset.select_related("buyer", "assignee").order_by(*order)[: PAGE_SIZE + 1])
    next_cursor = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_cursor = encode_cursor(getattr(rows[-1], field), rows[-1].pk)
    return rows, next_cursor


def _staff_choices(actor: Actor) -> list[tuple[int, str]]:
    return [
        (m.user_id, m.user.get_username())
        for m in Membership.objects.filter(store_id=actor.store_id).select_related("user").order_by("user__username")
    ]


@staff_page
def queue(request: HttpRequest, actor: Actor) -> HttpResponse:
    view = request.GET.get("view", "all")
    if view not in SAVED_VIEWS:
        view = "all"
    status = _choice(request, "status", Status.LABELS)
    kind = _choice(request, "kind", Kind.ALL)
    channel = _choice(request, "channel", Channel.values)
    priority = _choice(request, "priority", [str(p) for p in Priority.values])
    default_sort = "deadline" if view in ("due_soon", "breached") else "newest"
    sort = _choice(request, "sort", SORTS) or default_sort

    queryset = _apply_view(selectors.visible_cases(actor), view, actor)
    queryset = selectors.filter_cases(queryset, status=status or None, kind=kind or None)
    if channel:
        queryset = queryset.filter(channel=channel)
    if priority:
        queryset = queryset.filter(priority=int(priority))
    rows, next_cursor = page_cases(queryset, sort=sort, cursor=request.GET.get("cursor") or None)
    sla_view.attach_to_rows(actor.store_id, rows)
    refresh = request.GET.copy()
    refresh["fragment"] = "rows"
    if request.GET.get("fragment") == "rows":
        # The queue's live refresh (htmx polls it): the same rows, same filters, same page, nothing else.
        return render(request, "console/queue_rows.html", {"rows": rows, "refresh_query": refresh.urlencode(),
                                                           "poll_seconds": _queue_poll_seconds()})

    keep = {"view": view, "status": status, "kind": kind, "channel": channel, "priority": priority, "sort": sort}
    query = "&".join(f"{k}={v}" for k, v in keep.items() if v)
    return render(request, "console/queue.html", {
        "actor": actor, "rows": rows, "next_cursor": next_cursor, "query": query, "current": keep,
        "views": [(v, _view_label(v)) for v in SAVED_VIEWS],
        "statuses": list(Status.LABELS), "kinds": Kind.ALL, "channels": Channel.choices, "priorities": Priority.choices,
        "sorts": [("newest", _("Newest first")), ("oldest", _("Oldest first")), ("deadline", _("Deadline first"))],
        "staff": _staff_choices(actor), "section": "queue", "refresh_query": refresh.urlencode(),
        "poll_seconds": _queue_poll_seconds(),
    })


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


@require_POST
@staff_page
def bulk(request: HttpRequest, actor: Actor) -> HttpResponse:
    """One operation on many cases. Each case is its own transaction: a case that cannot take the
    operation (it moved on, or the step is not allowed there) is skipped and counted, not fatal."""
    operation = request.POST.get("operation", "")
    ids = [int(raw) for raw in request.POST.getlist("case_ids") if raw.isdigit()]
    if not ids:
        messages.error(request, _("Select at least one case."))
        return _back(request, reverse("console:queue"))
    done = skipped = 0
    for case_id in ids:
        try:
            if operation == "assign":
                raw = request.POST.get("assignee_id", "")
                services.assign_case(actor=actor, case_id=case_id, assignee_id=int(raw) if raw.isdigit() else None)
            elif operation == "assign_me":
                services.assign_case(actor=actor, case_id=case_id, assignee_id=actor.user_id)
            elif operation == "priority":
                services.set_priority(actor=actor, case_id=case_id, priority=int(request.POST.get("priority") or 0))
            elif operation == "approve":
                # "Approve eligible": only where the policy engine found the requested remedy open.
                case = selectors.get_case(actor, case_id)
                if not (case.decision or {}).get("requested_open"):
                    skipped += 1
                    continue
                services.transition_case(actor=actor, case_id=case_id, action="approve")
            elif operation == "close":
                services.transition_case(actor=actor, case_id=case_id, action="close")
            else:
                raise ValidationFailed("unknown operation", field="operation", code="invalid_operation")
            done += 1
        except DomainError as error:
            if error.code == "invalid_operation":
                raise
            skipped += 1
    messages.success(request, _("%(done)s done, %(skipped)s skipped.") % {"done": done, "skipped": skipped})
    return _back(request, reverse("console:queue"))


def _payload(request: HttpRequest) -> dict[str, str]:
    return {name: request.POST[name].strip() for name in PAYLOAD_FIELDS if request.POST.get(name, "").strip()}


def case_context(actor: Actor, case: Case) -> dict[str, Any]:
    order = order_selectors.get_order(actor, case.order_id) if case.order_id else None
    others = list(
        selectors.visible_cases(actor).filter(buyer_id=case.buyer_id).exclude(pk=case.pk)
        .order_by("-created_at", "-pk")[:10]
    )
    attachments = list(selectors.case_attachments(actor, case))
    return {
        "case": case, "order": order, "other_cases": others,
        "case_lines": list(case.lines.filter(store_id=case.store_id).select_related("order_line").order_by("pk")),
        "timeline": list(selectors.case_timeline(actor, case)),
        "conversation": list(selectors.case_messages(actor, case)),
        "attachments": attachments,
        "actions": services.allowed_actions(case, actor),
        "decision": case.decision or {},
        "currency": order.currency if order else case.store.currency,
    }


def _macros(case: Case) -> list[tuple[str, str]]:
    """Canned replies with the buyer's name, the order and the case filled in."""
    values = {"buyer": case.buyer.name or case.buyer.external_id, "order": case.order.external_id if case.order else "",
              "case": case.number}
    return [
        (_("Greeting"), _("Hello %(buyer)s, thank you for contacting us about order %(order)s. We are looking into "
                         "request %(case)s now.") % values),
        (_("Ask for photos"), _("Hello %(buyer)s, could you please upload clear photos of the problem and of the "
                               "packaging for request %(case)s?") % values),
        (_("Return instructions"), _("Hello %(buyer)s, your return for order %(order)s is approved. Please send the "
                                    "goods back and enter the carrier and tracking number on the request page.")
         % values),
        (_("Refund sent"), _("Hello %(buyer)s, the refund for request %(case)s has been sent to your original payment "
                            "method.") % values),
    ]


@staff_page
def case_page(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    case = selectors.get_case(actor, case_id)
    context = case_context(actor, case)
    context.update({"actor": actor, "staff": _staff_choices(actor), "macros": _macros(case),
                    "priorities": Priority.choices, "section": "queue", "sla": sla_view.case_clocks(case)})
    context.update(live.live_context(actor, case, live_url=reverse("console:live", args=[case.pk]),
                                     timeline=context["timeline"], conversation=context["conversation"]))
    return render(request, "console/case.html", context)


@staff_page
def case_live(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    """What happened on the case since the page was drawn (htmx polls it), internal notes included."""
    case = selectors.get_case(actor, case_id)
    return live.live_response(request, actor, case, live_url=reverse("console:live", args=[case.pk]),
                              moved_template="console/case_actions.html",
                              moved_context=lambda: case_context(actor, case),
                              currency=case.order.currency if case.order else case.store.currency,
                              clock_templates=("console/case_sla_now.html", "console/case_sla.html"),
                              clock_context=lambda: {"sla": sla_view.case_clocks(case)})


@require_POST
@staff_page
def case_act(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    action = request.POST.get("action", "")
    outcome = request.POST.get("outcome") or None
    try:
        services.transition_case(actor=actor, case_id=case_id, action=action, outcome=outcome,
                                 payload=_payload(request))
    except DomainError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, _("Done."))
    return _back(request, reverse("console:case", args=[case_id]))


@require_POST
@staff_page
def case_message(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    visibility = Visibility.INTERNAL if request.POST.get("visibility") == "internal" else Visibility.PUBLIC
    services.post_message(actor=actor, case_id=case_id, body=request.POST.get("body", ""), visibility=visibility)
    messages.success(request, _("Internal note saved.") if visibility == Visibility.INTERNAL else _("Reply sent."))
    return _back(request, reverse("console:case", args=[case_id]))


@require_POST
@staff_page
def case_assign(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    raw = request.POST.get("assignee_id", "")
    services.assign_case(actor=actor, case_id=case_id, assignee_id=int(raw) if raw.isdigit() else None)
    if request.POST.get("priority", "").isdigit():
        case = selectors.get_case(actor, case_id)
        if case.priority != int(request.POST["priority"]):
            services.set_priority(actor=actor, case_id=case_id, priority=int(request.POST["priority"]))
    messages.success(request, _("Saved."))
    return _back(request, reverse("console:case", args=[case_id]))


@require_POST
@staff_page
def case_attach(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, _("Choose a file."))
        return _back(request, reverse("console:case", args=[case_id]))
    for upload in files:
        services.add_attachment(actor=actor, case_id=case_id, content=upload.read(), filename=upload.name or "file")
    messages.success(request, _("Files added."))
    return _back(request, reverse("console:case", args=[case_id]))


def attachment_response(actor: Actor, case_id: int, attachment_id: int) -> HttpResponseBase:
    case = selectors.get_case(actor, case_id)
    attachment = selectors.case_attachments(actor, case).filter(pk=attachment_id).first()
    if attachment is None:
        raise DomainError("not_found", "attachment not found", status=404)
    return FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)


@staff_page
def case_file(request: HttpRequest, actor: Actor, case_id: int, attachment_id: int) -> HttpResponseBase:
    return attachment_response(actor, case_id, attachment_id)


@staff_page
def warehouse(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A scanner types the case number or the return tracking number into the field and presses Enter."""
    q = request.GET.get("q", "").strip()
    found: list[Case] = []
    context: dict[str, Any] = {}
    if q:
        cases = selectors.visible_cases(actor).select_related("store", "buyer", "order")
        # Two lookups, not one OR: the case number has a unique index; a tracking number is only looked
        # for among cases whose goods are coming back, which the status index narrows down.
        found = list(cases.filter(number=q.upper())[:1]) or list(
            cases.filter(status__in=AT_THE_WAREHOUSE, return_tracking_number=q)[:10])
        if len(found) == 1:
            context = case_context(actor, found[0])
            context["actions"] = [a for a in context["actions"] if a["action"] in WAREHOUSE_ACTIONS]
    context.update({"actor": actor, "q": q, "found": found, "section": "warehouse"})
    return render(request, "console/warehouse.html", context)


@staff_page
def supervisor(request: HttpRequest, actor: Actor) -> HttpResponse:
    now = clock.now()
    live = selectors.visible_cases(actor).filter(status__in=LIVE)
    # Grouped by status as well as assignee so the database walks the (store, status) index over the
    # live cases instead of the assignee index over all history; the statuses are summed here.
    per_status = (
        live.values("status", "assignee_id")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(deadline_at__lt=now)),
                  at_risk=Count("pk", filter=Q(deadline_at__gte=now, deadline_at__lt=now + dt.timedelta(hours=4))))
        .order_by()
    )
    names = dict(_staff_choices(actor))
    totals: dict[int | None, dict[str, Any]] = {}
    for row in per_status:
        entry = totals.setdefault(row["assignee_id"], {"assignee_id": row["assignee_id"], "open": 0, "overdue": 0,
                                                       "at_risk": 0, "name": names.get(row["assignee_id"], "")})
        for key in ("open", "overdue", "at_risk"):
            entry[key] += row[key]
    workload = sorted(totals.values(), key=lambda w: (-w["overdue"], -w["open"], w["name"]))
    breached = list(selectors.visible_cases(actor).filter(deadline_at__lt=now).select_related("assignee", "buyer")
                    .order_by("deadline_at", "pk")[:25])
    at_risk = list(
        selectors.visible_cases(actor).filter(deadline_at__gte=now, deadline_at__lt=now + dt.timedelta(hours=4))
        .select_related("assignee", "buyer").order_by("deadline_at", "pk")[:25]
    )
    return render(request, "console/supervisor.html", {
        "actor": actor, "workload": workload, "breached": breached, "at_risk": at_risk,
        "staff": _staff_choices(actor), "priorities": Priority.choices, "section": "supervisor",
    })


# --- SLA report -------------------------------------------------------------------------------------

REPORT_DAYS = 30


def _day(request: HttpRequest, name: str, default: dt.date) -> dt.date:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a date such as 2026-11-01", field=name, code="invalid_date") from None


@staff_page
def sla_report(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Met and breached per target, per kind and per agent over whole days of the store's calendar."""
    actor.require(perm.CASE_ASSIGN)
    today = timezone.localdate()
    first = _day(request, "since", today - dt.timedelta(days=REPORT_DAYS - 1))
    last = _day(request, "until", today)
    if first > last:
        raise ValidationFailed("since must not be after until", field="since", code="invalid_range")
    zone = timezone.get_current_timezone()
    since = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    report = sla_selectors.report(store_id=actor.store_id, since=since, until=until)
    charts = sla_view.report_charts(report, dict(_staff_choices(actor)))
    met = sum(c["met"] for c in report["by_target"].values())
    breached = sum(c["breached"] for c in report["by_target"].values())
    return render(request, "console/sla_report.html", {
        "actor": actor, "section": "sla", "charts": charts, "since": first, "until": last,
        "met": met, "breached": breached, "open": sum(c["open"] for c in report["by_target"].values()),
        "met_share": round(100 * met / (met + breached)) if met + breached else None,
    })


# --- webhooks ---------------------------------------------------------------------------------------

@staff_page
def webhooks(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The store's endpoints and the log of what was delivered to them, with a re-send per delivery."""
    endpoints = notification_selectors.endpoints(actor)
    raw = request.GET.get("endpoint", "")
    endpoint_id = int(raw) if raw.isdigit() else None
    status = _choice(request, "status", DeliveryStatus.values)
    log = notification_selectors.webhook_log(actor, endpoint_id=endpoint_id, status=status)
    return render(request, "console/webhooks.html", {
        "actor": actor, "section": "webhooks", "endpoints": endpoints, "log": log, "endpoint_id": endpoint_id,
        "status": status, "statuses": DeliveryStatus.choices,
    })


@require_POST
@staff_page
def webhook_resend(request: HttpRequest, actor: Actor, delivery_id: int) -> HttpResponse:
    notification_services.resend_delivery(actor=actor, delivery_id=delivery_id)
    messages.success(request, _("Queued to be sent again, with the same event id."))
    return _back(request, reverse("console:webhooks"))
