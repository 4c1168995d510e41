"""Builders for policy-engine facts: small defaults, so each test states only what it is about."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from aftersales.policies.facts import (
    Category,
    Facts,
    GoodsState,
    History,
    Jurisdiction,
    Order,
    OrderLine,
    Payment,
    PaymentMethod,
    PlatformMode,
    Reason,
    Request,
    RequestKind,
    RequestLine,
    StorePromises,
    StoreSettings,
    order_total,
)

SIGNED = "2026-03-01T23:50:00+08:00"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def line(line_id: str = "L1", unit_price: str = "100.00", **fields: Any) -> OrderLine:
    defaults: dict[str, Any] = {"sku": f"SKU-{line_id}", "category": Category.APPAREL, "quantity": 1}
    defaults.update(fields)
    for name in ("discount_allocated", "gift_declared_value"):
        if isinstance(defaults.get(name), str):
            defaults[name] = Decimal(defaults[name])
    return OrderLine(line_id=line_id, unit_price=Decimal(unit_price), **defaults)


def order(
    *lines: OrderLine,
    payments: tuple[Payment, ...] | None = None,
    signed_at: str | None = SIGNED,
    shipped_at: str | None = "2026-02-28T09:00:00+08:00",
    **fields: Any,
) -> Order:
    """An order paid in full by Alipay unless `payments` says otherwise."""
    for name in ("shipping_fee", "free_shipping_threshold", "standard_shipping_fee"):
        if isinstance(fields.get(name), str):
            fields[name] = Decimal(fields[name])
    for name in ("placed_at", "installed_at"):
        if isinstance(fields.get(name), str):
            fields[name] = at(fields[name])
    draft = Order(
        order_id="O-1",
        currency=fields.pop("currency", "CNY"),
        lines=lines or (line(),),
        payments=(),
        signed_at=at(signed_at) if signed_at else None,
        shipped_at=at(shipped_at) if shipped_at else None,
        **fields,
    )
    if payments is None:
        payments = (Payment(PaymentMethod.ALIPAY, order_total(draft)),)
    return dataclasses.replace(draft, payments=payments)


def request(
    kind: str = "return_refund",
    reason: str = "no_reason",
    notice_at: str = "2026-03-05T12:00:00+08:00",
    lines: tuple[tuple[str, int], ...] = (("L1", 1),),
    **fields: Any,
) -> Request:
    if isinstance(fields.get("current_unit_price"), str):
        fields["current_unit_price"] = Decimal(fields["current_unit_price"])
    return Request(
        kind=RequestKind(kind),
        reason=Reason(reason),
        lines=tuple(RequestLine(line_id, qty) for line_id, qty in lines),
        notice_at=at(notice_at),
        **fields,
    )


def goods(**flags: bool) -> GoodsState:
    return GoodsState(**flags)


def store(
    jurisdiction: str = "CN",
    platform: str = "none",
    timezone: str = "Asia/Shanghai",
    no_reason_returns_disabled: bool = False,
    extra_excluded_categories: tuple[Category, ...] = (),
    **promises: Any,
) -> StoreSettings:
    if isinstance(promises.get("shipping_insurance_cap"), str):
        promises["shipping_insurance_cap"] = Decimal(promises["shipping_insurance_cap"])
    return StoreSettings(
        jurisdiction=Jurisdiction(jurisdiction),
        platform_mode=PlatformMode(platform),
        timezone=timezone,
        promises=StorePromises(**promises),
        no_reason_returns_disabled=no_reason_returns_disabled,
        extra_excluded_categories=extra_excluded_categories,
    )


def facts(
    the_order: Order | None = None,
    the_request: Request | None = None,
    the_store: StoreSettings | None = None,
    history: History | None = None,
    **fields: Any,
) -> Facts:
    return Facts(
        order=the_order or order(),
        request=the_request or request(),
        store=the_store or store(),
        history=history or History(),
        **fields,
    )
