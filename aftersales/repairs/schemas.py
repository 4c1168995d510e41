from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ninja import Schema
from pydantic import ConfigDict, Field


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


class ServiceCentreIn(_In):
    name: str = Field(max_length=120)
    kind: str
    address: str = Field("", max_length=255)
    phone: str = Field("", max_length=32)


class ServiceCentreOut(Schema):
    id: int
    name: str
    kind: str
    address: str
    phone: str


class RepairOrderIn(_In):
    service_centre_id: int
    fault_code: str = Field(max_length=40)


class PartIn(_In):
    name: str = Field(max_length=120)
    sku: str = Field("", max_length=64)
    quantity: int = 1
    unit_price: Decimal = Decimal("0")


class DiagnosisIn(_In):
    diagnosis: str = Field(max_length=5000)
    covered: bool
    parts: list[PartIn] = []
    labour_amount: Decimal = Decimal("0")


class QuoteAnswerIn(_In):
    accept: bool


class ResultIn(_In):
    success: bool
    note: str = Field("", max_length=2000)


class ConvertIn(_In):
    to: str


class ShipBackIn(_In):
    carrier: str = Field(max_length=20)
    tracking_number: str = Field(max_length=40)


class RepairOrderOut(Schema):
    id: int
    case_id: int
    order_line_id: int
    service_centre_id: int
    attempt: int
    fault_code: str
    diagnosis: str
    covered: bool | None
    parts: list[dict[str, object]]
    parts_amount: Decimal
    labour_amount: Decimal
    quote_amount: Decimal | None
    quote_status: str
    outcome: str
    started_on: dt.date | None
    finished_on: dt.date | None
    repair_days: int | None
