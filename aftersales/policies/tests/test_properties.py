"""Properties that must hold for every order, not just the ones we thought of."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from aftersales.policies.decision import Payer
from aftersales.policies.engine import evaluate
from aftersales.policies.facts import (
    Category,
    Facts,
    FeeBearer,
    FullReduction,
    GoodsState,
    Payment,
    PaymentMethod,
    Reason,
    RequestKind,
    StorePromises,
    order_total,
)
from aftersales.policies.tests import facts, line, order, request, store

cents = st.integers(min_value=0, max_value=500_00).map(lambda c: Decimal(c).scaleb(-2))
positive_cents = st.integers(min_value=1, max_value=500_00).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def any_facts(draw: st.DrawFn) -> Facts:
    count = draw(st.integers(min_value=1, max_value=3))
    lines = []
    for index in range(count):
        quantity = draw(st.integers(min_value=1, max_value=4))
        price = draw(positive_cents)
        discount = draw(st.integers(min_value=0, max_value=int(price * quantity * 100)))
        lines.append(
            line(
                f"L{index}",
                str(price),
                quantity=quantity,
                discount_allocated=str(Decimal(discount).scaleb(-2)),
                category=draw(st.sampled_from([Category.APPAREL, Category.ELECTRONICS, Category.FOOD, Category.BOOKS])),
                customised=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    if draw(st.booleans()):
        lines.append(line("G", "0.00", is_gift=True, gift_declared_value=str(draw(cents))))
    reductions: tuple[FullReduction, ...] = ()
    if draw(st.booleans()):
        threshold = draw(positive_cents)
        reductions = (FullReduction(threshold, min(draw(cents), threshold)),)
    shipping_fee = draw(st.sampled_from(["0.00", "0.00", "8.00"]))
    base = order(
        *lines,
        shipping_fee=shipping_fee,
        full_reductions=reductions,
        free_shipping_threshold=draw(st.sampled_from([None, "99.00"])),
        standard_shipping_fee="8.00",
        signed_at="2026-03-01T23:50:00+08:00",
    )
    total = order_total(base)
    coupon = min(draw(cents), total)
    card_fee = draw(st.sampled_from([Decimal("0"), Decimal("2.50")]))
    payments = (
        Payment(PaymentMethod.CARD, total - coupon, fee=card_fee, fee_borne_by=draw(st.sampled_from(list(FeeBearer)))),
        Payment(PaymentMethod.COUPON, coupon),
    )
    the_order = dataclasses.replace(base, payments=payments)
    paid_lines = [item for item in lines if not item.is_gift]
    chosen = draw(st.lists(st.sampled_from(paid_lines), min_size=1, max_size=len(paid_lines), unique_by=lambda x: x.line_id))
    wanted = tuple((item.line_id, draw(st.integers(min_value=1, max_value=item.quantity))) for item in chosen)
    day = draw(st.integers(min_value=0, max_value=40))
    notice = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=day)
    the_request = request(
        kind=draw(st.sampled_from([k.value for k in RequestKind])),
        reason=draw(st.sampled_from([Reason.NO_REASON.value, Reason.SIZE.value, Reason.QUALITY.value, Reason.WRONG_ITEM.value])),
        notice_at=notice.isoformat(),
        lines=wanted,
        goods=GoodsState(
            tags_removed=draw(st.booleans()) and draw(st.booleans()),
            gift_returned=draw(st.booleans()),
        ),
    )
    return facts(
        the_order,
        the_request,
        store(
            jurisdiction=draw(st.sampled_from(["CN", "CN", "EU", "UK", "US"])),
            platform=draw(st.sampled_from(["none", "taobao", "jd", "wechat"])),
            extend_on_public_holiday=draw(st.sampled_from([None, False])),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(any_facts())
def test_refund_never_exceeds_what_was_paid_and_split_sums_to_it(the_facts: Facts) -> None:
    decision = evaluate(the_facts)
    paid = sum((p.amount for p in the_facts.order.payments), Decimal("0"))
    refund = decision.refund

    assert Decimal("0") <= refund.amount <= paid
    assert sum((part.amount for part in refund.split), Decimal("0")) == refund.amount
    by_method = {p.method: p.amount for p in the_facts.order.payments}
    for part in refund.split:
        assert Decimal("0") < part.amount <= by_method[part.method]


PAYER_RANK = {Payer.BUYER: 0, Payer.INSURER: 1, Payer.MERCHANT: 2, Payer.NOT_APPLICABLE: 2}


@settings(max_examples=300, deadline=None)
@given(any_facts(), st.integers(min_value=0, max_value=60), st.booleans(), st.booleans(), st.integers(0, 24))
def test_a_more_generous_store_promise_never_yields_a_worse_decision(
    the_facts: Facts, extra_days: int, free_returns: bool, holiday: bool, extra_warranty: int
) -> None:
    before = the_facts.store.promises
    generous = StorePromises(
        no_reason_days=(before.no_reason_days or 7) + extra_days,
        free_return_shipping=before.free_return_shipping or free_returns,
        extended_warranty_months=before.extended_warranty_months + extra_warranty,
        extend_on_public_holiday=True if holiday else before.extend_on_public_holiday,
        store_return_policy=before.store_return_policy,
    )
    better_facts = dataclasses.replace(the_facts, store=dataclasses.replace(the_facts.store, promises=generous))

    plain = evaluate(the_facts)
    better = evaluate(better_facts)

    assert set(plain.open_remedies) <= set(better.open_remedies)
    assert better.refund.amount >= plain.refund.amount
    if plain.requested_open:
        assert PAYER_RANK[better.shipping.return_leg.payer] >= PAYER_RANK[plain.shipping.return_leg.payer]


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 1)),
    st.sampled_from(["Asia/Shanghai", "Asia/Urumqi", "Europe/Berlin", "America/Los_Angeles"]),
)
def test_day_7_at_23_59_is_open_and_day_8_at_00_00_is_closed(signed_local: dt.datetime, tz_name: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    signed = signed_local.replace(tzinfo=tz)
    last_day = signed.date() + dt.timedelta(days=7)
    late_evening = dt.datetime.combine(last_day, dt.time(23, 59), tzinfo=tz)
    midnight = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
    the_store = store(timezone=tz_name, platform="taobao")  # platform: no holiday extension
    the_order = order(signed_at=signed.isoformat(), shipped_at=None)

    on_day_7 = evaluate(facts(the_order, request(notice_at=late_evening.isoformat()), the_store))
    on_day_8 = evaluate(facts(the_order, request(notice_at=midnight.isoformat()), the_store))

    assert on_day_7.verdict("return_refund").open
    assert not on_day_8.verdict("return_refund").open
