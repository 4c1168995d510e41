from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


class ShipReturnIn(_In):
    carrier: str = Field(max_length=20)
    tracking_number: str = Field(max_length=40)
    method: str = "self_ship"
    drop_off_point_id: int | None = None
    province: str = Field("", max_length=30)


class PickupIn(_In):
    carrier: str = Field(max_length=20)
    address: str = Field(max_length=255)
    contact_name: str = Field(max_length=60)
    contact_phone: str = Field(max_length=32)
    window_start: dt.datetime
    window_end: dt.datetime
    province: str = Field("", max_length=30)


class CollectedIn(_In):
    tracking_number: str = Field(max_length=40)


class TrackingEventOut(Schema):
    at: dt.datetime
    status: str
    description: str
    location: str


class ShipmentOut(Schema):
    id: int
    case_id: int
    direction: str
    purpose: str
    method: str
    status: str
    carrier: str
    tracking_number: str
    warehouse_id: int | None
    drop_off_point_id: int | None
    pickup_address: str
    pickup_window_start: dt.datetime | None
    pickup_window_end: dt.datetime | None
    booking_reference: str
    delivered_at: dt.datetime | None
    events: list[TrackingEventOut] = []


class AddressOut(Schema):
    warehouse_id: int
    name: str
    recipient: str
    phone: str
    address: str
    postcode: str


class DropOffPointOut(Schema):
    id: int
    name: str
    address: str
    carrier: str
    opening_hours: str


class ReplacementIn(_In):
    order_line_id: int
    sku: str = Field(max_length=64)


class ReshipIn(_In):
    carrier: str = Field(max_length=20)
    tracking_number: str = Field(max_length=40)


class ExchangeOut(Schema):
    id: int
    case_id: int
    order_line_id: int
    quantity: int
    replacement_sku: str
    replacement_name: str
    original_unit_price: Decimal
    replacement_unit_price: Decimal
    price_difference: Decimal
    settlement: str
    # The difference's charge (dearer) or refund (cheaper): requested, processing, succeeded, failed; ""
    # before it is asked for or when the prices are the same.
    settlement_status: str
    status: str
    shipment_id: int | None

    @staticmethod
    def resolve_settlement_status(obj: Any) -> str:
        from aftersales.refunds.selectors import exchange_settlement_status

        return exchange_settlement_status(obj.store_id, obj.pk)


class PushAccepted(Schema):
    result: bool
    returnCode: str
    message: str
    new_events: int
