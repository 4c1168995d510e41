"""The buyer portal: my orders, what can be asked for and why, filing a request, following it.

A signed-in buyer sees their own orders; a guest who proved the order's phone or e-mail with a
one-time code sees that one order. Both act through the case services as a buyer Actor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from aftersales.cases import selectors, services
from aftersales.cases.evidence import check_upload
from aftersales.cases.models import Case
from aftersales.cases.services import LineRequest
from aftersales.cases.states import Action, Kind, Status
from aftersales.console import live
from aftersales.console import sla as sla_view
from aftersales.console.views import attachment_response
from aftersales.console.web import GUEST_SESSION_KEY, buyer_page, error_text, guest_order_id, store_of
from aftersales.core import clock
from aftersales.core.errors import DomainError, NotFound, ValidationFailed
from aftersales.logistics import carriers
from aftersales.logistics import selectors as logistics_selectors
from aftersales.logistics import services as logistics_services
from aftersales.orders import selectors as order_selectors
from aftersales.orders.models import Order, OrderLine
from aftersales.policies import services as policy_services
from aftersales.stores.auth import actor_from_session
from aftersales.stores.models import Buyer, Membership
from aftersales.stores.permissions import Actor

from . import services as portal_services

FINISHED_FOR_RATING = frozenset({Status.CLOSED, Status.RESOLVED, Status.REFUNDED, Status.RESHIPPED})
MAX_PHOTOS = 6
# The main road of each kind, shown as steps; side roads (rejected, negotiating...) show as the current step only.
MAIN_PATH = {
    Kind.RETURN_REFUND: [Status.PENDING_REVIEW, Status.AWAITING_RETURN, Status.RETURN_IN_TRANSIT, Status.RECEIVED,
                         Status.INSPECTING, Status.REFUNDING, Status.REFUNDED, Status.CLOSED],
    Kind.REFUND_ONLY: [Status.PENDING_REVIEW, Status.REFUNDING, Status.REFUNDED, Status.CLOSED],
    Kind.EXCHANGE: [Status.PENDING_REVIEW, Status.AWAITING_RETURN, Status.RETURN_IN_TRANSIT, Status.RECEIVED,
                    Status.INSPECTING, Status.RESHIPPING, Status.RESHIPPED, Status.CLOSED],
    Kind.REPAIR: [Status.PENDING_REVIEW, Status.AWAITING_DEVICE, Status.DEVICE_IN_TRANSIT, Status.DEVICE_RECEIVED,
                  Status.DIAGNOSING, Status.REPAIRING, Status.REPAIRED, Status.SHIPPING_BACK, Status.CLOSED],
    Kind.COMPLAINT: [Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED],
    Kind.INQUIRY: [Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED],
}

# The shop's own bookkeeping on a case: its SLA clocks warning, breaching and escalating to a supervisor
# concern the team, not the buyer (who sees by when the shop must answer instead).
SHOP_ONLY_EVENTS = frozenset({"sla_warning", "sla_breached", "sla_escalated"})

# Statuses that loop back to a step of the main road, shown in that step's place.
LOOP_STEPS = {Status.WAITING_ON_CUSTOMER: Status.IN_PROGRESS}


def _now_in_words(status: str) -> str:
    """What is happening now and who must move, in the buyer's words."""
    words = {
        Status.PENDING_REVIEW: _("The shop is reviewing your request."),
        Status.AWAITING_RETURN: _("Approved. Please send the goods back and enter the carrier and tracking number below."),
        Status.RETURN_IN_TRANSIT: _("Your return is on its way to the shop."),
        Status.RECEIVED: _("The shop has received your return and will inspect it."),
        Status.INSPECTING: _("The shop is inspecting the goods."),
        Status.INSPECTION_FAILED: _("The inspection found a problem. The shop will contact you."),
        Status.REFUNDING: _("Your refund is being paid."),
        Status.REFUNDED: _("Your refund has been paid."),
        Status.RESHIPPING: _("The shop is preparing your replacement."),
        Status.RESHIPPED: _("Your replacement has been sent."),
        Status.NEGOTIATING: _("The shop has made you an offer. Accept or decline it below."),
        Status.REJECTED: _("The shop has turned down your request."),
        Status.EXPIRED: _("The request was closed because the goods were not sent back in time."),
        Status.CANCELLED: _("You cancelled this request."),
        Status.IN_ARBITRATION: _("The platform is looking into your request."),
        Status.AWAITING_DEVICE: _("Approved. Please send the device and enter the tracking number below."),
        Status.QUOTE_PENDING: _("The repair is not covered. Accept or decline the quote below."),
        Status.CLOSED: _("This request is finished."),
        Status.RESOLVED: _("The shop has resolved your request."),
        Status.WAITING_ON_CUSTOMER: _("The shop is waiting for your reply."),
    }
    return words.get(status, _("The shop is working on your request."))


# --- accounts ------------------------------------------------------------------------------------

class SignInView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


def home(request: HttpRequest) -> HttpResponse:
    """Where a signed-in person starts: staff in the console, buyers in the portal."""
    if request.session.get(GUEST_SESSION_KEY):
        return redirect("portal:home")
    if not request.user.is_authenticated:
        return redirect("login")
    try:
        actor = actor_from_session(request)
    except DomainError:
        return redirect("choose_store")
    if actor is None:
        return render(request, "error.html", {"error_message": _("Your account has no store yet.")}, status=403)
    return redirect("console:queue" if actor.kind == "staff" else "portal:home")


def choose_store(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    options = [(m.store.slug, m.store.name) for m in Membership.objects.filter(user=request.user).select_related("store")]
    options += [(b.store.slug, b.store.name) for b in Buyer.objects.filter(user=request.user).select_related("store")]
    if request.method == "POST":
        slug = request.POST.get("store", "")
        if slug in {s for s, _name in options}:
            request.session["store_slug"] = slug
            return redirect("home")
        messages.error(request, _("Choose one of your stores."))
    return render(request, "portal/choose_store.html", {"options": options})


# --- guest access --------------------------------------------------------------------------------

def guest_start(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            issued = portal_services.issue_guest_code(order_number=request.POST.get("order_number", ""),
                                                      contact=request.POST.get("contact", ""))
        except DomainError as error:
            messages.error(request, _guest_error(error))
            return redirect("portal:guest")
        request.session["guest_pending"] = issued.guest_code_id if issued else 0
        # Shown only where no channel delivers codes (the embedded default), so the flow can be tried.
        request.session["guest_demo_code"] = issued.code if issued and settings.AFTERSALES_SHOW_GUEST_CODES else ""
        return redirect("portal:guest_verify")
    return render(request, "portal/guest_start.html", {})


def guest_verify(request: HttpRequest) -> HttpResponse:
    pending = request.session.get("guest_pending")
    if pending is None:
        return redirect("portal:guest")
    if request.method == "POST":
        try:
            if not pending:
                raise ValidationFailed("the code is not right", field="code", code="code_wrong")
            order = portal_services.verify_guest_code(guest_code_id=pending, code=request.POST.get("code", ""))
        except DomainError as error:
            messages.error(request, _guest_error(error))
            return redirect("portal:guest_verify")
        request.session.cycle_key()
        request.session[GUEST_SESSION_KEY] = {"store_id": order.store_id, "buyer_id": order.buyer_id,
                                              "order_id": order.pk, "label": order.buyer.name or _("Guest")}
        request.session.pop("guest_pending", None)
        request.session.pop("guest_demo_code", None)
        return redirect("portal:order", order_id=order.pk)
    return render(request, "portal/guest_verify.html", {"demo_code": request.session.get("guest_demo_code", "")})


def _guest_error(error: DomainError) -> str:
    return {
        "code_wrong": _("The code is not right."),
        "code_expired": _("The code has expired. Ask for a new one."),
        "code_locked": _("Too many wrong codes. Ask for a new one."),
        "code_invalid": _("The code is no longer valid. Ask for a new one."),
        "too_many_codes": _("Too many codes were asked for this order. Try again in an hour."),
    }.get(error.code, error_text(error))


def guest_leave(request: HttpRequest) -> HttpResponse:
    request.session.pop(GUEST_SESSION_KEY, None)
    return redirect("portal:guest")


# --- orders ------------------------------------------------------------------------------------

def _order_for(actor: Actor, order_id: int) -> Order:
    guest_order = guest_order_id(actor)
    if guest_order is not None and guest_order != order_id:
        raise NotFound("order")
    return order_selectors.get_order(actor, order_id)


def _case_for(actor: Actor, case_id: int) -> Case:
    case = selectors.get_case(actor, case_id)
    guest_order = guest_order_id(actor)
    if guest_order is not None and case.order_id != guest_order:
        raise NotFound("case")
    return case


@buyer_page
def portal_home(request: HttpRequest, actor: Actor) -> HttpResponse:
    guest_order = guest_order_id(actor)
    if guest_order is not None:
        return redirect("portal:order", order_id=guest_order)
    orders, next_cursor = order_selectors.page_orders(order_selectors.visible_orders(actor),
                                                      cursor=request.GET.get("cursor") or None, limit=20)
    cases = list(selectors.visible_cases(actor).order_by("-created_at", "-pk")[:20])
    return render(request, "portal/home.html", {"orders": orders, "next_cursor": next_cursor, "cases": cases})


def _eligibility(actor: Actor, order: Order, lines: Sequence[OrderLine]) -> list[dict[str, Any]]:
    """For each line, what the policy engine would say now: without a reason, and with a quality problem."""
    store, now = store_of(actor), clock.now()
    rows = []
    for line in lines:
        verdicts = {}
        for reason in ("no_reason", "quality"):
            verdicts[reason] = policy_services.decide(
                store=store, order=order, order_lines=list(lines), requested=[(line.pk, line.quantity)],
                kind=Kind.RETURN_REFUND, reason_category=reason, notice_at=now,
            )
        rows.append({"line": line, **verdicts})
    return rows


@buyer_page
def order_page(request: HttpRequest, actor: Actor, order_id: int) -> HttpResponse:
    order = _order_for(actor, order_id)
    lines = list(order.lines.all())
    cases = list(selectors.filter_cases(selectors.visible_cases(actor), order_id=order.pk).order_by("-created_at"))
    return render(request, "portal/order.html", {
        "order": order, "rows": _eligibility(actor, order, lines), "cases": cases,
        "is_guest": guest_order_id(actor) is not None,
    })


def _requested_lines(request: HttpRequest, lines: Sequence[OrderLine]) -> list[LineRequest]:
    chosen = []
    for line in lines:
        raw = request.POST.get(f"qty_{line.pk}", "").strip()
        if raw.isdigit() and int(raw) > 0:
            chosen.append(LineRequest(order_line_id=line.pk, quantity=int(raw)))
    return chosen


def _request_context(actor: Actor, order: Order, lines: Sequence[OrderLine]) -> dict[str, Any]:
    return {
        "order": order, "lines": lines, "reasons": list(selectors.reason_codes(actor)),
        "kinds": [(k, Kind.LABELS[k]) for k in Kind.WITH_LINES], "max_bytes": settings.AFTERSALES_MAX_ATTACHMENT_BYTES,
        "max_photos": MAX_PHOTOS,
    }


@buyer_page
def request_form(request: HttpRequest, actor: Actor, order_id: int) -> HttpResponse:
    order = _order_for(actor, order_id)
    lines = list(order.lines.all())
    context = _request_context(actor, order, lines)
    if request.method != "POST":
        return render(request, "portal/request.html", context)
    context["posted"] = request.POST
    try:
        photos = request.FILES.getlist("photos")
        if len(photos) > MAX_PHOTOS:
            raise ValidationFailed("too many photos", field="photos", code="too_many_files")
        contents = [(upload.name or "photo", upload.read()) for upload in photos]
        # Checked before the case exists, so a bad photo leaves nothing half-filed; the service checks again.
        for _name, content in contents:
            check_upload(content)
        case = services.create_case(
            actor=actor, kind=request.POST.get("kind", ""), order_id=order.pk, lines=_requested_lines(request, lines),
            reason_code=request.POST.get("reason") or None, description=request.POST.get("description", "")[:5000],
            channel="web",
        )
        for name, content in contents:
            services.add_attachment(actor=actor, case_id=case.pk, content=content, filename=name)
    except DomainError as error:
        context["error"] = _("At most %(n)s photos.") % {"n": MAX_PHOTOS} if error.code == "too_many_files" \
            else error_text(error)
        return render(request, "portal/request.html", context, status=error.status)
    messages.success(request, _("Your request %(number)s has been filed.") % {"number": case.number})
    return redirect("portal:case", case_id=case.pk)


CONTACT_KINDS = (Kind.COMPLAINT, Kind.INQUIRY)


def _photo_contents(request: HttpRequest) -> list[tuple[str, bytes]]:
    photos = request.FILES.getlist("photos")
    if len(photos) > MAX_PHOTOS:
        raise ValidationFailed("too many photos", field="photos", code="too_many_files")
    contents = [(upload.name or "photo", upload.read()) for upload in photos]
    # Checked before the case exists, so a bad photo leaves nothing half-filed; the service checks again.
    for _name, content in contents:
        check_upload(content)
    return contents


@buyer_page
def contact_form(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A complaint (投诉) or an inquiry (咨询), about one of the buyer's orders or about nothing in particular."""
    guest_order = guest_order_id(actor)
    if guest_order is not None:
        # A guest only ever sees the one order they proved, so what they file must hang on it to be seen again.
        orders = [_order_for(actor, guest_order)]
    else:
        orders, _cursor = order_selectors.page_orders(order_selectors.visible_orders(actor), cursor=None, limit=50)
    source = request.POST if request.method == "POST" else request.GET
    raw_order = source.get("order", "").strip()
    context: dict[str, Any] = {
        "orders": orders, "kinds": CONTACT_KINDS, "max_bytes": settings.AFTERSALES_MAX_ATTACHMENT_BYTES,
        "max_photos": MAX_PHOTOS, "posted": source, "chosen_order": raw_order,
    }
    if request.method != "POST":
        return render(request, "portal/contact.html", context)
    try:
        kind = request.POST.get("kind", "")
        if kind not in CONTACT_KINDS:
            raise ValidationFailed("choose complaint or inquiry", field="kind", code="invalid_kind")
        subject = request.POST.get("subject", "").strip()
        if not subject:
            raise ValidationFailed("the subject is empty", field="subject", code="field_required")
        if raw_order and not raw_order.isdigit():
            raise NotFound("order")
        # The order is looked up as this buyer sees it: another buyer's or another store's order is a 404.
        order = _order_for(actor, int(raw_order)) if raw_order else None
        if order is None and guest_order is not None:
            order = orders[0]
        contents = _photo_contents(request)
        with transaction.atomic():
            case = services.create_case(
                actor=actor, kind=kind, subject=subject[:200], description=request.POST.get("description", "")[:5000],
                channel="web", order_id=order.pk if order else None,
            )
            for name, content in contents:
                services.add_attachment(actor=actor, case_id=case.pk, content=content, filename=name)
    except NotFound as error:
        # Said as a 404 on POST too: the form never offered that order, so there is nothing to go back to.
        return render(request, "error.html", {"error": error, "error_message": error_text(error)}, status=404)
    except DomainError as error:
        if error.code == "too_many_files":
            context["error"] = _("At most %(n)s photos.") % {"n": MAX_PHOTOS}
        elif error.code == "field_required":
            context["error"] = _("Give a subject.")
        else:
            context["error"] = error_text(error)
        return render(request, "portal/contact.html", context, status=error.status)
    messages.success(request, _("Your message %(number)s has been sent to the shop.") % {"number": case.number})
    return redirect("portal:case", case_id=case.pk)


@require_POST
@buyer_page
def request_preview(request: HttpRequest, actor: Actor, order_id: int) -> HttpResponse:
    """What the policy engine would decide for the lines, kind and reason chosen so far (htmx)."""
    order = _order_for(actor, order_id)
    lines = list(order.lines.all())
    chosen = _requested_lines(request, lines)
    kind = request.POST.get("kind", "")
    reason = selectors.reason_codes(actor).filter(code=request.POST.get("reason", "")).first()
    decision: dict[str, Any] = {}
    if chosen and kind in Kind.WITH_LINES and reason is not None:
        decision = policy_services.decide(
            store=store_of(actor), order=order, order_lines=lines,
            requested=[(c.order_line_id, c.quantity) for c in chosen], kind=kind,
            reason_category=reason.category, notice_at=clock.now(),
        )
    return render(request, "portal/preview.html", {"decision": decision, "ready": bool(decision)})


# --- following a case ------------------------------------------------------------------------

def _case_context(actor: Actor, case: Case) -> dict[str, Any]:
    path = list(MAIN_PATH.get(case.kind, []))
    # Waiting on the buyer's reply is a loop beside "in progress" (in_progress ⇄ waiting_on_customer), so it
    # takes that step's place while it lasts rather than hiding the whole road.
    if case.status in LOOP_STEPS and LOOP_STEPS[case.status] in path:
        path[path.index(LOOP_STEPS[case.status])] = case.status
    position = path.index(case.status) if case.status in path else -1
    steps = [{"status": s, "state": "done" if i < position else "now" if i == position else "todo"}
             for i, s in enumerate(path)]
    currency = case.order.currency if case.order else case.store.currency
    actions = services.allowed_actions(case, actor)
    return {
        **_return_panel(actor, case, actions),
        "case": case, "steps": steps, "on_path": position >= 0, "now_words": _now_in_words(case.status),
        "buyer_must_act": case.status in Status.WAITING_ON_BUYER,
        # Sending the goods back has its own panel (return methods); the rest are plain steps.
        "actions": [a for a in actions if a["action"] != "ship_return"],
        "case_lines": list(case.lines.filter(store_id=case.store_id).select_related("order_line").order_by("pk")),
        "timeline": list(selectors.case_timeline(actor, case).exclude(event__in=SHOP_ONLY_EVENTS)),
        "conversation": list(selectors.case_messages(actor, case)),
        "attachments": list(selectors.case_attachments(actor, case)),
        "decision": case.decision or {}, "currency": currency,
        "can_rate": case.status in FINISHED_FOR_RATING and case.rating is None,
        "max_bytes": settings.AFTERSALES_MAX_ATTACHMENT_BYTES,
        "sla": sla_view.buyer_promise(case),
    }


@buyer_page
def case_page(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    case = _case_for(actor, case_id)
    context = _case_context(actor, case)
    context.update(live.live_context(actor, case, live_url=reverse("portal:live", args=[case.pk]),
                                     timeline=context["timeline"], conversation=context["conversation"]))
    return render(request, "portal/case.html", context)


@buyer_page
def case_live(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    """What happened since the page was drawn (htmx polls it): public entries only, this case only."""
    case = _case_for(actor, case_id)
    return live.live_response(request, actor, case, live_url=reverse("portal:live", args=[case.pk]),
                              moved_template="portal/case_now.html", moved_context=lambda: _case_context(actor, case),
                              currency=case.order.currency if case.order else case.store.currency,
                              hidden_events=SHOP_ONLY_EVENTS, clock_templates=("portal/sla_promise.html",),
                              clock_context=lambda: {"sla": sla_view.buyer_promise(case)})


def _return_panel(actor: Actor, case: Case, actions: list[dict[str, Any]]) -> dict[str, Any]:
    """How the goods can come back: the store's methods, its return address, carriers and drop-off points."""
    if not any(a["action"] == "ship_return" for a in actions):
        return {"return_panel": False}
    try:
        address = logistics_services.return_address_for(actor=actor, case_id=case.pk)
    except DomainError:
        address = None
    return {
        "return_panel": True, "return_address": address,
        "return_methods": logistics_services.settings_for(case.store_id).return_methods,
        "carriers": sorted((code, fmt.name_zh) for code, fmt in carriers.CARRIERS.items()),
        "drop_off_points": list(logistics_selectors.drop_off_points(actor)),
    }


@require_POST
@buyer_page
def case_return(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    """Self-ship or drop-off with a tracking number, or a pickup (上门取件) booked for a time window."""
    case = _case_for(actor, case_id)
    method = request.POST.get("method", "self_ship")
    try:
        if method == "pickup":
            day = dt.date.fromisoformat(request.POST.get("pickup_date", ""))
            start = dt.time.fromisoformat(request.POST.get("pickup_start", ""))
            end = dt.time.fromisoformat(request.POST.get("pickup_end", ""))
            zone = timezone.get_current_timezone()
            logistics_services.book_pickup(
                actor=actor, case_id=case.pk, carrier=request.POST.get("carrier", ""),
                address=request.POST.get("address", ""), contact_name=request.POST.get("contact_name", ""),
                contact_phone=request.POST.get("contact_phone", ""),
                window_start=dt.datetime.combine(day, start, tzinfo=zone),
                window_end=dt.datetime.combine(day, end, tzinfo=zone),
            )
            messages.success(request, _("The pickup is booked."))
        else:
            point = request.POST.get("drop_off_point_id", "")
            logistics_services.ship_return(
                actor=actor, case_id=case.pk, carrier=request.POST.get("carrier", ""),
                tracking_number=request.POST.get("tracking_number", ""), method=method,
                drop_off_point_id=int(point) if point.isdigit() else None,
            )
            messages.success(request, _("Thank you, the return is on its way."))
    except ValueError:
        messages.error(request, _("Give the pickup day and the start and end of the time window."))
    except DomainError as error:
        messages.error(request, error_text(error))
    return redirect("portal:case", case_id=case.pk)


@require_POST
@buyer_page
def case_act(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    case = _case_for(actor, case_id)
    payload = {k: request.POST[k].strip() for k in ("carrier", "tracking_number") if request.POST.get(k, "").strip()}
    try:
        services.transition_case(actor=actor, case_id=case.pk, action=request.POST.get("action", ""),
                                 outcome=request.POST.get("outcome") or None, payload=payload)
    except DomainError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, _("Done."))
    return redirect("portal:case", case_id=case.pk)


@require_POST
@buyer_page
def case_message(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    case = _case_for(actor, case_id)
    services.post_message(actor=actor, case_id=case.pk, body=request.POST.get("body", ""))
    for upload in request.FILES.getlist("photos")[:MAX_PHOTOS]:
        services.add_attachment(actor=actor, case_id=case.pk, content=upload.read(), filename=upload.name or "photo")
    # The shop asked and the buyer answered: the reply hands the case back to the shop without a second click.
    case.refresh_from_db()
    if any(a["action"] == Action.CUSTOMER_REPLIED for a in services.allowed_actions(case, actor)):
        services.transition_case(actor=actor, case_id=case.pk, action=Action.CUSTOMER_REPLIED)
    messages.success(request, _("Message sent."))
    return redirect("portal:case", case_id=case.pk)


@require_POST
@buyer_page
def case_rate(request: HttpRequest, actor: Actor, case_id: int) -> HttpResponse:
    case = _case_for(actor, case_id)
    raw = request.POST.get("rating", "")
    services.rate_case(actor=actor, case_id=case.pk, rating=int(raw) if raw.isdigit() else 0,
                       comment=request.POST.get("comment", ""))
    messages.success(request, _("Thank you for your rating."))
    return redirect("portal:case", case_id=case.pk)


@buyer_page
def case_file(request: HttpRequest, actor: Actor, case_id: int, attachment_id: int) -> HttpResponseBase:
    case = _case_for(actor, case_id)
    return attachment_response(actor, case.pk, attachment_id)

