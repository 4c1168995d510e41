"""What the cases app does when other apps announce something (see aftersales.core.events)."""

from __future__ import annotations

from typing import Any

from . import services


def on_orders_updated(event: str, payload: dict[str, Any]) -> None:
    # Re-sent orders may bring the facts a decision was missing (a signature, a payment split).
    services.refresh_decisions_for_orders(store_id=payload["store_id"], order_ids=payload["order_ids"])
