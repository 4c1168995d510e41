"""Live case pages without a reload: the page polls (htmx) with a cursor, the last timeline entry and
message it has, and gets back only what came after, out of band, or 204 when nothing did.

Polling rather than server-sent events: it needs no long-lived connection per open page, works behind
any proxy and through the same views, permissions and selectors as the page itself, so a poll can
never show more than the page would (a buyer never sees internal notes, nobody sees another store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from aftersales.cases import selectors
from aftersales.cases.models import Case
from aftersales.core.errors import ValidationFailed
from aftersales.stores.permissions import Actor


def poll_seconds() -> int:
    return int(getattr(settings, "AFTERSALES_LIVE_POLL_SECONDS", 5))


def live_context(actor: Actor, case: Case, *, live_url: str, timeline: list[Any],
                 conversation: list[Any]) -> dict[str, Any]:
    """What the page needs to start polling: the cursor after what it shows now."""
    cursor = {"timeline": max((e.pk for e in timeline), default=0),
              "messages": max((m.pk for m in conversation), default=0)}
    return {"live_url": live_url, "cursor": cursor, "poll_seconds": poll_seconds()}


def _position(request: HttpRequest, name: str) -> int:
    raw = request.GET.get(name, "0")
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailed(f"{name} must be the id of the last {name} entry shown", field=name,
                               code="invalid_cursor")
    return int(raw)


def live_response(request: HttpRequest, actor: Actor, case: Case, *, live_url: str, moved_template: str,
                  moved_context: Callable[[], dict[str, Any]], currency: str,
                  hidden_events: frozenset[str] = frozenset(), clock_templates: Sequence[str] = (),
                  clock_context: Callable[[], dict[str, Any]] | None = None) -> HttpResponse:
    """`moved_template` is drawn again when the status moved; `clock_templates` (the SLA clocks) whenever
    anything happened, since a reply or a move can meet, pause or restart a clock."""
    after_timeline, after_messages = _position(request, "timeline"), _position(request, "messages")
    # The same selectors as the page: the buyer's leave out internal notes and internal messages, and the
    # page's own filter (`hidden_events`) applies here too.
    timeline = list(selectors.case_timeline(actor, case).filter(pk__gt=after_timeline)
                    .exclude(event__in=hidden_events))
    conversation = list(selectors.case_messages(actor, case).filter(pk__gt=after_messages))
    moved = request.GET.get("status", "") != case.status
    if not (timeline or conversation or moved):
        return HttpResponse(status=204)  # htmx swaps nothing and keeps polling with the same cursor
    cursor = {"timeline": max([after_timeline, *(e.pk for e in timeline)]),
              "messages": max([after_messages, *(m.pk for m in conversation)])}
    # The section whose steps depend on the status is drawn again when the case moved; its context may
    # carry the page's full timeline and conversation, which the new entries below replace.
    context: dict[str, Any] = moved_context() if moved else {}
    if clock_context is not None and (timeline or moved):
        context.update(clock_context())
    context.update({
        "case": case, "timeline": timeline, "conversation": conversation, "moved": moved,
        "moved_template": moved_template, "clock_templates": clock_templates if timeline or moved else (),
        "live_url": live_url, "cursor": cursor, "poll_seconds": poll_seconds(),
        "currency": currency,
    })
    return render(request, "partials/live.html", context)
