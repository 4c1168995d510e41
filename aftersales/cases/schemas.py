"""The shapes of the case API. Unknown fields are refused, so a typo never passes silently."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from .states import Action, Kind

KindName = Literal["return_refund", "refund_only", "exchange", "repair", "complaint", "inquiry"]
ChannelName = Literal["web", "api", "email", "chat", "phone", "platform"]
ActionName = Literal[
    "submit", "approve", "reject", "counter_offer", "accept_offer", "decline_offer", "ship_return", "mark_received",
    "start_inspection", "record_inspection", "refund", "reship", "start_diagnosis", "diagnose", "quote",
    "accept_quote", "decline_quote", "mark_repaired", "ship_back", "convert", "escalate", "arbitrate", "cancel",
    "expire", "acknowledge", "start_progress", "wait_on_customer", "customer_replied", "resolve", "reopen", "close",
]
# The literals above are for the OpenAPI document; these keep them in step with the tables.
assert set(Kind.ALL) == set(KindName.__args__)  # type: ignore[attr-defined]
assert {v for k, v in vars(Action).items() if k.isupper()} == set(ActionName.__args__)  # type: ignore[attr-defined]


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid")


class CaseLineIn(StrictSchema):
    order_line_id: int
    quantity: int = Field(ge=1, le=100_000)


class CaseCreateIn(StrictSchema):
    kind: KindName
    order_id: int | None = None
    buyer_id: int | None = None
    lines: list[CaseLineIn] = Field(default_factory=list, max_length=200)
    reason: str | None = Field(default=None, max_length=40)
    subject: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=10_000)
    channel: ChannelName = "api"
    priority: int = Field(default=2, ge=1, le=4)
    requested_amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)


class CaseLineOut(Schema):
    order_line_id: int
    sku: str
    name: str
    quantity: int


class AllowedAction(Schema):
    action: str
    outcomes: list[str]


class CaseOut(Schema):
    id: int
    number: str
    kind: str
    status: str
    order_id: int | None
    buyer_id: int
    reason: str | None
    channel: str
    priority: int
    subject: str
    assignee_id: int | None
    requested_amount: Decimal | None
    offer_amount: Decimal | None
    refund_amount: Decimal | None
    deadline_at: dt.datetime | None
    deadline_rule: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CaseDetailOut(CaseOut):
    description: str
    lines: list[CaseLineOut]
    allowed_actions: list[AllowedAction]
    decision: dict[str, Any] | None
    return_carrier: str
    return_tracking_number: str
    reship_carrier: str
    reship_tracking_number: str
    rejection_reason: str
    quote_amount: Decimal | None
    rating: int | None


class CasePage(Schema):
    items: list[CaseOut]
    next_cursor: str | None


class ActionIn(StrictSchema):
    outcome: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=2000)
    amount: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)
    message: str | None = Field(default=None, max_length=2000)
    carrier: str | None = Field(default=None, max_length=40)
    tracking_number: str | None = Field(default=None, max_length=64)
    diagnosis: str | None = Field(default=None, max_length=2000)
    notes: str | None = Field(default=None, max_length=2000)
    grade: str | None = Field(default=None, max_length=20)
    note: str | None = Field(default=None, max_length=2000)


class TimelineOut(Schema):
    id: int
    at: dt.datetime
    event: str
    from_status: str
    to_status: str
    actor_kind: str
    actor_label: str
    data: dict[str, Any]


class MessageIn(StrictSchema):
    body: str = Field(min_length=1, max_length=10_000)
    visibility: Literal["public", "internal"] = "public"


class MessageOut(Schema):
    id: int
    visibility: str
    author_kind: str
    author_label: str
    body: str
    created_at: dt.datetime


class AttachmentOut(Schema):
    id: int
    original_name: str
    content_type: str
    size: int
    sha256: str
    created_at: dt.datetime


class AssignIn(StrictSchema):
    assignee_id: int | None


class PriorityIn(StrictSchema):
    priority: int = Field(ge=1, le=4)


class RatingIn(StrictSchema):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


class ReasonCodeOut(Schema):
    code: str
    category: str
    label_zh: str
    label_en: str
    requires_evidence: bool
