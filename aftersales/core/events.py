"""Domain events.

Listeners (notifications, webhooks, SLA) register here instead of being called from the services,
so the cases app does not import every app that cares about cases.

There are two kinds of listener:

- after-commit listeners (`subscribe`) run once the transaction that caused the event has committed,
  so nothing is announced for a change that rolled back; their failures are logged, never raised,
  because the change is already done;
- in-transaction listeners (`subscribe_in_transaction`) run at once, inside the caller's transaction.
  They are for writes that must commit or roll back together with the change, such as the
  notifications outbox row. A failing one raises, and the change rolls back with it: an event that
  cannot be recorded must not be silently lost.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .bulk_writes import after_commit

logger = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
_listeners: dict[str, list[Listener]] = defaultdict(list)
_in_transaction: dict[str, list[Listener]] = defaultdict(list)


def subscribe(event: str, listener: Listener) -> None:
    """`event` is a name such as "case.transitioned", or "*" for every event."""
    if listener not in _listeners[event]:
        _listeners[event].append(listener)


def unsubscribe(event: str, listener: Listener) -> None:
    if listener in _listeners[event]:
        _listeners[event].remove(listener)


def subscribe_in_transaction(event: str, listener: Listener) -> None:
    if listener not in _in_transaction[event]:
        _in_transaction[event].append(listener)


def unsubscribe_in_transaction(event: str, listener: Listener) -> None:
    if listener in _in_transaction[event]:
        _in_transaction[event].remove(listener)


def _deliver(event: str, payload: dict[str, Any]) -> None:
    for listener in [*_listeners.get(event, []), *_listeners.get("*", [])]:
        try:
            listener(event, payload)
        except Exception:  # a listener's failure must not undo or block the change that already committed
            logger.exception("event listener failed", extra={"event": event})


def publish(event: str, payload: dict[str, Any]) -> None:
    """Announces an event from inside the transaction that caused it: in-transaction listeners run now,
    the others after the commit (or never, if it rolls back)."""
    for listener in [*_in_transaction.get(event, []), *_in_transaction.get("*", [])]:
        listener(event, payload)
    after_commit(lambda: _deliver(event, payload))


# The older name. Callers of it get the in-transaction listeners too, so an event they publish reaches
# the outbox in the same transaction as their change.
publish_on_commit = publish


def publish_many(event: str, payloads: list[dict[str, Any]]) -> None:
    """Announces many events of one name from one transaction (a sweep moving thousands of cases), as
    `publish` would one by one. An in-transaction listener that carries a `many` attribute (a callable
    taking the event and the list) is called once with all of them, so it can write them in one
    statement; the others are called per payload. After-commit listeners get each payload."""
    if not payloads:
        return
    for listener in [*_in_transaction.get(event, []), *_in_transaction.get("*", [])]:
        many = getattr(listener, "many", None)
        if many is not None:
            many(event, payloads)
        else:
            for payload in payloads:
                listener(event, payload)

    def deliver_all() -> None:
        for payload in payloads:
            _deliver(event, payload)

    after_commit(deliver_all)
