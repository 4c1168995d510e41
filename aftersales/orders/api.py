"""HTTP endpoints for the orders mirror."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["orders"])
