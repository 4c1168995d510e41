"""Request and response shapes of the policy API, for validation and the OpenAPI document.

Only the HTTP edge uses pydantic; the engine itself runs on frozen dataclasses. The handler turns a
validated body back into JSON and hands it to `facts_from_dict`, so the API and the CLI share one
parser and one set of error messages.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from aftersales.policies.facts import (
    Category,
    Confirmation,
    FeeBearer,
    Jurisdiction,
    PaymentMethod,
    PlatformMode,
    Reason,
    RequestKind,
)


class StrictSchema(Schema):
    # A misspelt field ("singed_at") would silently change a decision; refuse it instead.
    model_config = ConfigDict(extra="forbid")


class SanbaoCatalogueIn(StrictSchema):
    code: str
    warranty_months: int = Field(ge=0)
    daily_depreciation_rate: Decimal = Field(ge=0, description="Fraction per day: 0.1 %/day is 0.001.")


class OrderLineIn(StrictSchema):
    line_id: str
    sku: str
    category: Category
    quantity: int = Field(gt=0)
    unit_price: Decimal
    discount_allocated: Decimal | None = Field(None, description="Line-level discount for the whole line.")
    is_gift: bool | None = None
    gift_declared_value: Decimal | None = Field(None, description="Gift value stated at sale (S3 Art 12(2)).")
    gift_for_line: str | None = None
    customised: bool | None = None
    perishable: bool | None = None
    digital_download: bool | None = None
    sealed_media: bool | None = None
    periodical: bool | None = None
    hygiene_sensitive: bool | None = None
    activation_devalues: bool | None = None
    near_expiry_disclosed: bool | None = None
    defect_disclosed: bool | None = None
    nonreturnable_confirmed: Confirmation | None = Field(
        None, description="Only `explicit` counts; a pre-ticked box is no confirmation (S3 Art 20(2))."
    )
    sanbao_catalogue: SanbaoCatalogueIn | None = None
    warranty_months: int | None = Field(None, ge=0)


class PaymentIn(StrictSchema):
    method: PaymentMethod
    amount: Decimal
    fee: Decimal | None = None
    fee_borne_by: FeeBearer | None = None


class FullReductionIn(StrictSchema):
    threshold: Decimal
    amount: Decimal


class OrderIn(StrictSchema):
    order_id: str
    currency: str | None = "CNY"
    lines: list[OrderLineIn]
    payments: list[PaymentIn] = []
    shipping_fee: Decimal | None = None
    free_shipping_threshold: Decimal | None = None
    standard_shipping_fee: Decimal | None = None
    full_reductions: list[FullReductionIn] = []
    placed_at: dt.datetime | None = None
    shipped_at: dt.datetime | None = None
    signed_at: dt.datetime | None = Field(None, description="Delivery (签收) time with its UTC offset.")
    installed_at: dt.datetime | None = None


class RequestLineIn(StrictSchema):
    line_id: str
    quantity: int


class GoodsStateIn(StrictSchema):
    packaging_opened: bool | None = None
    seal_broken: bool | None = None
    tags_removed: bool | None = None
    soiled: bool | None = None
    activated: bool | None = None
    used_beyond_inspection: bool | None = None
    parts_missing: bool | None = None
    gift_returned: bool | None = None


class RequestIn(StrictSchema):
    kind: RequestKind
    reason: Reason
    lines: list[RequestLineIn]
    notice_at: dt.datetime = Field(description="When the buyer sent the notice, with its UTC offset.")
    goods: GoodsStateIn | None = None
    same_model_available: bool | None = None
    current_unit_price: Decimal | None = None


class RepairIn(StrictSchema):
    started_on: dt.date
    finished_on: dt.date
    failed: bool | None = None
    line_id: str | None = None


class ExchangeIn(StrictSchema):
    exchanged_on: dt.date
    line_id: str | None = None


class HistoryIn(StrictSchema):
    repairs: list[RepairIn] = []
    exchanges: list[ExchangeIn] = []


class StorePromisesIn(StrictSchema):
    no_reason_days: int | None = Field(None, ge=0)
    free_return_shipping: bool | None = None
    shipping_insurance: bool | None = None
    shipping_insurance_cap: Decimal | None = None
    price_protection_days: int | None = Field(None, ge=0)
    extended_warranty_months: int | None = Field(None, ge=0)
    extend_on_public_holiday: bool | None = None
    store_return_policy: bool | None = None


class StoreIn(StrictSchema):
    jurisdiction: Jurisdiction
    platform_mode: PlatformMode | None = None
    timezone: str | None = "Asia/Shanghai"
    promises: StorePromisesIn | None = None
    no_reason_returns_disabled: bool | None = None
    extra_excluded_categories: list[Category] = []


class FactsIn(StrictSchema):
    order: OrderIn
    request: RequestIn
    store: StoreIn
    history: HistoryIn | None = None
    eu_withdrawal_info_given: bool | None = None

    def as_facts_json(self) -> dict[str, Any]:
        """The body as plain JSON (decimals and datetimes as strings) for `facts_from_dict`."""
        return self.model_dump(mode="json", exclude_none=True)


# --- response ---------------------------------------------------------------------------------------


class CitationOut(Schema):
    rule_id: str = Field(examples=["cn.nr.window"])
    source: str = Field(examples=["《消费者权益保护法》第二十五条；《网络购买商品七日无理由退货暂行办法》第十条 (S1 Art 25; S3 Art 10)"])
    zh: str
    en: str


class RemedyOut(CitationOut):
    remedy: RequestKind
    open: bool


class ShippingLegOut(CitationOut):
    payer: str = Field(examples=["buyer"], description="buyer, merchant, insurer or not_applicable")
    cap: str | None = None


class ShippingOut(Schema):
    outbound: ShippingLegOut
    return_: ShippingLegOut = Field(alias="return")
    reship: ShippingLegOut


class DeductionOut(CitationOut):
    code: str
    amount: str


class RefundPartOut(Schema):
    method: PaymentMethod
    amount: str
    in_kind: bool


class RefundOut(Schema):
    currency: str
    goods_paid: str
    shipping_refunded: str
    deductions: list[DeductionOut]
    amount: str = Field(examples=["249.00"])
    split: list[RefundPartOut]


class DeadlinesOut(Schema):
    return_window_last_day: str | None
    return_window_closes_at: str | None
    window_extended_for: str | None
    refund_due_days_after_receipt: int | None
    refund_due_rule: CitationOut | None
    violation_days_after_receipt: int | None
    request_handling_violation_at: str | None
    warranty_last_day: str | None


class EvidenceOut(Schema):
    code: str
    zh: str
    en: str


class AutoApprovalOut(CitationOut):
    allowed: bool


class DecisionOut(Schema):
    requested: RequestKind
    requested_open: bool
    basis: str
    remedies_open: list[RemedyOut]
    remedies_closed: list[RemedyOut]
    shipping: ShippingOut
    refund: RefundOut
    deadlines: DeadlinesOut
    evidence: list[EvidenceOut]
    may_auto_approve: AutoApprovalOut
    flags: list[CitationOut]
    notes: list[CitationOut]


class PolicyErrorOut(Schema):
    code: str = Field(examples=["invalid_facts"])
    message: str
    details: dict[str, Any] = Field(examples=[{"field": "order.lines[1].unit_price"}])


EVALUATE_EXAMPLE: dict[str, Any] = {
    "order": {
        "order_id": "TB-20260301-0042",
        "currency": "CNY",
        "lines": [
            {"line_id": "L1", "sku": "DRESS-RED-M", "category": "apparel", "quantity": 1, "unit_price": "299.00"},
            {"line_id": "L2", "sku": "SCARF-GREY", "category": "apparel", "quantity": 1, "unit_price": "99.00"},
        ],
        "payments": [{"method": "alipay", "amount": "328.00"}, {"method": "coupon", "amount": "20.00"}],
        "full_reductions": [{"threshold": "300.00", "amount": "50.00"}],
        "shipped_at": "2026-02-28T09:00:00+08:00",
        "signed_at": "2026-03-01T23:50:00+08:00",
    },
    "request": {
        "kind": "return_refund",
        "reason": "no_reason",
        "lines": [{"line_id": "L1", "quantity": 1}],
        "notice_at": "2026-03-08T23:59:59+08:00",
        "goods": {"packaging_opened": True},
    },
    "store": {"jurisdiction": "CN", "platform_mode": "taobao", "timezone": "Asia/Shanghai"},
}
