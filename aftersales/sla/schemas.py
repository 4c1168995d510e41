from __future__ import annotations

import datetime as dt

from ninja import Schema


class ClockOut(Schema):
    target: str
    state: str  # running, warning, paused, breached, met, met_late, stopped
    business_time: bool
    started_at: dt.datetime
    due_at: dt.datetime | None
    remaining_seconds: int | None
    budget_seconds: int
    consumed_seconds: int
    breached_at: dt.datetime | None
    breach_assignee_id: int | None
    met_at: dt.datetime | None


class CaseSlaOut(Schema):
    case_id: int
    status: str
    paused: bool  # the case waits on the buyer: the shop's clocks stand still
    deadline_at: dt.datetime | None  # what happens on its own if nobody acts, and when
    deadline_rule: str
    deadline_seconds_left: int | None
    clocks: list[ClockOut]


class Outcome(Schema):
    met: int
    breached: int
    open: int = 0


class AgentOutcome(Schema):
    met: int
    breached: int


class SlaReportOut(Schema):
    store_id: int
    since: dt.datetime | None
    until: dt.datetime | None
    by_target: dict[str, Outcome]
    by_kind: dict[str, dict[str, Outcome]]
    by_agent: dict[str, AgentOutcome]
