"""Faulty goods in China: the 7/15-day ladder, 三包, failed repairs, depreciation and warranty periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aftersales.policies.decision import Payer
from aftersales.policies.engine import evaluate
from aftersales.policies.facts import Category, ExchangeRecord, History, OrderLine, RepairRecord, SanbaoCatalogue
from aftersales.policies.tests import facts, line, order, request, store

# A 三包 phone: 12-month period (S11). The depreciation rate is the colour-TV catalogue figure,
# 0.1 %/day (S9 appendix), so the arithmetic in the depreciation test is checkable by hand.
PHONE_CATALOGUE = SanbaoCatalogue(code="mobile_phone", warranty_months=12, daily_depreciation_rate=Decimal("0.001"))
SIGNED = "2026-03-01T10:00:00+08:00"


def phone(unit_price: str = "3000.00") -> OrderLine:
    return line(unit_price=unit_price, category=Category.MOBILE_PHONE, sanbao_catalogue=PHONE_CATALOGUE)


def quality(notice_at: str, *, kind: str = "repair", history: History | None = None, the_line=None, **store_kw):
    return evaluate(
        facts(
            order(the_line or phone(), signed_at=SIGNED),
            request(kind=kind, reason="quality", notice_at=notice_at),
            store(**store_kw),
            history=history,
        )
    )


def open_set(decision) -> set[str]:
    return {remedy.value for remedy in decision.open_remedies}


@pytest.mark.parametrize(
    ("notice_at", "remedies", "rule_id"),
    [
        pytest.param("2026-03-08T20:00:00+08:00", {"return_refund", "exchange", "repair"}, "cn.sanbao.day7", id="S9-Art9-day7"),
        pytest.param("2026-03-09T09:00:00+08:00", {"exchange", "repair"}, "cn.sanbao.day15", id="S9-Art10-day8"),
        pytest.param("2026-03-16T20:00:00+08:00", {"exchange", "repair"}, "cn.sanbao.day15", id="S9-Art10-day15"),
        pytest.param("2026-03-17T09:00:00+08:00", {"repair"}, "cn.sanbao.warranty_repair", id="S9-Arts8-10-day16"),
    ],
)
def test_sanbao_ladder(notice_at: str, remedies: set[str], rule_id: str) -> None:
    decision = quality(notice_at)

    assert open_set(decision) == remedies
    assert decision.verdict("repair").citation.rule_id == rule_id


@pytest.mark.parametrize(
    ("notice_at", "remedies", "rule_id"),
    [
        pytest.param("2026-03-08T20:00:00+08:00", {"return_refund", "exchange", "repair"}, "cn.q.day7", id="S1-Art24-day7"),
        pytest.param("2026-03-09T09:00:00+08:00", {"exchange", "repair"}, "cn.q.after_day7", id="S1-Art24-day8"),
        pytest.param("2026-09-30T09:00:00+08:00", {"exchange", "repair"}, "cn.q.after_day7", id="S1-Art24-month7"),
        pytest.param("2028-03-02T09:00:00+08:00", set(), "cn.q.notice_cap", id="S6-Art621-two-year-cap"),
    ],
)
def test_general_quality_ladder_without_sanbao(notice_at: str, remedies: set[str], rule_id: str) -> None:
    decision = quality(notice_at, the_line=line(category=Category.HOME_GOODS))

    assert open_set(decision) == remedies
    assert decision.verdict("repair").citation.rule_id == rule_id


def test_quality_costs_fall_on_the_store_and_photos_are_required() -> None:
    decision = quality("2026-03-05T10:00:00+08:00", kind="exchange")

    assert decision.shipping.return_leg.payer is Payer.MERCHANT
    assert decision.shipping.reship.payer is Payer.MERCHANT
    assert decision.shipping.return_leg.citation.rule_id == "cn.q.costs_on_merchant"  # S1 Art 24(2)
    assert [e.code for e in decision.evidence] == ["defect_photos", "sanbao_voucher"]
    assert not decision.auto_approval.allowed


def test_quality_return_refunds_price_and_outbound_postage() -> None:
    decision = evaluate(
        facts(
            order(line(unit_price="100.00"), signed_at=SIGNED, shipping_fee="10.00"),
            request(reason="quality", notice_at="2026-03-03T10:00:00+08:00"),
        )
    )

    assert decision.verdict("return_refund").open
    assert str(decision.refund.amount) == "110.00"  # S1 Art 24(2): the store bears necessary costs


TWO_FAILED = History(
    repairs=(
        RepairRecord(dt.date(2026, 4, 1), dt.date(2026, 4, 11), failed=True),
        RepairRecord(dt.date(2026, 5, 1), dt.date(2026, 5, 6), failed=True),
    )
)


def test_two_failed_repairs_open_exchange_and_return() -> None:
    decision = quality("2026-06-01T10:00:00+08:00", kind="exchange", history=TWO_FAILED)

    assert open_set(decision) == {"return_refund", "exchange", "repair"}
    assert decision.verdict("exchange").citation.rule_id == "cn.sanbao.two_repairs"  # S9 Art 11


def test_one_failed_repair_is_not_enough() -> None:
    history = History(repairs=(RepairRecord(dt.date(2026, 4, 1), dt.date(2026, 4, 11), failed=True),))

    decision = quality("2026-06-01T10:00:00+08:00", kind="exchange", history=history)

    assert open_set(decision) == {"repair"}


def test_sanbao_return_after_failed_repairs_charges_depreciation_exactly() -> None:
    # S9 Art 13: 1 Mar → 1 Jun is 92 days, minus 10 + 5 days in repair = 77 days at 0.1 %/day on 3000.00.
    decision = quality("2026-06-01T10:00:00+08:00", kind="return_refund", history=TWO_FAILED)

    [deduction] = decision.refund.deductions
    assert deduction.code == "depreciation"
    assert deduction.amount == Decimal("231.00")
    assert decision.refund.amount == Decimal("2769.00")
    assert deduction.citation.rule_id == "cn.sanbao.depreciation"


def test_no_depreciation_when_the_same_model_is_not_available() -> None:
    decision = evaluate(
        facts(
            order(phone(), signed_at=SIGNED),
            request(reason="quality", notice_at="2026-06-01T10:00:00+08:00", same_model_available=False),
            history=TWO_FAILED,
        )
    )

    assert decision.refund.deductions == ()
    assert decision.refund.amount == Decimal("3000.00")


@pytest.mark.parametrize(
    ("notice_at", "repair_open"),
    [
        pytest.param("2027-03-21T10:00:00+08:00", True, id="S4-Art18-repair-days-added-last-day"),
        pytest.param("2027-03-22T10:00:00+08:00", False, id="S4-Art18-day-after"),
    ],
)
def test_warranty_period_excludes_repair_time(notice_at: str, repair_open: bool) -> None:
    # 12 months from 1 Mar 2026 end on 1 Mar 2027; 20 days in repair push that to 21 Mar (S4 Art 18(1); S9 Art 8).
    history = History(repairs=(RepairRecord(dt.date(2026, 5, 1), dt.date(2026, 5, 21), failed=False),))

    decision = quality(notice_at, history=history)

    assert decision.verdict("repair").open is repair_open
    assert decision.deadlines.warranty_last_day == dt.date(2027, 3, 21)
    if not repair_open:
        assert decision.verdict("repair").citation.rule_id == "cn.q.period_expired"


def test_warranty_restarts_after_an_exchange() -> None:
    # S4 Art 18(1): after an exchange the period runs again from the exchange.
    history = History(exchanges=(ExchangeRecord(dt.date(2026, 12, 1)),))

    without = quality("2027-06-01T10:00:00+08:00")
    with_exchange = quality("2027-06-01T10:00:00+08:00", history=history)

    assert not without.verdict("repair").open
    assert with_exchange.verdict("repair").open
    assert with_exchange.deadlines.warranty_last_day == dt.date(2027, 12, 1)


def test_store_extended_warranty_opens_repair_after_the_legal_period() -> None:
    decision = quality("2027-06-01T10:00:00+08:00", extended_warranty_months=12)

    assert decision.verdict("repair").open
    assert decision.verdict("repair").citation.rule_id == "store.extended_warranty"
    assert decision.deadlines.warranty_last_day == dt.date(2028, 3, 1)


def test_periods_start_at_installation_when_the_store_installs() -> None:
    # S4 Art 18(1): installed 10 Mar, so 15 Mar is day 5 — return is still open.
    decision = evaluate(
        facts(
            order(phone(), signed_at=SIGNED, installed_at="2026-03-10T15:00:00+08:00"),
            request(reason="quality", notice_at="2026-03-15T10:00:00+08:00"),
        )
    )

    assert decision.verdict("return_refund").open
    assert decision.verdict("return_refund").citation.rule_id == "cn.sanbao.day7"


@pytest.mark.parametrize(
    ("reason", "evidence", "repair_open"),
    [
        pytest.param("wrong_item", "label_photos", False, id="S6-Art610-wrong-item"),
        pytest.param("not_as_described", "listing_comparison", False, id="S6-Art610-not-as-described"),
        pytest.param("damaged_in_transit", "package_photos", True, id="S2-Art20-transit-damage"),
    ],
)
def test_nonconforming_delivery_opens_return_even_after_seven_days(reason: str, evidence: str, repair_open: bool) -> None:
    decision = evaluate(
        facts(order(line(), signed_at=SIGNED), request(reason=reason, notice_at="2026-03-20T10:00:00+08:00"))
    )

    assert decision.verdict("return_refund").open
    assert decision.verdict("return_refund").citation.rule_id == "cn.q.nonconforming_delivery"
    assert decision.verdict("repair").open is repair_open
    assert [e.code for e in decision.evidence] == [evidence]


def test_durable_goods_put_the_burden_of_proof_on_the_store_for_six_months() -> None:
    decision = quality("2026-05-01T10:00:00+08:00", the_line=line(category=Category.COMPUTER, warranty_months=12))

    assert "cn.q.burden_on_merchant" in [note.rule_id for note in decision.notes]  # S1 Art 23(3)
