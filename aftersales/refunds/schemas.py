"""The shapes of the refunds API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Schema
from pydantic import Field

from aftersales.core.schemas import ERROR_RESPONSES, IDEMPOTENT, StrictSchema

__all__ = ["ERROR_RESPONSES", "IDEMPOTENT", "CancelIn", "ChargeOut", "ConsentIn", "ReconcileIn", "RefundIn",
           "RefundOut", "ReportOut", "ShippingRefundIn"]


class RefundIn(StrictSchema):
    # Omitted: what was agreed for the case (offer, request or decision), less what was already refunded.
    amount: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    to_store_credit: bool = False
    # False leaves the case refunding for a further step (a refund in several steps).
    final: bool = True


class ShippingRefundIn(StrictSchema):
    leg: str = Field(description="return (the buyer's postage back, per case) or outbound (the order's shipping fee)")
    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)


class CancelIn(StrictSchema):
    reason: str = Field("", max_length=500)


class ConsentIn(StrictSchema):
    wording: str = Field(min_length=1, max_length=2000)


class ReconcileIn(StrictSchema):
    day: dt.date


class AttemptOut(Schema):
    number: int
    idempotency_key: str
    status: str
    gateway_reference: str
    error: str
    created_at: dt.datetime
    finished_at: dt.datetime | None


class ItemOut(Schema):
    id: int
    order_line_id: int | None
    method: str
    amount: Decimal
    status: str
    gateway: str
    gateway_reference: str
    failure_reason: str
    succeeded_at: dt.datetime | None
    cancelled_by: str
    cancelled_at: dt.datetime | None
    attempts: list[AttemptOut]


class RefundOut(Schema):
    id: int
    case_id: int
    number: int
    amount: Decimal
    currency: str
    status: str
    to_store_credit: bool
    final: bool
    split_basis: str
    purpose: str
    exchange_id: int | None
    due_at: dt.datetime | None
    due_rule: str
    overdue: bool
    requested_by: str
    requested_at: dt.datetime
    approved_by: str
    approved_at: dt.datetime | None
    completed_at: dt.datetime | None
    items: list[ItemOut]


class ReportOut(Schema):
    day: dt.date
    gateway: str
    created_at: dt.datetime
    matched: int
    mismatches: list[dict[str, Any]]


class PaybackOut(Schema):
    """A charged difference paid back to the buyer because its exchange was given up."""

    id: int
    amount: Decimal
    currency: str
    status: str
    gateway: str
    gateway_reference: str
    failure_reason: str
    reason: str
    requested_at: dt.datetime
    succeeded_at: dt.datetime | None
    attempts: list[AttemptOut]


class ChargeOut(Schema):
    id: int
    case_id: int
    exchange_id: int
    method: str
    amount: Decimal
    currency: str
    status: str
    gateway: str
    gateway_reference: str
    failure_reason: str
    requested_at: dt.datetime
    succeeded_at: dt.datetime | None
    abandoned_at: dt.datetime | None
    refunded: Decimal
    attempts: list[AttemptOut]
    payback: PaybackOut | None
