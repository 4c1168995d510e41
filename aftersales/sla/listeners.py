"""Reactions to case events, after the change commits: a new case is routed to an agent."""

from __future__ import annotations

from typing import Any

from aftersales.core import kicks
from aftersales.core.events import subscribe


def _route_new_case(event: str, payload: dict[str, Any]) -> None:
    from .tasks import route_case

    # Through the queue when there is one: routing takes locks on the rule and must not slow the request.
    kicks.send(route_case, payload["store_id"], payload["case_id"])


def connect() -> None:
    subscribe("case.created", _route_new_case)
