"""Refund amounts and their split over payment methods, to the cent (S3 Arts 12–18; S9 Art 13)."""

from __future__ import annotations

from decimal import Decimal

from aftersales.policies.engine import evaluate
from aftersales.policies.facts import FeeBearer, FullReduction, Payment, PaymentMethod
from aftersales.policies.tests import facts, goods, line, order, request


def split(decision) -> list[tuple[str, str, bool]]:
    return [(part.method.value, str(part.amount), part.in_kind) for part in decision.refund.split]


def deductions(decision) -> list[tuple[str, str]]:
    return [(d.code, str(d.amount)) for d in decision.refund.deductions]


def test_each_payment_method_gets_its_share_coupons_and_points_in_kind() -> None:
    # S3 Art 14 (each method its share) and Art 15 (coupons and points back as themselves).
    payments = (
        Payment(PaymentMethod.ALIPAY, Decimal("150.00")),
        Payment(PaymentMethod.COUPON, Decimal("30.00")),
        Payment(PaymentMethod.POINTS, Decimal("20.00")),
    )
    decision = evaluate(facts(order(line(unit_price="200.00"), payments=payments)))

    assert split(decision) == [("alipay", "150.00", False), ("coupon", "30.00", True), ("points", "20.00", True)]
    assert decision.refund.amount == Decimal("200.00")


def test_partial_refund_split_is_proportional_and_adds_up_to_the_cent() -> None:
    payments = (Payment(PaymentMethod.WECHAT, Decimal("200.00")), Payment(PaymentMethod.COUPON, Decimal("100.00")))
    the_order = order(line("L1", "100.00"), line("L2", "100.00"), line("L3", "100.00"), payments=payments)

    decision = evaluate(facts(the_order, request(lines=(("L1", 1),))))

    assert split(decision) == [("wechat", "66.67", False), ("coupon", "33.33", True)]
    assert decision.refund.amount == Decimal("100.00")


def test_card_fee_absorbed_by_the_store_may_be_deducted() -> None:
    # S3 Art 16: the store waived the 3.00 fee for the buyer, so it may take it back on a return.
    payments = (Payment(PaymentMethod.CARD, Decimal("500.00"), fee=Decimal("3.00"), fee_borne_by=FeeBearer.MERCHANT),)
    decision = evaluate(facts(order(line(unit_price="500.00"), payments=payments)))

    assert deductions(decision) == [("card_fee", "3.00")]
    assert decision.refund.amount == Decimal("497.00")


def test_card_fee_paid_by_the_buyer_is_kept_and_the_price_refunded_in_full() -> None:
    payments = (Payment(PaymentMethod.CARD, Decimal("500.00"), fee=Decimal("3.00"), fee_borne_by=FeeBearer.BUYER),)
    decision = evaluate(facts(order(line(unit_price="500.00"), payments=payments)))

    assert decision.refund.amount == Decimal("500.00")
    assert "cn.nr.card_fee_buyer" in [note.rule_id for note in decision.notes]


def test_no_card_fee_deduction_on_a_quality_return() -> None:
    # S3 Art 16 belongs to the no-reason scheme; for faulty goods the store bears costs (S1 Art 24(2)).
    payments = (Payment(PaymentMethod.CARD, Decimal("500.00"), fee=Decimal("3.00"), fee_borne_by=FeeBearer.MERCHANT),)
    decision = evaluate(facts(order(line(unit_price="500.00"), payments=payments), request(reason="quality")))

    assert decision.refund.amount == Decimal("500.00")


def test_unreturned_gift_is_deducted_at_its_declared_value() -> None:
    # S3 Art 12(2): the pre-stated gift value, here 15.00.
    the_order = order(line("L1", "299.00"), line("G1", "0.00", is_gift=True, gift_declared_value="15.00", gift_for_line="L1"))

    decision = evaluate(facts(the_order, request(goods=goods(gift_returned=False))))

    assert deductions(decision) == [("gift_not_returned", "15.00")]
    assert decision.refund.amount == Decimal("284.00")


def test_unreturned_gift_without_declared_value_is_not_priced_by_the_store() -> None:
    the_order = order(line("L1", "299.00"), line("G1", "0.00", is_gift=True))

    decision = evaluate(facts(the_order, request(goods=goods(gift_returned=False))))

    assert decision.refund.amount == Decimal("299.00")
    assert "cn.nr.gift_value_unknown" in decision.flag_ids
    assert not decision.auto_approval.allowed


def test_gift_of_a_kept_line_is_not_due_back() -> None:
    the_order = order(
        line("L1", "100.00"),
        line("L2", "100.00"),
        line("G1", "0.00", is_gift=True, gift_declared_value="15.00", gift_for_line="L2"),
    )

    decision = evaluate(facts(the_order, request(goods=goods(gift_returned=False))))

    assert decision.refund.deductions == ()


def test_partial_return_breaking_full_reduction_settles_kept_items_at_item_prices() -> None:
    # S3 Art 17(2): 满300减50; 299 + 99 paid 348. Keep the 99 item alone (no discount): refund 348 − 99.
    the_order = order(line("L1", "299.00"), line("L2", "99.00"), full_reductions=(FullReduction(Decimal("300"), Decimal("50")),))

    decision = evaluate(facts(the_order, request(lines=(("L1", 1),))))

    assert decision.refund.goods_paid == Decimal("261.44")  # 299 − 50 × 299/398
    assert deductions(decision) == [("promotion_settlement", "12.44")]
    assert decision.refund.amount == Decimal("249.00")


def test_partial_return_that_keeps_the_threshold_refunds_the_paid_share() -> None:
    # S3 Art 17(1): 200 + 150 + 100 with 满300减50; keeping 350 still earns the discount.
    the_order = order(
        line("L1", "200.00"), line("L2", "150.00"), line("L3", "100.00"),
        full_reductions=(FullReduction(Decimal("300"), Decimal("50")),),
    )

    decision = evaluate(facts(the_order, request(lines=(("L3", 1),))))

    assert decision.refund.deductions == ()
    assert decision.refund.amount == Decimal("88.89")  # 100 − 50 × 100/450


def test_partial_return_breaking_free_shipping_claws_back_the_postage() -> None:
    # S3 Art 18(2): 60 + 50 shipped free over 99; keeping 60 loses 包邮, standard postage 8.00.
    the_order = order(
        line("L1", "60.00"), line("L2", "50.00"),
        free_shipping_threshold="99.00", standard_shipping_fee="8.00",
    )

    decision = evaluate(facts(the_order, request(lines=(("L2", 1),))))

    assert deductions(decision) == [("free_shipping_clawback", "8.00")]
    assert decision.refund.amount == Decimal("42.00")
    assert decision.shipping.outbound.citation.rule_id == "cn.nr.free_shipping_clawback"


def test_quantity_partial_return_of_a_discounted_line() -> None:
    # Three units at 100 with a 30.00 line discount: each unit was paid 90.00.
    the_order = order(line("L1", "100.00", quantity=3, discount_allocated="30.00"))

    decision = evaluate(facts(the_order, request(lines=(("L1", 2),))))

    assert decision.refund.amount == Decimal("180.00")


def test_closed_remedy_refunds_nothing() -> None:
    decision = evaluate(facts(the_request=request(notice_at="2026-03-20T10:00:00+08:00")))

    assert decision.refund.amount == Decimal("0.00")
    assert decision.refund.split == ()


def test_to_dict_is_json_safe_with_decimal_strings_and_iso_dates() -> None:
    import json

    payments = (Payment(PaymentMethod.ALIPAY, Decimal("80.00")), Payment(PaymentMethod.COUPON, Decimal("20.00")))
    data = evaluate(facts(order(line(), payments=payments))).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["refund"]["amount"] == "100.00"
    assert data["refund"]["split"] == [
        {"method": "alipay", "amount": "80.00", "in_kind": False},
        {"method": "coupon", "amount": "20.00", "in_kind": True},
    ]
    assert data["deadlines"]["return_window_closes_at"] == "2026-03-09T00:00:00+08:00"
    assert data["remedies_open"][0]["rule_id"] == "cn.nr.window"
    assert data["may_auto_approve"]["allowed"] is True
