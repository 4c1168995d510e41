"""EU (S22, S23), UK (S24), US (S25), and the Taobao/JD/WeChat overlays (S13–S17)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aftersales.policies.decision import Payer
from aftersales.policies.engine import evaluate
from aftersales.policies.facts import Category, History, RepairRecord
from aftersales.policies.tests import facts, goods, line, order, request, store

BERLIN_SIGNED = "2026-03-02T10:00:00+01:00"
LONDON_SIGNED = "2026-03-02T10:00:00+00:00"
NEW_YORK_SIGNED = "2026-03-02T10:00:00-05:00"


def eu(notice_at: str, *, info_given: bool = True, reason: str = "no_reason", the_line=None, **kw):
    return evaluate(
        facts(
            order(the_line or line(), signed_at=BERLIN_SIGNED, currency="EUR"),
            request(reason=reason, notice_at=notice_at, **kw),
            store("EU", timezone="Europe/Berlin"),
            eu_withdrawal_info_given=info_given,
        )
    )


@pytest.mark.parametrize(
    ("notice_at", "is_open"),
    [
        pytest.param("2026-03-16T23:59:00+01:00", True, id="S22-Art9-day14"),
        pytest.param("2026-03-17T00:00:00+01:00", False, id="S22-Art9-day15"),
    ],
)
def test_eu_withdrawal_14_days_from_possession(notice_at: str, is_open: bool) -> None:
    decision = eu(notice_at)

    assert decision.verdict("return_refund").open is is_open
    assert decision.deadlines.return_window_last_day == dt.date(2026, 3, 16)
    assert decision.deadlines.refund_due_days_after_receipt == 14  # S22 Art 13


@pytest.mark.parametrize(
    ("notice_at", "is_open"),
    [
        pytest.param("2027-03-16T12:00:00+01:00", True, id="S22-Art10-12-months-later-open"),
        pytest.param("2027-03-17T00:00:00+01:00", False, id="S22-Art10-after-extension"),
    ],
)
def test_eu_period_runs_12_months_longer_without_withdrawal_information(notice_at: str, is_open: bool) -> None:
    decision = eu(notice_at, info_given=False)

    assert decision.verdict("return_refund").open is is_open
    assert decision.deadlines.return_window_last_day == dt.date(2027, 3, 16)
    if is_open:
        assert decision.verdict("return_refund").citation.rule_id == "eu.withdrawal.no_info_extension"
        assert decision.shipping.return_leg.payer is Payer.MERCHANT  # not informed of the cost (Art 14)


def test_eu_withdrawal_refunds_standard_delivery_and_buyer_pays_return() -> None:
    decision = evaluate(
        facts(
            order(line(), signed_at=BERLIN_SIGNED, currency="EUR", shipping_fee="4.90"),
            request(notice_at="2026-03-10T12:00:00+01:00"),
            store("EU", timezone="Europe/Berlin"),
        )
    )

    assert decision.refund.amount == Decimal("104.90")  # S22 Art 13: standard delivery refunded
    assert decision.shipping.return_leg.payer is Payer.BUYER  # S22 Art 14


def test_eu_exception_needs_no_checkout_confirmation() -> None:
    decision = eu("2026-03-05T12:00:00+01:00", the_line=line(perishable=True, category=Category.FOOD))

    assert decision.verdict("return_refund").citation.rule_id == "eu.withdrawal.exception"  # S22 Art 16


def test_eu_handling_beyond_inspection_does_not_block_withdrawal_but_needs_review() -> None:
    decision = eu("2026-03-05T12:00:00+01:00", goods=goods(used_beyond_inspection=True))

    assert decision.verdict("return_refund").open
    assert not decision.auto_approval.allowed
    assert decision.auto_approval.why.rule_id == "eu.withdrawal.diminished_value"  # S22 Art 14(2)


def test_eu_conformity_gives_repair_or_replacement_then_termination() -> None:
    first = eu("2027-01-10T12:00:00+01:00", reason="quality")
    history = History(repairs=(RepairRecord(dt.date(2027, 1, 12), dt.date(2027, 1, 20), failed=True),))
    after_failed_repair = evaluate(
        facts(
            order(line(), signed_at=BERLIN_SIGNED, currency="EUR"),
            request(reason="quality", notice_at="2027-02-01T12:00:00+01:00"),
            store("EU", timezone="Europe/Berlin"),
            history=history,
        )
    )

    assert {r.value for r in first.open_remedies} == {"repair", "exchange"}  # S23 Art 13
    assert after_failed_repair.verdict("return_refund").citation.rule_id == "eu.conformity.termination"


def uk(notice_at: str, reason: str, history: History | None = None):
    return evaluate(
        facts(
            order(line(), signed_at=LONDON_SIGNED, currency="GBP"),
            request(reason=reason, notice_at=notice_at),
            store("UK", timezone="Europe/London"),
            history=history,
        )
    )


@pytest.mark.parametrize(
    ("notice_at", "return_open", "rule_id"),
    [
        pytest.param("2026-04-01T12:00:00+01:00", True, "uk.cra.short_term_reject", id="S24-CRA-s22-day30"),
        pytest.param("2026-04-02T12:00:00+01:00", False, "uk.cra.repair_or_replace", id="S24-CRA-s23-day31"),
    ],
)
def test_uk_30_day_short_term_right_to_reject(notice_at: str, return_open: bool, rule_id: str) -> None:
    decision = uk(notice_at, "quality")

    assert decision.verdict("return_refund").open is return_open
    assert decision.verdict("return_refund").citation.rule_id == rule_id
    assert decision.verdict("repair").open


@pytest.mark.parametrize(
    ("notice_at", "is_open"),
    [
        pytest.param("2026-03-16T23:00:00+00:00", True, id="S24-CCR-day14"),
        pytest.param("2026-03-17T00:00:00+00:00", False, id="S24-CCR-day15"),
    ],
)
def test_uk_14_day_cancellation(notice_at: str, is_open: bool) -> None:
    assert uk(notice_at, "no_reason").verdict("return_refund").open is is_open


@pytest.mark.parametrize(
    ("promises", "notice_at", "is_open", "rule_id"),
    [
        pytest.param({}, "2026-03-05T12:00:00-05:00", False, "us.no_statutory_return", id="S25-no-statutory-return"),
        pytest.param({"store_return_policy": True}, "2026-04-01T12:00:00-04:00", True, "us.store_policy.window", id="S25-store-default-30-days"),
        pytest.param(
            {"store_return_policy": True}, "2026-04-02T12:00:00-04:00", False, "us.store_policy.window_passed", id="S25-store-day-31"
        ),
        pytest.param(
            {"store_return_policy": True, "no_reason_days": 45},
            "2026-04-16T12:00:00-04:00",
            True,
            "us.store_policy.window",
            id="S25-store-45-days",
        ),
    ],
)
def test_us_store_policy_mode(promises: dict, notice_at: str, is_open: bool, rule_id: str) -> None:
    decision = evaluate(
        facts(
            order(line(), signed_at=NEW_YORK_SIGNED, currency="USD"),
            request(notice_at=notice_at),
            store("US", timezone="America/New_York", **promises),
        )
    )

    assert decision.verdict("return_refund").open is is_open
    assert decision.verdict("return_refund").citation.rule_id == rule_id


def test_us_store_may_refuse_returns_without_a_void_flag() -> None:
    decision = evaluate(
        facts(
            order(line(), signed_at=NEW_YORK_SIGNED, currency="USD"),
            request(notice_at="2026-03-05T12:00:00-05:00"),
            store("US", timezone="America/New_York", no_reason_returns_disabled=True),
        )
    )

    assert decision.flags == ()


# --- platform overlays --------------------------------------------------------------------------------


def test_taobao_free_shipping_item_buyer_pays_only_the_return_leg() -> None:
    decision = evaluate(facts(the_store=store(platform="taobao")))

    assert decision.shipping.outbound.payer is Payer.MERCHANT
    assert decision.shipping.return_leg.payer is Payer.BUYER
    assert decision.shipping.return_leg.citation.rule_id == "taobao.nr.shipping_free"  # S13 Art 53


def test_taobao_non_free_shipping_item_buyer_pays_both_legs() -> None:
    decision = evaluate(facts(order(line(), shipping_fee="10.00"), the_store=store(platform="taobao")))

    assert decision.shipping.outbound.payer is Payer.BUYER
    assert decision.shipping.return_leg.citation.rule_id == "taobao.nr.shipping_all"  # S13 Art 53
    assert decision.refund.amount == Decimal("100.00")


def test_taobao_allows_no_reason_exchange_at_the_buyers_cost() -> None:
    decision = evaluate(facts(the_request=request(kind="exchange", reason="size"), the_store=store(platform="taobao")))

    assert decision.verdict("exchange").open
    assert decision.verdict("exchange").citation.rule_id == "taobao.nr.exchange"  # S13 Art 54
    assert decision.shipping.return_leg.payer is Payer.BUYER
    assert decision.shipping.reship.payer is Payer.BUYER


def test_law_floor_has_no_no_reason_exchange() -> None:
    decision = evaluate(facts(the_request=request(kind="exchange", reason="size")))

    assert not decision.verdict("exchange").open


def test_wechat_refund_only_before_shipping_returns_postage() -> None:
    decision = evaluate(
        facts(
            order(line(), signed_at=None, shipped_at=None, shipping_fee="6.00"),
            request(kind="refund_only"),
            store(platform="wechat"),
        )
    )

    assert decision.verdict("refund_only").citation.rule_id == "wechat.refund_only_unshipped"  # S17
    assert decision.refund.amount == Decimal("106.00")
    assert decision.refund.shipping_refunded == Decimal("6.00")
    assert decision.auto_approval.allowed


def test_wechat_refund_only_after_shipping_is_for_the_merchant_to_decide() -> None:
    decision = evaluate(facts(the_request=request(kind="refund_only"), the_store=store(platform="wechat")))

    assert not decision.verdict("refund_only").open
    assert "wechat.refund_only_request" in [note.rule_id for note in decision.notes]


def test_jd_quality_freight_on_merchant_and_default_shoe_warranty() -> None:
    # S15 Art 27: shoes with no stated warranty get 120 days on JD; day 60 is past the 15-day ladder.
    decision = evaluate(
        facts(
            order(line(category=Category.SHOES), signed_at="2026-03-01T10:00:00+08:00"),
            request(kind="repair", reason="quality", notice_at="2026-04-30T10:00:00+08:00"),
            store(platform="jd"),
        )
    )

    assert decision.verdict("repair").open
    assert decision.shipping.return_leg.citation.rule_id == "jd.q.costs"  # S15 Arts 17, 20


def test_platform_mode_outside_china_is_flagged_not_applied() -> None:
    decision = evaluate(
        facts(
            order(line(), signed_at=BERLIN_SIGNED, currency="EUR"),
            request(notice_at="2026-03-05T12:00:00+01:00"),
            store("EU", platform="taobao", timezone="Europe/Berlin"),
        )
    )

    assert "platform.outside_cn" in decision.flag_ids
