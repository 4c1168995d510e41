"""Every domain event worth telling becomes an outbox row in the transaction that caused it."""

from __future__ import annotations

from aftersales.core import events


def connect() -> None:
    from .services import on_domain_event

    events.subscribe_in_transaction("*", on_domain_event)
