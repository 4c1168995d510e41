"""The shapes of the case API. Unknown fields are refused, so a typo never passes silently."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ninja import Schema
from pydantic import AwareDatetime, Field

from aftersales.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from aftersales.core.schemas import StrictSchema

from .states import Action, Kind, Status

ChannelName = Literal["web", "api", "email", "chat", "phone", "platform"]
if TYPE_CHECKING:
    KindName: TypeAlias = str
    ActionName: TypeAlias = str
    StatusName: TypeAlias = str
else:
    # Enumerations for the OpenAPI document, built from the transition tables so they never fall behind.
    KindName = Literal[Kind.ALL]
    ActionName = Literal[tuple(value for name, value in vars(Action).items() if name.isupper())]
    StatusName = Literal[tuple(Status.LABELS)]


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


class CaseFilters(Schema):
    status: StatusName | None = None
    kind: KindName | None = None
    assignee_id: int | None = None
    unassigned: bool = Field(default=False, description="only cases nobody is assigned to (not with assignee_id)")
    order_id: int | None = None
    buyer_id: int | None = None
    created_after: AwareDatetime | None = Field(default=None, description="inclusive, with a time zone")
    created_before: AwareDatetime | None = Field(default=None, description="exclusive, with a time zone")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page (invalid_cursor if not)")
    # The range is enforced by the paginator, which answers invalid_limit; here it is only documented.
    limit: int = Field(default=DEFAULT_PAGE_SIZE, json_schema_extra={"minimum": 1, "maximum": MAX_PAGE_SIZE})


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
