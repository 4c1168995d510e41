"""Domain events, published after the transaction that caused them commits.

Listeners (notifications, webhooks, SLA) register here instead of being called from the services,
so the cases app does not import every app that cares about cases, and nothing is announced for a
change that rolled back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
_listeners: dict[str, list[Listener]] = defaultdict(list)


def subscribe(event: str, listener: Listener) -> None:
    """`event` is a name such as "case.transitioned", or "*" for every event."""
    if listener not in _listeners[event]:
        _listeners[event].append(listener)


def unsubscribe(event: str, listener: Listener) -> None:
    if listener in _listeners[event]:
        _listeners[event].remove(listener)


def _deliver(event: str, payload: dict[str, Any]) -> None:
    for listener in [*_listeners.get(event, []), *_listeners.get("*", [])]:
        try:
            listener(event, payload)
        except Exception:  # a listener's failure must not undo or block the change that already committed
            logger.exception("event listener failed", extra={"event": event})


def publish_on_commit(event: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _deliver(event, payload))
