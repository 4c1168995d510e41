"""SLA on the pages: the clock that matters now on each case, in words and colours, and the store's SLA
report drawn as a chart. Reads only the SLA selectors; nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from aftersales.cases.models import Case
from aftersales.cases.states import Kind, Status
from aftersales.core import clock
from aftersales.sla import selectors as sla_selectors
from aftersales.sla.models import SlaClock, Target

# Clocks still counting against the shop, most urgent state first.
LIVE_STATES = ("breached", "warning", "running", "paused")
RESPONSE_TARGETS = frozenset({Target.FIRST_RESPONSE, Target.NEXT_RESPONSE})


def _view(state: Mapping[str, Any]) -> dict[str, Any]:
    return {**state, "label": str(Target(state["target"]).label) if state["target"] in Target.values
            else state["target"]}


def _current(views: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The clock to show on a case in one line: the most urgent live one, the soonest due among equals."""
    live = [v for v in views if v["state"] in LIVE_STATES]
    if not live:
        return None
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return min(live, key=lambda v: (LIVE_STATES.index(v["state"]), v["due_at"] or far))


def case_clocks(case: Case) -> dict[str, Any]:
    """Every clock of the case (met ones too) and the one that matters now."""
    now = clock.now()
    calendar = sla_selectors.calendar_for(store_id=case.store_id)
    views = [_view(sla_selectors.clock_state(c, now, calendar))
             for c in sla_selectors.case_clocks(store_id=case.store_id, case_id=case.pk)]
    return {"clocks": views, "current": _current(views)}


def _row_state(row: SlaClock, now: dt.datetime) -> dict[str, Any]:
    """A live clock's state from the moments the SLA service keeps on it (while it runs, `warn_at` and
    `due_at` are when it warns and breaches), without walking the business calendar: the same answer
    as `clock_state` for a running clock, at a fixed cost per row of a queue."""
    if row.met_at is not None:
        state = "met_late" if row.breached_at else "met"
    elif row.breached_at is not None or (row.running_since is not None and row.due_at is not None
                                         and row.due_at <= now):
        state = "breached"
    elif row.running_since is None:
        state = "paused"
    elif row.warned_at is not None or (row.warn_at is not None and row.warn_at <= now):
        state = "warning"
    else:
        state = "running"
    return _view({"target": row.target, "state": state, "due_at": row.due_at, "business_time": row.business_time})


def attach_to_rows(store_id: int, cases: list[Case]) -> None:
    """Sets `case.sla` (the clock that matters now, or None) on a page of cases: one query for the clocks."""
    if not cases:
        return
    now = clock.now()
    clocks = sla_selectors.live_clocks(store_id=store_id, case_ids=[c.pk for c in cases])
    for case in cases:
        case.sla = _current(_row_state(c, now) for c in clocks.get(case.pk, []))  # type: ignore[attr-defined]


def buyer_promise(case: Case) -> dict[str, Any] | None:
    """"The shop must answer by …": the shop's live clock the buyer can hold it to. Nothing while the case
    waits on the buyer (the clock stands still) or once the shop has answered within its promise."""
    if case.status in Status.WAITING_ON_BUYER:
        return None
    current = case_clocks(case)["current"]
    if current is None or current["state"] == "paused" or current["due_at"] is None:
        return None
    return {**current, "answer": current["target"] in RESPONSE_TARGETS}


# ----------------------------------------------------------------------------------------------- report

BAR_AREA = 420  # px of the widest bar
LABEL_WIDTH = 170
ROW_HEIGHT = 30
SERIES = (("met", "#1a7f37"), ("breached", "#cf222e"), ("open", "#8c959f"))


def _bars(rows: Sequence[tuple[str, Mapping[str, int]]]) -> dict[str, Any]:
    """Stacked horizontal bars (met, breached, open) for one group, scaled to the group's largest row."""
    widest = max([sum(counts.get(k, 0) for k, _c in SERIES) for _label, counts in rows] + [1])
    drawn = []
    for index, (label, counts) in enumerate(rows):
        x = float(LABEL_WIDTH)
        segments = []
        for key, colour in SERIES:
            value = counts.get(key, 0)
            width = round(BAR_AREA * value / widest, 1)
            if value:
                segments.append({"key": key, "value": value, "x": x, "width": max(width, 2), "colour": colour})
            x += width
        met, breached = counts.get("met", 0), counts.get("breached", 0)
        share = round(100 * met / (met + breached)) if met + breached else None
        drawn.append({"label": label, "y": index * ROW_HEIGHT, "segments": segments, "end": x + 6,
                      "total": sum(counts.get(k, 0) for k, _c in SERIES), "met_share": share, **counts})
    return {"rows": drawn, "height": max(len(rows), 1) * ROW_HEIGHT, "width": LABEL_WIDTH + BAR_AREA + 200}


def report_charts(report: Mapping[str, Any], agent_names: Mapping[int, str]) -> list[dict[str, Any]]:
    """The report's three views (per target, per kind, per agent) as charts with their numbers."""
    by_target = [(str(Target(t).label), counts) for t, counts in report["by_target"].items()]
    by_kind = []
    for kind, targets in sorted(report["by_kind"].items()):
        total = {key: sum(c.get(key, 0) for c in targets.values()) for key, _c in SERIES}
        zh, en = Kind.LABELS.get(kind, (kind, kind))
        by_kind.append((_kind_label(zh, en), total))
    by_agent = []
    for key, counts in report["by_agent"].items():
        name = _("Unassigned") if key == "unassigned" else agent_names.get(int(key), f"#{key}")
        by_agent.append((name, counts))
    by_agent.sort(key=lambda row: (-row[1].get("breached", 0), row[0]))
    return [
        {"id": "target", "title": _("Per target"), **_bars(by_target)},
        {"id": "kind", "title": _("Per kind of request"), **_bars(by_kind)},
        {"id": "agent", "title": _("Per agent (who met it, or who owned the case at the breach)"),
         **_bars(by_agent[:30])},
    ]


def _kind_label(zh: str, en: str) -> str:
    return zh if (get_language() or "").lower().startswith("zh") else en
