"""Reads of the SLA configuration and clocks. Every query names its store."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db.models import Count, Q

from aftersales.stores.models import Store

from . import calendars
from .models import BusinessCalendar, Closure, SlaClock, SlaPolicy, Target, TimeoutSetting

# Inside a sweep, each store's timeout settings are read once rather than on every case it moves; outside
# one, always fresh, so a change made by an admin applies to the very next request.
_settings_cache: ContextVar[dict[int, tuple[str, dict[str, int | None]]] | None] = ContextVar(
    "sla_timeout_settings", default=None)


@contextmanager
def timeout_settings_cached() -> Iterator[None]:
    token = _settings_cache.set({})
    try:
        yield
    finally:
        _settings_cache.reset(token)


def timeout_settings(*, store_id: int, platform_mode: str | None = None) -> tuple[str, dict[str, int | None]]:
    """The store's platform mode and its own timeout numbers (status -> minutes, None when off). A caller
    that holds the store passes its platform mode, which spares reading it again."""
    cache = _settings_cache.get()
    if cache is not None and store_id in cache:
        return cache[store_id]
    found = _read_timeout_settings(store_id, platform_mode)
    if cache is not None:
        cache[store_id] = found
    return found


def _read_timeout_settings(store_id: int, platform_mode: str | None) -> tuple[str, dict[str, int | None]]:
    if platform_mode is None:
        platform_mode = Store.objects.filter(pk=store_id).values_list("platform_mode", flat=True).first() or "none"
    rows = TimeoutSetting.objects.filter(store_id=store_id).values_list("status", "minutes", "enabled")
    return platform_mode, overrides_from(rows)


def calendar_for(*, store_id: int) -> calendars.Calendar:
    store_tz = Store.objects.filter(pk=store_id).values_list("timezone", flat=True).first() or "Asia/Shanghai"
    row = BusinessCalendar.objects.filter(store_id=store_id).first()
    closures = frozenset(Closure.objects.filter(store_id=store_id).values_list("date", flat=True))
    if row is None:
        jurisdiction = Store.objects.filter(pk=store_id).values_list("jurisdiction", flat=True).first() or "CN"
        # EU is not a country: such a store sets its own in its calendar, until then no public holidays.
        country = {"CN": "CN", "UK": "GB", "US": "US"}.get(jurisdiction, "")
        return calendars.Calendar(timezone=store_tz, country=country, closures=closures)
    return calendars.Calendar(
        timezone=row.timezone or store_tz, hours=calendars.parse_hours(row.hours), country=row.holiday_country,
        subdivision=row.holiday_subdivision, closures=closures,
    )


def matching_policy(*, store_id: int, kind: str, priority: int, channel: str, buyer_tier: str) -> SlaPolicy | None:
    policies = SlaPolicy.objects.filter(store_id=store_id, active=True).order_by("position", "id")
    return first_matching(list(policies), kind=kind, priority=priority, channel=channel, buyer_tier=buyer_tier)


def first_matching(policies: Sequence[SlaPolicy], *, kind: str, priority: int, channel: str,
                   buyer_tier: str) -> SlaPolicy | None:
    """The first of a store's active policies (in position order) whose conditions all hold; an empty
    condition holds for anything. A store has a handful, so they are read whole and matched here."""
    for policy in policies:
        if ((policy.kind in ("", kind)) and (policy.priority is None or policy.priority == priority)
                and (policy.channel in ("", channel)) and (policy.buyer_tier in ("", buyer_tier))):
            return policy
    return None


def overrides_from(rows: Iterable[tuple[str, int, bool]]) -> dict[str, int | None]:
    """A store's timeout settings as (status, minutes, enabled) rows -> status: minutes, None when off."""
    return {status: (minutes if enabled else None) for status, minutes, enabled in rows}


def clock_state(clock: SlaClock, now: dt.datetime, calendar: calendars.Calendar) -> dict[str, Any]:
    """What a person needs to see about one clock: its state, when it is due and how long is left."""
    consumed = clock.consumed_seconds
    if clock.running_since is not None and clock.stopped_at is None:
        consumed += calendars.elapsed(calendar, clock.running_since, now, business=clock.business_time)
    if clock.met_at is not None:
        state = "met_late" if clock.breached_at else "met"
    elif clock.stopped_at is not None:
        state = "stopped"
    elif clock.breached_at is not None or consumed >= clock.budget_seconds:
        state = "breached"
    elif clock.running_since is None:
        state = "paused"
    elif consumed >= clock.warn_seconds:
        state = "warning"
    else:
        state = "running"
    return {
        "target": clock.target,
        "state": state,
        "business_time": clock.business_time,
        "started_at": clock.started_at,
        "due_at": clock.due_at,
        "remaining_seconds": int(clock.budget_seconds - consumed) if clock.stopped_at is None else None,
        "budget_seconds": clock.budget_seconds,
        "consumed_seconds": int(consumed),
        "breached_at": clock.breached_at,
        "breach_assignee_id": clock.breach_assignee_id,
        "met_at": clock.met_at,
    }


def case_clocks(*, store_id: int, case_id: int) -> list[SlaClock]:
    return list(SlaClock.objects.filter(store_id=store_id, case_id=case_id).order_by("started_at", "id"))


def live_clocks(*, store_id: int, case_ids: list[int]) -> dict[int, list[SlaClock]]:
    """The clocks still counting (not stopped) of many cases, for a page of a queue: one query."""
    found: dict[int, list[SlaClock]] = defaultdict(list)
    for row in (SlaClock.objects.filter(store_id=store_id, case_id__in=case_ids, stopped_at__isnull=True)
                .order_by("case_id", "started_at", "id")):
        found[row.case_id].append(row)
    return dict(found)


def report(*, store_id: int, since: dt.datetime | None = None, until: dt.datetime | None = None) -> dict[str, Any]:
    """Met and breached clocks per target, per agent (the owner at breach, or who met it) and per kind."""
    clocks = SlaClock.objects.filter(store_id=store_id)
    if since is not None:
        clocks = clocks.filter(started_at__gte=since)
    if until is not None:
        clocks = clocks.filter(started_at__lt=until)
    outcome = {
        "met": Count("id", filter=Q(met_at__isnull=False, breached_at__isnull=True)),
        "breached": Count("id", filter=Q(breached_at__isnull=False)),
        "open": Count("id", filter=Q(met_at__isnull=True, breached_at__isnull=True, stopped_at__isnull=True)),
    }
    names = list(outcome)
    by_target: dict[str, dict[str, int]] = {}
    for target, *counts in clocks.values_list("target").annotate(**outcome).order_by("target"):
        by_target[target] = dict(zip(names, counts, strict=True))
    by_kind: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for kind, target, *counts in (clocks.values_list("case__kind", "target").annotate(**outcome)
                                  .order_by("case__kind", "target")):
        by_kind[kind][target] = dict(zip(names, counts, strict=True))
    by_agent: dict[str, dict[str, int]] = defaultdict(lambda: {"met": 0, "breached": 0})
    for user_id, count in (clocks.filter(met_at__isnull=False, breached_at__isnull=True)
                           .values_list("met_by_id").annotate(n=Count("id")).order_by()):
        by_agent[str(user_id) if user_id else "unassigned"]["met"] += count
    for user_id, count in (clocks.filter(breached_at__isnull=False)
                           .values_list("breach_assignee_id").annotate(n=Count("id")).order_by()):
        by_agent[str(user_id) if user_id else "unassigned"]["breached"] += count
    empty = {"met": 0, "breached": 0, "open": 0}
    return {
        "by_target": {target: by_target.get(target, dict(empty)) for target in Target.values},
        "by_kind": dict(by_kind),
        "by_agent": dict(by_agent),
    }
