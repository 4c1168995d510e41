"""What the console and the portal share: who is asking, in which store, and how a refused request looks.

Pages never check permissions themselves: they turn the request into an Actor and call the same
selectors and services as the API, so a page cannot show or do more than the API would allow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from aftersales.core.errors import DomainError
from aftersales.stores.auth import actor_from_session
from aftersales.stores.models import Store
from aftersales.stores.permissions import Actor, buyer_actor

GUEST_SESSION_KEY = "guest_access"

View = Callable[..., HttpResponseBase]


def error_text(error: DomainError) -> str:
    """The error in the page's language where we know the code; the service's own words otherwise."""
    known = {
        "not_found": _("Not found, or not yours to see."),
        "permission_denied": _("You are not allowed to do this."),
        "action_not_allowed": _("This step is no longer possible: the case has moved on. The page shows where it is now."),
        "field_required": _("Please fill in every required field."),
        "invalid_amount": _("Enter a positive amount with at most two decimals."),
        "amount_exceeds_paid": _("The amount is more than was paid for these items."),
        "quantity_exceeds_available": _("The quantity is more than can still be claimed for this item."),
        "lines_required": _("Choose at least one item and a quantity."),
        "reason_required": _("Choose a reason."),
        "file_too_large": _("A file is too large."),
        "file_type_not_allowed": _("Only JPEG, PNG, WebP and PDF files are accepted."),
        "file_corrupt": _("A file is damaged and could not be read."),
        "file_empty": _("A file is empty."),
        "invalid_tracking_number": _("A tracking number may contain only letters, digits and dashes."),
        "invalid_assignee": _("That person is not a member of this store."),
        "not_finished": _("A request can be rated once it is finished."),
        "already_rated": _("You have already rated this request."),
        "platform_not_available": _("This store has no platform to escalate to."),
        "outcome_required": _("Choose an outcome."),
        "store_required": _("You belong to several stores: choose one."),
        "no_return_address": _("The shop has not set a return address yet; please contact the shop."),
        "return_method_not_offered": _("The shop does not offer this way of sending goods back."),
        "invalid_drop_off_point": _("Choose a drop-off point."),
        "tracking_number_in_use": _("This tracking number is already used for another parcel."),
        "already_shipped": _("A return parcel is already on its way for this request."),
        "unknown_carrier": _("Choose a carrier from the list."),
        "invalid_window": _("The pickup window must be in the future and at most 12 hours long."),
    }
    return known.get(error.code, error.message)


def store_of(actor: Actor) -> Store:
    return Store.objects.get(pk=actor.store_id)


def guest_actor(request: HttpRequest) -> Actor | None:
    grant = request.session.get(GUEST_SESSION_KEY)
    if not grant:
        return None
    actor = buyer_actor(store_id=grant["store_id"], buyer_id=grant["buyer_id"], label=grant["label"])
    return replace(actor, extra={"guest_order_id": str(grant["order_id"])})


def guest_order_id(actor: Actor) -> int | None:
    """A guest reached one order with a code; they see that order and its cases, nothing else."""
    raw = actor.extra.get("guest_order_id")
    return int(raw) if raw else None


def _with_store_time(request: HttpRequest, actor: Actor) -> None:
    # Dates and times on every page are in the store's zone, whoever is looking.
    store = store_of(actor)
    request.store = store  # type: ignore[attr-defined]
    timezone.activate(ZoneInfo(store.timezone))


def _handle(request: HttpRequest, error: DomainError) -> HttpResponse:
    if request.method == "POST":
        messages.error(request, error_text(error))
        return HttpResponseRedirect(request.META.get("HTTP_REFERER") or request.path)
    return render(request, "error.html", {"error": error, "error_message": error_text(error)}, status=error.status)


def staff_page(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        try:
            actor = actor_from_session(request)
        except DomainError:
            return redirect(f"/accounts/store/?next={request.path}")
        if actor is None or actor.kind != "staff":
            return render(request, "error.html", {"error_message": _("This page is for the store's staff.")}, status=403)
        _with_store_time(request, actor)
        try:
            return view(request, actor, *args, **kwargs)
        except DomainError as error:
            return _handle(request, error)
        finally:
            # The zone is per thread; the next request on this thread may be for another store.
            timezone.deactivate()
    return wrapper


def buyer_page(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        actor = guest_actor(request)
        if actor is None:
            if not request.user.is_authenticated:
                return redirect(f"/accounts/login/?next={request.path}")
            try:
                actor = actor_from_session(request)
            except DomainError:
                return redirect(f"/accounts/store/?next={request.path}")
            if actor is None or not actor.is_buyer:
                return render(request, "error.html", {"error_message": _("This page is for buyers.")}, status=403)
        _with_store_time(request, actor)
        try:
            return view(request, actor, *args, **kwargs)
        except DomainError as error:
            return _handle(request, error)
        finally:
            # The zone is per thread; the next request on this thread may be for another store.
            timezone.deactivate()
    return wrapper
