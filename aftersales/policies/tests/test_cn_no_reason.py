"""七日无理由退货: the window, the exclusions, "intact", and store settings on top (S1 Art 25, S3)."""

from __future__ import annotations

import pytest

from aftersales.policies.decision import Payer
from aftersales.policies.engine import evaluate
from aftersales.policies.facts import Category, Confirmation
from aftersales.policies.tests import facts, goods, line, order, request, store

# --- the window: day after signing + 7, closing at local midnight (S3 Art 10; S6 Arts 201, 203(2)) -----


@pytest.mark.parametrize(
    ("notice_at", "is_open"),
    [
        pytest.param("2026-03-02T00:00:00+08:00", True, id="S3-Art10-day1"),
        pytest.param("2026-03-08T23:59:59+08:00", True, id="S3-Art10-day7-23:59:59-local"),
        pytest.param("2026-03-08T15:59:59+00:00", True, id="S3-Art10-day7-23:59:59-local-given-in-UTC"),
        pytest.param("2026-03-09T00:00:00+08:00", False, id="S3-Art10-day8-00:00-local"),
        pytest.param("2026-03-08T16:00:00+00:00", False, id="S3-Art10-day8-00:00-local-given-in-UTC"),
    ],
)
def test_window_counts_days_from_the_day_after_signing(notice_at: str, is_open: bool) -> None:
    # Signed at 23:50 on 1 March: signed_at + 168h would close at 23:50 on 8 March, the law at 24:00.
    decision = evaluate(facts(the_request=request(notice_at=notice_at), the_store=store(platform="taobao")))

    verdict = decision.verdict("return_refund")
    assert verdict.open is is_open
    assert verdict.citation.rule_id == ("cn.nr.window" if is_open else "cn.nr.window_passed")
    assert str(decision.deadlines.return_window_last_day) == "2026-03-08"
    assert str(decision.deadlines.return_window_closes_at) == "2026-03-09 00:00:00+08:00"


def test_window_uses_the_store_time_zone_for_the_signing_day() -> None:
    # 2026-03-01 17:00 UTC is already 2 March in Shanghai: day 7 is 9 March there.
    the_order = order(signed_at="2026-03-01T17:00:00+00:00")
    decision = evaluate(facts(the_order, request(notice_at="2026-03-09T23:00:00+08:00"), store(platform="jd")))

    assert decision.verdict("return_refund").open
    assert str(decision.deadlines.return_window_last_day) == "2026-03-09"


# --- public-holiday extension (S6 Art 203), via chinese_calendar ----------------------------------------
# Signed Sat 27 Sep 2025: day 7 is 4 Oct, inside the National Day holiday (1–8 Oct 2025); the first
# working day after it is Thu 9 Oct.
HOLIDAY_SIGNED = "2025-09-27T10:00:00+08:00"


@pytest.mark.parametrize(
    ("extend", "platform", "notice_at", "is_open", "last_day"),
    [
        pytest.param(True, "none", "2025-10-09T23:59:00+08:00", True, "2025-10-09", id="S6-Art203-flag-on-9-Oct-open"),
        pytest.param(True, "none", "2025-10-10T00:00:00+08:00", False, "2025-10-09", id="S6-Art203-flag-on-10-Oct-closed"),
        pytest.param(False, "none", "2025-10-05T10:00:00+08:00", False, "2025-10-04", id="S6-Art203-flag-off"),
        pytest.param(None, "none", "2025-10-09T10:00:00+08:00", True, "2025-10-09", id="S6-Art203-default-on-law-floor"),
        pytest.param(None, "taobao", "2025-10-05T10:00:00+08:00", False, "2025-10-04", id="S16-default-off-on-platform"),
    ],
)
def test_holiday_extension_across_national_day_2025(
    extend: bool | None, platform: str, notice_at: str, is_open: bool, last_day: str
) -> None:
    decision = evaluate(
        facts(
            order(signed_at=HOLIDAY_SIGNED, shipped_at="2025-09-26T10:00:00+08:00"),
            request(notice_at=notice_at),
            store(platform=platform, extend_on_public_holiday=extend),
        )
    )

    assert decision.verdict("return_refund").open is is_open
    assert str(decision.deadlines.return_window_last_day) == last_day
    if is_open:
        assert decision.verdict("return_refund").citation.rule_id == "cn.nr.holiday_extension"
        assert decision.deadlines.window_extended_for == "National Day"


def test_holiday_extension_is_not_guessed_for_years_the_calendar_does_not_cover() -> None:
    # chinesecalendar has no 2030 schedule; 4 Oct 2030 stays the last day rather than a guess.
    decision = evaluate(
        facts(
            order(signed_at="2030-09-27T10:00:00+08:00", shipped_at="2030-09-26T10:00:00+08:00"),
            request(notice_at="2030-10-05T10:00:00+08:00"),
            store(extend_on_public_holiday=True),
        )
    )

    assert not decision.verdict("return_refund").open
    assert str(decision.deadlines.return_window_last_day) == "2030-10-04"
    assert decision.deadlines.window_extended_for is None


# --- statutory exclusions (S1 Art 25(1); S3 Art 6) -----------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "state", "rule_id"),
    [
        pytest.param({"customised": True}, {}, "cn.nr.excluded.customised", id="S3-Art6(1)-customised"),
        pytest.param({"perishable": True, "category": Category.FOOD}, {}, "cn.nr.excluded.perishable", id="S3-Art6(2)-perishable"),
        pytest.param({"digital_download": True, "category": Category.SOFTWARE}, {}, "cn.nr.excluded.digital", id="S3-Art6(3)-download"),
        pytest.param(
            {"sealed_media": True, "category": Category.AUDIO_VIDEO},
            {"seal_broken": True},
            "cn.nr.excluded.digital",
            id="S3-Art6(3)-unsealed-media",
        ),
        pytest.param({"periodical": True, "category": Category.PERIODICALS}, {}, "cn.nr.excluded.periodical", id="S3-Art6(4)-periodical"),
    ],
)
def test_statutory_exclusions_close_the_no_reason_return(attributes: dict, state: dict, rule_id: str) -> None:
    decision = evaluate(facts(order(line(**attributes)), request(goods=goods(**state))))

    verdict = decision.verdict("return_refund")
    assert not verdict.open
    assert verdict.citation.rule_id == rule_id
    assert "S3 Art 6" in verdict.citation.source


def test_sealed_media_still_sealed_can_be_returned() -> None:
    # S3 Art 6(3) excludes audio/video "消费者拆封的": an unopened disc goes back like anything else.
    decision = evaluate(facts(order(line(sealed_media=True, category=Category.AUDIO_VIDEO)), request()))

    assert decision.verdict("return_refund").open


# --- exclusions that need the buyer's explicit confirmation (S3 Art 7, Art 20) --------------------------


@pytest.mark.parametrize(
    ("attributes", "state", "rule_id"),
    [
        pytest.param(
            {"hygiene_sensitive": True, "category": Category.COSMETICS},
            {"seal_broken": True},
            "cn.nr.confirmed.unsealed",
            id="S3-Art7(1)-unsealed",
        ),
        pytest.param(
            {"activation_devalues": True, "category": Category.ELECTRONICS},
            {"activated": True},
            "cn.nr.confirmed.activated",
            id="S3-Art7(2)-activated",
        ),
        pytest.param({"near_expiry_disclosed": True}, {}, "cn.nr.confirmed.near_expiry", id="S3-Art7(3)-near-expiry"),
        pytest.param({"defect_disclosed": True}, {}, "cn.nr.confirmed.disclosed_defect", id="S3-Art7(3)-disclosed-defect"),
    ],
)
@pytest.mark.parametrize(
    ("confirmation", "excluded"),
    [
        pytest.param(Confirmation.EXPLICIT, True, id="explicit"),
        pytest.param(Confirmation.PRE_TICKED, False, id="pre_ticked-S3-Art20(2)"),
        pytest.param(Confirmation.NONE, False, id="none"),
    ],
)
def test_confirmed_only_exclusions(
    attributes: dict, state: dict, rule_id: str, confirmation: Confirmation, excluded: bool
) -> None:
    # Goods that are intact apart from the confirmable point: the only question is the confirmation.
    # (Opened cosmetics are also "not intact" under S3 Art 9(1); this case uses a seal the buyer broke
    # on a hygiene item outside Art 9(1)'s list to keep the two rules apart.)
    if attributes.get("category") is Category.COSMETICS:
        attributes = {**attributes, "category": Category.GENERAL}
    if attributes.get("category") is Category.ELECTRONICS:
        attributes = {**attributes, "category": Category.GENERAL}
    the_line = line(nonreturnable_confirmed=confirmation, **attributes)
    decision = evaluate(facts(order(the_line), request(goods=goods(**state))))

    verdict = decision.verdict("return_refund")
    assert verdict.open is not excluded
    if excluded:
        assert verdict.citation.rule_id == rule_id
    else:
        assert verdict.citation.rule_id in {"cn.nr.window", "cn.nr.holiday_extension"}
    assert ("cn.nr.confirmation_pre_ticked" in decision.flag_ids) is (confirmation is Confirmation.PRE_TICKED)


# --- "not intact" per category (S3 Arts 8, 9) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "state", "rule_id"),
    [
        pytest.param(Category.FOOD, {"seal_broken": True}, "cn.nr.not_intact.seal_broken", id="S3-Art9(1)-food-seal"),
        pytest.param(Category.COSMETICS, {"seal_broken": True}, "cn.nr.not_intact.seal_broken", id="S3-Art9(1)-cosmetics-seal"),
        pytest.param(Category.MOBILE_PHONE, {"activated": True}, "cn.nr.not_intact.electronics", id="S3-Art9(2)-phone-activated"),
        pytest.param(
            Category.COMPUTER, {"used_beyond_inspection": True}, "cn.nr.not_intact.electronics", id="S3-Art9(2)-computer-used"
        ),
        pytest.param(Category.APPAREL, {"tags_removed": True}, "cn.nr.not_intact.tags", id="S3-Art9(3)-apparel-tags"),
        pytest.param(Category.SHOES, {"soiled": True}, "cn.nr.not_intact.tags", id="S3-Art9(3)-shoes-soiled"),
        pytest.param(Category.TOYS, {"parts_missing": True}, "cn.nr.not_intact.parts_missing", id="S3-Art8(2)-parts"),
        pytest.param(Category.BOOKS, {"used_beyond_inspection": True}, "cn.nr.not_intact.used", id="S3-Art9-general-use"),
    ],
)
def test_goods_not_intact_cannot_be_returned_without_reason(category: Category, state: dict, rule_id: str) -> None:
    decision = evaluate(facts(order(line(category=category)), request(goods=goods(**state))))

    assert decision.verdict("return_refund").citation.rule_id == rule_id
    assert not decision.verdict("return_refund").open


@pytest.mark.parametrize(
    ("category", "state"),
    [
        pytest.param(Category.MOBILE_PHONE, {"packaging_opened": True}, id="S3-Art8(3)-phone-box-opened"),
        pytest.param(Category.APPAREL, {"packaging_opened": True}, id="S3-Art8(3)-apparel-bag-opened"),
        pytest.param(Category.MOBILE_PHONE, {"seal_broken": True}, id="S3-Art9-seal-rule-is-for-food-and-cosmetics"),
        pytest.param(Category.FOOD, {"tags_removed": True}, id="S3-Art9-tag-rule-is-for-soft-goods"),
    ],
)
def test_opening_to_inspect_never_makes_goods_not_intact(category: Category, state: dict) -> None:
    decision = evaluate(facts(order(line(category=category)), request(goods=goods(**state))))

    assert decision.verdict("return_refund").open


def test_opened_packaging_is_explained_to_the_store() -> None:
    decision = evaluate(facts(the_request=request(goods=goods(packaging_opened=True))))

    assert "cn.nr.inspection_ok" in [note.rule_id for note in decision.notes]


# --- other remedies and shipping (S1 Art 25(3); S3 Arts 13, 17, 18) ---------------------------------


def test_no_reason_return_opens_return_only() -> None:
    decision = evaluate(facts())

    assert [remedy.value for remedy in decision.open_remedies] == ["return_refund"]
    assert decision.verdict("exchange").citation.rule_id == "cn.nr.no_exchange_right"
    assert decision.verdict("refund_only").citation.rule_id == "cn.nr.refund_needs_return"


def test_buyer_pays_return_leg_and_paid_postage_is_not_refunded() -> None:
    decision = evaluate(facts(order(line(), shipping_fee="10.00")))

    assert decision.shipping.return_leg.payer is Payer.BUYER
    assert decision.shipping.return_leg.citation.rule_id == "cn.nr.return_shipping_buyer"
    assert decision.shipping.outbound.payer is Payer.BUYER
    assert str(decision.refund.amount) == "100.00"


def test_deadlines_refund_7_days_and_15_day_violation_line() -> None:
    decision = evaluate(facts())

    assert decision.deadlines.refund_due_days_after_receipt == 7  # S1 Art 25(3); S3 Art 13
    assert decision.deadlines.violation_days_after_receipt == 15  # S3 Art 31
    assert str(decision.deadlines.request_handling_violation_at) == "2026-03-21 00:00:00+08:00"
    assert decision.deadlines.refund_due_rule is not None
    assert decision.deadlines.refund_due_rule.rule_id == "cn.refund_due"


def test_clean_no_reason_return_may_be_auto_approved() -> None:
    decision = evaluate(facts())

    assert decision.auto_approval.allowed
    assert decision.evidence == ()


# --- store promises: more generous only (S4 Art 12), void clauses flagged (S1 Art 26; S3 Art 30) -----


def test_store_promise_of_a_longer_window_reopens_a_late_request() -> None:
    late = request(notice_at="2026-03-14T12:00:00+08:00")

    by_law = evaluate(facts(the_request=late))
    promised = evaluate(facts(the_request=late, the_store=store(no_reason_days=15)))

    assert not by_law.verdict("return_refund").open
    assert promised.verdict("return_refund").open
    assert promised.verdict("return_refund").citation.rule_id == "store.no_reason_window"
    assert str(promised.deadlines.return_window_last_day) == "2026-03-16"


def test_longer_store_window_does_not_override_an_exclusion() -> None:
    decision = evaluate(
        facts(order(line(customised=True)), request(notice_at="2026-03-14T12:00:00+08:00"), store(no_reason_days=30))
    )

    assert decision.verdict("return_refund").citation.rule_id == "cn.nr.excluded.customised"


@pytest.mark.parametrize(
    ("store_settings", "flag"),
    [
        pytest.param({"no_reason_returns_disabled": True}, "store.void.no_reason_disabled", id="S1-Art26-S5-Art21-disabled"),
        pytest.param(
            {"extra_excluded_categories": (Category.APPAREL,)},
            "store.void.extra_excluded_categories",
            id="S3-Art30-extra-category",
        ),
        pytest.param({"no_reason_days": 3}, "store.void.short_window", id="S1-Art25-shorter-window"),
    ],
)
def test_unlawful_store_settings_are_flagged_and_ignored(store_settings: dict, flag: str) -> None:
    decision = evaluate(facts(the_request=request(notice_at="2026-03-07T12:00:00+08:00"), the_store=store(**store_settings)))

    assert decision.verdict("return_refund").open
    assert decision.verdict("return_refund").citation.rule_id in {"cn.nr.window", "cn.nr.holiday_extension"}
    assert flag in decision.flag_ids
    assert str(decision.deadlines.return_window_last_day) == "2026-03-08"


def test_free_return_shipping_promise_moves_the_return_leg_to_the_store() -> None:
    decision = evaluate(facts(the_store=store(free_return_shipping=True)))

    assert decision.shipping.return_leg.payer is Payer.MERCHANT
    assert decision.shipping.return_leg.citation.rule_id == "store.free_return_shipping"


def test_shipping_insurance_pays_the_return_leg_up_to_its_cap() -> None:
    decision = evaluate(facts(the_store=store(shipping_insurance=True, shipping_insurance_cap="12.00")))

    assert decision.shipping.return_leg.payer is Payer.INSURER
    assert str(decision.shipping.return_leg.cap) == "12.00"


def test_not_shipped_order_can_be_refunded_in_full_without_return() -> None:
    decision = evaluate(
        facts(order(line(), signed_at=None, shipped_at=None, shipping_fee="8.00"), request(kind="refund_only"))
    )

    assert decision.verdict("refund_only").open
    assert decision.verdict("return_refund").citation.rule_id == "cn.not_shipped.nothing_to_return"
    assert str(decision.refund.amount) == "108.00"


def test_price_drop_is_no_statutory_right_but_a_store_promise() -> None:
    base = request(kind="refund_only", reason="price_drop", current_unit_price="80.00")
    without = evaluate(facts(the_request=base))
    promised = evaluate(
        facts(order(line(), placed_at="2026-02-27T10:00:00+08:00"), base, store(price_protection_days=15))
    )

    assert without.verdict("refund_only").citation.rule_id == "cn.price_drop.not_statutory"
    assert promised.verdict("refund_only").citation.rule_id == "store.price_protection"
    assert str(promised.refund.amount) == "20.00"
