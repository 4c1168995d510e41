"""The store's own promises: applied last, and only where they are more generous than the law.

A promise binds the store (S4 Art 12). A setting that would take away a statutory right — refusing
no-reason returns, excluding more categories than the law does, a window shorter than the law's —
is void (S1 Art 26; S3 Art 30; S4 Art 19(1); S5 Art 21). The engine never applies such a setting:
it flags it for the store admin on every decision. The draft enforces the direction: while this
layer runs, `DecisionDraft.close` refuses to work.
"""

from __future__ import annotations

from decimal import Decimal

from aftersales.policies.decision import Basis, Citation, DecisionDraft, Payer, Remedy, Rule, ShippingLeg
from aftersales.policies.facts import FactsError, Jurisdiction, PlatformMode, Reason
from aftersales.policies.rules import cn_law
from aftersales.policies.rules.calendar import HOLIDAY_NAMES_ZH, Window, add_months, day_window, local_date
from aftersales.policies.rules.cn_law import record_window
from aftersales.policies.rules.context import Context
from aftersales.policies.rules.eu_uk_us import WITHDRAWAL_DAYS, withdrawal_window

US_DEFAULT_STORE_DAYS = 30  # S25: the common posted-policy length; NY GBL §218-a's fallback is 30 days
PROMISE = "店铺承诺；《消费者权益保护法实施条例》第十二条 (store promise; S4 Art 12)"
VOID_CN = (
    "《消费者权益保护法》第二十六条；《网络购买商品七日无理由退货暂行办法》第三十条；"
    "《网络交易监督管理办法》第二十一条 (S1 Art 26; S3 Art 30; S5 Art 21)"
)

STORE_WINDOW = Rule(
    "store.no_reason_window",
    PROMISE,
    "本店承诺 {days} 天无理由退货（至 {last_day} 24:00），您的申请在期限内。",
    "This store promises {days}-day no-reason returns (until 24:00 on {last_day}); your request is "
    "within that time.",
)
STORE_WINDOW_PASSED = Rule(
    "store.no_reason_window_passed",
    PROMISE,
    "本店承诺的 {days} 天退货期已于 {last_day} 24:00 结束。",
    "The store's {days}-day return period ended at 24:00 on {last_day}.",
)
HOLIDAY_EXTENSION = Rule(
    "cn.nr.holiday_extension",
    "《民法典》第二百零三条 (S6 Art 203)",
    "期限最后一日是法定节假日（{holiday}），顺延至节后第一个工作日 {last_day} 24:00。",
    "The last day fell on a public holiday ({holiday}), so the period runs to 24:00 on {last_day}, the "
    "first working day after it.",
)
FREE_RETURN_SHIPPING = Rule(
    "store.free_return_shipping",
    "店铺承诺“包退运费”；《网络购买商品七日无理由退货暂行办法》第十八条第一款 (S3 Art 18(1))",
    "本店承诺承担退货运费。",
    "This store pays the return postage.",
)
SHIPPING_INSURANCE = Rule(
    "store.shipping_insurance",
    "运费险（约定）；《消费者权益保护法》第二十五条第三款 (S1 Art 25(3)); cn-rules §5.4",
    "本单有运费险，退货运费由保险赔付（上限 {cap}），超出部分由您承担。",
    "This order has return-shipping insurance: the insurer pays the return postage up to {cap}, you "
    "pay anything above it.",
)
PRICE_PROTECTION = Rule(
    "store.price_protection",
    PROMISE,
    "本店承诺 {days} 天价格保护：降价差额 {amount} 退还给您。",
    "This store promises {days}-day price protection: the difference of {amount} is refunded to you.",
)
PRICE_PROTECTION_PASSED = Rule(
    "store.price_protection_passed",
    PROMISE,
    "价格保护期 {days} 天已于 {last_day} 结束。",
    "The {days}-day price-protection period ended on {last_day}.",
)
PRICE_NOT_LOWER = Rule(
    "store.price_protection_no_drop",
    PROMISE,
    "现价不低于您的实付单价，没有差额可退。",
    "Today's price is not below what you paid per unit, so there is no difference to refund.",
)
EXTENDED_WARRANTY = Rule(
    "store.extended_warranty",
    PROMISE,
    "本店承诺延长保修 {months} 个月（至 {last_day}），期内可免费维修。",
    "This store extends the warranty by {months} months (until {last_day}): free repair within it.",
)
STORE_WARRANTY = Rule(
    "store.warranty",
    "店铺保修承诺 (store warranty); S25",
    "在商家保修期内（至 {last_day}），可以免费维修或更换。",
    "Within the store's warranty (until {last_day}) the item is repaired or replaced free of charge.",
)
US_STORE_RETURN = Rule(
    "us.store_policy.window",
    "商家退货政策 (store return policy); S25",
    "按本店退货政策，收货后 {days} 天内（至 {last_day}）可以退货。",
    "Under this store's return policy you may return goods within {days} days of delivery (until "
    "{last_day}).",
)
US_STORE_RETURN_PASSED = Rule(
    "us.store_policy.window_passed",
    "商家退货政策 (store return policy); S25",
    "本店 {days} 天退货期已于 {last_day} 结束。",
    "The store's {days}-day return period ended on {last_day}.",
)
VOID_NO_REASON_DISABLED = Rule(
    "store.void.no_reason_disabled",
    VOID_CN,
    "店铺设置了“不支持七天无理由退货”：该条款限制消费者法定权利，无效，系统已忽略；请关闭此设置。",
    "The store setting 'no no-reason returns' takes away a statutory right, is void and was ignored; "
    "switch it off.",
)
VOID_EXTRA_EXCLUSIONS = Rule(
    "store.void.extra_excluded_categories",
    "《网络购买商品七日无理由退货暂行办法》第三十条；《消费者权益保护法实施条例》第十九条第一款 (S3 Art 30; S4 Art 19(1))",
    "店铺额外排除了法定范围以外的品类（{categories}）：不得擅自扩大不适用范围，系统已忽略。",
    "The store excludes categories beyond the statutory list ({categories}); a store may not widen the "
    "exclusions, so this was ignored.",
)
VOID_SHORT_WINDOW = Rule(
    "store.void.short_window",
    "《消费者权益保护法》第二十五条、第二十六条 (S1 Arts 25, 26); S22; S24",
    "店铺设置的 {days} 天退货期短于法定的 {legal} 天，无效，系统按法定期限处理。",
    "The store's {days}-day return period is shorter than the statutory {legal} days; it is void and "
    "the statutory period applies.",
)
VOID_EU = Rule(
    "store.void.withdrawal_restricted",
    "Directive 2011/83/EU Arts 16, 25 (S22); Consumer Contracts Regulations 2013 (S24)",
    "店铺设置限制了法定撤回权（如“拆封不退”“特价不退”），无效，系统已忽略。",
    "A store setting restricts the statutory right of withdrawal (such as 'only unopened' or 'no "
    "returns on sale items'); it is void and was ignored.",
)

STATUTORY_NO_REASON_DAYS = {Jurisdiction.CN: cn_law.NO_REASON_DAYS, Jurisdiction.EU: WITHDRAWAL_DAYS, Jurisdiction.UK: WITHDRAWAL_DAYS}


def apply(ctx: Context, draft: DecisionDraft) -> None:
    flag_void_settings(ctx, draft)
    draft.store_layer = True
    try:
        if ctx.shipped:
            _return_window(ctx, draft)
            _warranty(ctx, draft)
            _price_protection(ctx, draft)
        _return_shipping(ctx, draft)
    finally:
        draft.store_layer = False


def flag_void_settings(ctx: Context, draft: DecisionDraft) -> None:
    store = ctx.facts.store
    jurisdiction = store.jurisdiction
    if jurisdiction is Jurisdiction.US:
        return  # S25: with no statutory right, the store's own restrictions are its policy to make.
    eu_or_uk = jurisdiction is not Jurisdiction.CN
    if store.no_reason_returns_disabled:
        draft.flag((VOID_EU if eu_or_uk else VOID_NO_REASON_DISABLED).cite())
    if store.extra_excluded_categories:
        names = ", ".join(category.value for category in store.extra_excluded_categories)
        draft.flag((VOID_EU if eu_or_uk else VOID_EXTRA_EXCLUSIONS).cite(categories=names))
    promised = store.promises.no_reason_days
    legal = STATUTORY_NO_REASON_DAYS[jurisdiction]
    if promised is not None and promised < legal:
        draft.flag(VOID_SHORT_WINDOW.cite(days=promised, legal=legal))


def extend_on_holiday(ctx: Context) -> bool:
    """The store's choice, or by default on in law-floor mode and off on platforms (cn-rules §1)."""
    setting = ctx.facts.store.promises.extend_on_public_holiday
    if setting is not None:
        return setting
    return ctx.facts.store.platform_mode is PlatformMode.NONE


def _return_window(ctx: Context, draft: DecisionDraft) -> None:
    store = ctx.facts.store
    notice_at = ctx.facts.request.notice_at
    promised = store.promises.no_reason_days
    if store.jurisdiction is Jurisdiction.US:
        _us_store_policy(ctx, draft)
        return
    legal = STATUTORY_NO_REASON_DAYS[store.jurisdiction]
    days = max(promised or legal, legal)
    if draft.basis is Basis.NO_REASON:
        extend = extend_on_holiday(ctx)
        if days == legal and not extend:
            return
        window = cn_law.no_reason_window(ctx, days, extend=extend)
    elif draft.basis is Basis.WITHDRAWAL:
        if days == legal:
            return
        info_missing = store.jurisdiction is Jurisdiction.EU and not ctx.facts.eu_withdrawal_info_given
        window = withdrawal_window(ctx, days, eu_info_missing=info_missing)
    else:
        return
    if draft.window_last_day is not None and window.last_day <= draft.window_last_day:
        return
    record_window(draft, window)
    if draft.window_closed_only and window.contains(notice_at):
        draft.open(Remedy.RETURN_REFUND, _window_citation(window, days, legal))
        draft.window_closed_only = False


def _window_citation(window: Window, days: int, legal: int) -> Citation:
    last_day = window.last_day.isoformat()
    if window.extended_for is not None and days == legal:
        name = window.extended_for
        return HOLIDAY_EXTENSION.cite(holiday=f"{HOLIDAY_NAMES_ZH.get(name, name)} / {name}", last_day=last_day)
    return STORE_WINDOW.cite(days=days, last_day=last_day)


def _us_store_policy(ctx: Context, draft: DecisionDraft) -> None:
    promises = ctx.facts.store.promises
    if not promises.store_return_policy or draft.basis not in (Basis.STORE_POLICY, Basis.SELLER_FAULT):
        return
    days = promises.no_reason_days or US_DEFAULT_STORE_DAYS
    assert ctx.signed_day is not None
    window = day_window(ctx.signed_day, days, ctx.tz)
    record_window(draft, window)
    last_day = window.last_day.isoformat()
    if window.contains(ctx.facts.request.notice_at):
        draft.open(Remedy.RETURN_REFUND, US_STORE_RETURN.cite(days=days, last_day=last_day))
        draft.window_closed_only = False
        if draft.basis is Basis.STORE_POLICY:
            draft.no_reason_deductions = False
    else:
        draft.explain_closed(Remedy.RETURN_REFUND, US_STORE_RETURN_PASSED.cite(days=days, last_day=last_day))


def _warranty(ctx: Context, draft: DecisionDraft) -> None:
    if draft.basis is not Basis.SELLER_FAULT or ctx.service_start_day is None:
        return
    extra = ctx.facts.store.promises.extended_warranty_months
    jurisdiction = ctx.facts.store.jurisdiction
    lines = [line for line, _ in ctx.returned]
    if jurisdiction is Jurisdiction.CN:
        if extra == 0 or draft.is_open(Remedy.REPAIR):
            return
        last_days = [cn_law.warranty_status(ctx, line, extra).last_day for line in lines]
        if all(day is not None and ctx.notice_day <= day for day in last_days):
            last_day = min(day for day in last_days if day is not None)
            draft.warranty_last_day = last_day
            draft.open(Remedy.REPAIR, EXTENDED_WARRANTY.cite(months=extra, last_day=last_day.isoformat()))
        return
    months = min(line.warranty_months for line in lines) + extra
    if months == 0:
        return
    last_day = add_months(ctx.service_start_day, months)
    if jurisdiction is not Jurisdiction.US and draft.warranty_last_day is not None and last_day <= draft.warranty_last_day:
        return
    if ctx.notice_day <= last_day:
        draft.warranty_last_day = last_day
        citation = STORE_WARRANTY.cite(last_day=last_day.isoformat())
        draft.open(Remedy.REPAIR, citation)
        draft.open(Remedy.EXCHANGE, citation)


def _price_protection(ctx: Context, draft: DecisionDraft) -> None:
    request = ctx.facts.request
    days = ctx.facts.store.promises.price_protection_days
    if request.reason is not Reason.PRICE_DROP or not days:
        return
    draft.basis = Basis.PRICE_PROTECTION
    if request.current_unit_price is None:
        raise FactsError("request.current_unit_price", "today's unit price is needed to decide a price-drop claim")
    order = ctx.facts.order
    bought = order.placed_at or order.signed_at
    if bought is None:
        raise FactsError("order.placed_at", "the order time is needed to decide a price-drop claim")
    start = local_date(bought, ctx.tz)
    window = day_window(start, days, ctx.tz)
    if not window.contains(request.notice_at):
        draft.explain_closed(
            Remedy.REFUND_ONLY, PRICE_PROTECTION_PASSED.cite(days=days, last_day=window.last_day.isoformat())
        )
        return
    difference = Decimal("0")
    for line, qty in ctx.returned:
        paid_unit = line.net_amount / line.quantity
        if paid_unit > request.current_unit_price:
            difference += (paid_unit - request.current_unit_price) * qty
    if difference <= 0:
        draft.explain_closed(Remedy.REFUND_ONLY, PRICE_NOT_LOWER.cite())
        return
    draft.price_difference = difference
    draft.open(Remedy.REFUND_ONLY, PRICE_PROTECTION.cite(days=days, amount=f"{difference:.2f}"))
    draft.outbound = draft.return_leg = draft.reship = cn_law.not_applicable_leg()


def _return_shipping(ctx: Context, draft: DecisionDraft) -> None:
    leg = draft.return_leg
    if leg is None or leg.payer is not Payer.BUYER:
        return
    promises = ctx.facts.store.promises
    if promises.free_return_shipping:
        draft.return_leg = FREE_RETURN_SHIPPING.leg(Payer.MERCHANT)
    elif promises.shipping_insurance:
        cap = promises.shipping_insurance_cap
        shown = "—" if cap is None else f"{cap}"
        draft.return_leg = ShippingLeg(Payer.INSURER, SHIPPING_INSURANCE.cite(cap=shown), cap)

