from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import ConfigDict, Field


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


class ScanIn(_In):
    code: str = Field(max_length=64)


class ScanOut(Schema):
    case_id: int
    number: str
    status: str
    checklist: list[str]


class InspectionForm(Schema):
    checklist: str = Field(description='JSON object: check name → true (passed) or false, e.g. {"complete": true}')
    grade: str = Field(max_length=1)
    notes: str = ""


class InspectionOut(Schema):
    id: int
    case_id: int
    result: str
    checklist: dict[str, bool]
    failed_checks: list[str]
    grade: str
    notes: str
    photo_ids: list[int]
    inspector: str
    inspected_at: dt.datetime


class DispositionLineIn(_In):
    case_line_id: int
    disposition: str


class DispositionsIn(_In):
    lines: list[DispositionLineIn]
    warehouse_code: str = Field("", max_length=20)


class DispositionOut(Schema):
    case_line_id: int
    sku: str
    quantity: int
    disposition: str


class StockSetIn(_In):
    warehouse_id: int
    sku: str = Field(min_length=1, max_length=64)
    on_hand: int = Field(ge=0)
    reason: str = Field("", max_length=200)


class StockAdjustIn(_In):
    warehouse_id: int
    sku: str = Field(min_length=1, max_length=64)
    delta: int
    reason: str = Field(min_length=1, max_length=200)


class StockOut(Schema):
    warehouse_id: int
    warehouse_code: str
    sku: str
    on_hand: int
    reserved: int
    available: int
    updated_at: dt.datetime


class MovementOut(Schema):
    kind: str
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int
    case_id: int | None
    reason: str
    actor: str
    at: dt.datetime
