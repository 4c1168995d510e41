"""The policy engine meets the database: facts are read from the orders mirror and the store's
settings, the pure engine decides, and the decision is stored on the case as it was made.

The engine never sees a model; this module is the only translation between the two, so the engine
stays testable without a database and fast enough to re-run whenever facts change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from aftersales.orders.models import Order, OrderLine, Payment, Shipment
from aftersales.stores.models import Store

from . import facts as f
from .engine import evaluate
from .models import StorePolicy

# Our catalogue speaks the shop's language; the engine speaks the law's (S3 Art 9 groups goods by how
# "intact" is judged). Flags such as perishable or customised travel separately on the line.
CATALOG_TO_ENGINE_CATEGORY: dict[str, f.Category] = {
    "apparel": f.Category.APPAREL,
    "electronics": f.Category.ELECTRONICS,
    "appliances": f.Category.HOME_APPLIANCE,
    "fresh_food": f.Category.FOOD,
    "food": f.Category.FOOD,
    "cosmetics": f.Category.COSMETICS,
    "books": f.Category.BOOKS,
    "periodicals": f.Category.PERIODICALS,
    "media": f.Category.AUDIO_VIDEO,
    "digital": f.Category.SOFTWARE,
    "home": f.Category.HOME_GOODS,
    "toys": f.Category.TOYS,
    "jewellery": f.Category.JEWELLERY,
    "customised": f.Category.GENERAL,
    "other": f.Category.GENERAL,
}

PAYMENT_METHODS = {m.value for m in f.PaymentMethod}


def _line_facts(line: OrderLine) -> f.OrderLine:
    return f.OrderLine(
        line_id=str(line.pk),
        sku=line.sku,
        category=CATALOG_TO_ENGINE_CATEGORY.get(line.category, f.Category.GENERAL),
        quantity=line.quantity,
        unit_price=line.unit_price,
        discount_allocated=line.discount_allocated,
        is_gift=line.is_gift,
        gift_declared_value=line.gift_declared_value,
        customised=line.customised or line.category == "customised",
        perishable=line.perishable or line.category == "fresh_food",
        digital_download=line.digital_download,
        sealed_media=line.sealed_media,
        periodical=line.periodical or line.category == "periodicals",
        near_expiry_disclosed=line.near_expiry_disclosed,
        nonreturnable_confirmed=f.Confirmation(line.nonreturnable_confirmation),
        warranty_months=line.warranty_months,
    )


def _payment_facts(payment: Payment) -> f.Payment:
    method = payment.method if payment.method in PAYMENT_METHODS else "card"
    return f.Payment(
        method=f.PaymentMethod(method), amount=payment.amount, fee=payment.fee,
        fee_borne_by=f.FeeBearer.BUYER if payment.fee_paid_by_buyer else f.FeeBearer.MERCHANT,
    )


def store_settings(store: Store, policy: StorePolicy | None) -> f.StoreSettings:
    promises = f.StorePromises()
    excluded: tuple[f.Category, ...] = ()
    if policy is not None:
        promises = f.StorePromises(
            no_reason_days=policy.no_reason_days,
            free_return_shipping=policy.free_return_shipping,
            shipping_insurance=policy.shipping_insurance,
            shipping_insurance_cap=policy.shipping_insurance_cap,
            price_protection_days=policy.price_protection_days,
            extended_warranty_months=policy.extended_warranty_months,
            extend_on_public_holiday=policy.extend_on_public_holiday,
            store_return_policy=policy.store_return_policy,
        )
        known = {c.value for c in f.Category}
        excluded = tuple(f.Category(c) for c in policy.extra_excluded_categories if c in known)
    return f.StoreSettings(
        jurisdiction=f.Jurisdiction(store.jurisdiction),
        platform_mode=f.PlatformMode(store.platform_mode),
        timezone=store.timezone,
        promises=promises,
        no_reason_returns_disabled=bool(policy and policy.no_reason_returns_disabled),
        extra_excluded_categories=excluded,
    )


def _store_policy(store: Store) -> StorePolicy | None:
    """The store's own policy, from the store when the caller read them together."""
    if Store.policy.is_cached(store):
        try:
            return store.policy
        except StorePolicy.DoesNotExist:
            return None
    return StorePolicy.objects.filter(store_id=store.pk).first()


def facts_for_request(
    *,
    store: Store,
    order: Order,
    order_lines: Sequence[OrderLine],
    requested: Sequence[tuple[int, int]],
    kind: str,
    reason_category: str,
    notice_at: dt.datetime,
    payments: Sequence[Payment] | None = None,
    shipments: Sequence[Shipment] | None = None,
) -> f.Facts:
    """Facts for a request on `order`; `order_lines` are all its lines, `requested` (line id, quantity)
    pairs. The order's payments and shipments (in id order) are read here unless the caller has them."""
    if payments is None:
        payments = list(Payment.objects.filter(store_id=store.pk, order=order).order_by("id"))
    if shipments is None:
        shipments = list(Shipment.objects.filter(store_id=store.pk, order=order).order_by("id"))
    signed = [s.signed_at for s in shipments if s.signed_at is not None]
    shipped = [s.shipped_at for s in shipments if s.shipped_at is not None]
    policy = _store_policy(store)
    return f.Facts(
        order=f.Order(
            order_id=order.external_id,
            currency=order.currency,
            lines=tuple(_line_facts(line) for line in order_lines),
            payments=tuple(_payment_facts(p) for p in payments),
            shipping_fee=order.shipping_fee,
            free_shipping_threshold=order.free_shipping_threshold,
            placed_at=order.placed_at,
            # Several parcels: the goods are in the buyer's hands when the last one is signed for (S22 Art 9(2)).
            shipped_at=min(shipped) if shipped else None,
            signed_at=max(signed) if signed else None,
        ),
        request=f.Request(
            kind=f.RequestKind(kind),
            reason=f.Reason(reason_category) if reason_category in {r.value for r in f.Reason} else f.Reason.QUALITY,
            lines=tuple(f.RequestLine(line_id=str(line_id), quantity=quantity) for line_id, quantity in requested),
            notice_at=notice_at,
        ),
        store=store_settings(store, policy),
        eu_withdrawal_info_given=policy.withdrawal_info_given if policy is not None else True,
    )


def decide(
    *,
    store: Store,
    order: Order,
    order_lines: Sequence[OrderLine],
    requested: Sequence[tuple[int, int]],
    kind: str,
    reason_category: str,
    notice_at: dt.datetime,
    payments: Sequence[Payment] | None = None,
    shipments: Sequence[Shipment] | None = None,
) -> dict[str, Any]:
    """The decision as stored on a case. Facts the engine cannot decide on are stored as an error the
    agent can read ("the signing time is missing"), never guessed around."""
    try:
        facts = facts_for_request(store=store, order=order, order_lines=order_lines, requested=requested, kind=kind,
                                  reason_category=reason_category, notice_at=notice_at, payments=payments,
                                  shipments=shipments)
        decision = evaluate(facts)
    except f.FactsError as error:
        return {"error": error.as_dict(), "decided_at": notice_at.isoformat()}
    return {**decision.to_dict(), "decided_at": notice_at.isoformat()}


def may_auto_approve(store: Store, decision: dict[str, Any]) -> bool:
    """The engine says the law allows it and the store has chosen to let the engine approve."""
    if "error" in decision or not decision.get("requested_open"):
        return False
    if not decision.get("may_auto_approve", {}).get("allowed"):
        return False
    policy = _store_policy(store)
    return policy is not None and policy.auto_approve_eligible
