"""Statutory floors outside China: EU (S22, S23), UK (S24) and US (S25).

The EU and the UK give a 14-day right of withdrawal/cancellation for distance sales and a separate
remedy scheme for faulty goods; the US gives no general return right for online sales at all, so
there the store's own policy (applied in the store layer) is the only source of one.
"""

from __future__ import annotations

from aftersales.policies.decision import Basis, Citation, DecisionDraft, Payer, Remedy, Rule, ShippingLeg
from aftersales.policies.facts import NO_REASON_REASONS, SELLER_FAULT_REASONS, OrderLine, Reason
from aftersales.policies.rules.calendar import Window, add_months, day_window
from aftersales.policies.rules.cn_law import apply_not_shipped, not_applicable_leg, record_window
from aftersales.policies.rules.context import Context

WITHDRAWAL_DAYS = 14  # S22 Art 9(1); S24 (CCR 2013)
NO_INFO_EXTENSION_MONTHS = 12  # S22 Art 10(1)
REFUND_DAYS = 14  # S22 Art 13; S24
EU_CONFORMITY_MONTHS = 24  # S23 Art 10
UK_SHORT_TERM_REJECT_DAYS = 30  # S24 (CRA 2015 s 22)
UK_CLAIM_MONTHS = 72  # S24: six years to bring a claim in England and Wales

EU_WINDOW = "Directive 2011/83/EU Art 9 (S22)"
EU_EXTENDED = "Directive 2011/83/EU Art 10 (S22)"
EU_EXCEPTIONS = "Directive 2011/83/EU Art 16 (S22)"
EU_COSTS = "Directive 2011/83/EU Arts 13, 14 (S22)"
EU_CONFORMITY = "Directive (EU) 2019/771 Arts 10, 13, 14 (S23)"
UK_CANCEL = "Consumer Contracts Regulations 2013 (S24)"
UK_CRA = "Consumer Rights Act 2015 ss 20–24 (S24)"
US_NONE = "FTC Cooling-Off Rule; state refund-policy laws (S25)"


# --- EU --------------------------------------------------------------------------------------------
EU_WITHDRAWAL_OPEN = Rule(
    "eu.withdrawal.window",
    EU_WINDOW,
    "您在收货后 14 天内（{last_day} 24:00 前）发出了撤回通知，可以无理由撤回合同并退货。",
    "You gave notice within 14 days of receiving the goods (before the end of {last_day}), so you may "
    "withdraw from the contract and return them without giving a reason.",
)
EU_WITHDRAWAL_EXTENDED = Rule(
    "eu.withdrawal.no_info_extension",
    EU_EXTENDED,
    "商家未告知撤回权，撤回期延长 12 个月，至 {last_day}。",
    "The trader did not tell you about your right of withdrawal, so the period is extended by 12 "
    "months, until {last_day}.",
)
EU_WITHDRAWAL_PASSED = Rule(
    "eu.withdrawal.window_passed",
    EU_WINDOW,
    "14 天撤回期已于 {last_day} 结束。",
    "The 14-day withdrawal period ended on {last_day}.",
)
EU_EXCEPTION = Rule(
    "eu.withdrawal.exception",
    EU_EXCEPTIONS,
    "{sku} 属于不适用撤回权的商品（{what_zh}）。",
    "{sku} is exempt from the right of withdrawal ({what_en}).",
)
EU_NOT_EXCHANGE = Rule(
    "eu.withdrawal.no_exchange",
    EU_WINDOW,
    "撤回权是退货退款的权利，不包括换货或维修。",
    "The right of withdrawal is a right to return for a refund; it does not include an exchange or a "
    "repair.",
)
EU_DIMINISHED_VALUE = Rule(
    "eu.withdrawal.diminished_value",
    "Directive 2011/83/EU Art 14(2) (S22)",
    "商品的使用超出了确认其性质和功能所需的程度，商家可以就贬值部分要求赔偿，但不能拒绝撤回。",
    "The goods were handled beyond what is needed to establish their nature and functioning: the "
    "trader may claim the loss in value, but cannot refuse the withdrawal.",
)
EU_RETURN_COST_BUYER = Rule(
    "eu.withdrawal.return_cost_buyer",
    EU_COSTS,
    "撤回时退回商品的直接费用由您承担；商家退还全部价款和标准运费。",
    "You bear the direct cost of sending the goods back; the trader refunds the price and the standard "
    "delivery cost.",
)
EU_RETURN_COST_TRADER = Rule(
    "eu.withdrawal.return_cost_trader",
    EU_COSTS,
    "商家未告知您需承担退货费用，退货费用由商家承担。",
    "The trader did not tell you that you bear the cost of returning the goods, so the trader bears it.",
)
EU_OUTBOUND_REFUNDED = Rule(
    "eu.withdrawal.delivery_refunded",
    EU_COSTS,
    "撤回后商家须在 14 天内退还全部款项，包括标准运费。",
    "After a withdrawal the trader refunds all payments within 14 days, including standard delivery.",
)
EU_CONFORMITY_REMEDY = Rule(
    "eu.conformity.repair_or_replace",
    EU_CONFORMITY,
    "收货后两年内出现不符合合同的情况，您可以选择免费修理或更换；修理失败后可以解除合同退款。",
    "A lack of conformity within two years of delivery: you choose a free repair or a replacement; if "
    "that fails you may terminate the contract for a refund.",
)
EU_CONFORMITY_TERMINATE = Rule(
    "eu.conformity.termination",
    EU_CONFORMITY,
    "修理未能解决问题，您可以解除合同并获得退款。",
    "The repair did not bring the goods into conformity, so you may terminate the contract for a refund.",
)
EU_CONFORMITY_EXPIRED = Rule(
    "eu.conformity.expired",
    EU_CONFORMITY,
    "交付已超过两年，卖方不再承担不符合合同的责任。",
    "More than two years have passed since delivery, so the seller is no longer liable for lack of "
    "conformity.",
)
EU_COSTS_TRADER = Rule(
    "eu.conformity.free_of_charge",
    EU_CONFORMITY,
    "修理、更换或退货的运输费用由卖方承担。",
    "Repair, replacement or return is free of charge for you, shipping included.",
)
EU_NOT_SHIPPED = Rule(
    "eu.withdrawal.before_delivery",
    EU_WINDOW,
    "商品尚未发出，您可以撤回合同并获得全部退款。",
    "The goods have not been dispatched: you may withdraw and get every payment back.",
)
EU_NOTHING = Rule(
    "eu.not_shipped.nothing_to_return",
    EU_WINDOW,
    "商品尚未发出，没有可退回、更换或维修的商品。",
    "Nothing has been dispatched yet, so there is nothing to return, replace or repair.",
)
NOT_STATUTORY = Rule(
    "intl.not_statutory",
    "S22; S24; S25",
    "该售后方式不是法定权利，只有商家承诺时才适用。",
    "This remedy is not a legal right here; it applies only where the store promises it.",
)

# --- UK --------------------------------------------------------------------------------------------
UK_CANCEL_OPEN = Rule(
    "uk.cancel.window",
    UK_CANCEL,
    "您在收货后 14 天内（{last_day} 前）取消了订单，可以退货退款。",
    "You cancelled within 14 days after the day of delivery (by the end of {last_day}), so you may "
    "return the goods for a refund.",
)
UK_CANCEL_PASSED = Rule(
    "uk.cancel.window_passed",
    UK_CANCEL,
    "14 天取消期已于 {last_day} 结束。",
    "The 14-day cancellation period ended on {last_day}.",
)
UK_EXCEPTION = Rule(
    "uk.cancel.exception",
    UK_CANCEL,
    "{sku} 属于不适用取消权的商品（{what_zh}）。",
    "{sku} is exempt from the right to cancel ({what_en}).",
)
UK_SHORT_TERM_REJECT = Rule(
    "uk.cra.short_term_reject",
    UK_CRA,
    "有缺陷的商品在收货 30 天内（第 {day} 天），您可以拒收并获得全额退款，也可以要求修理或更换。",
    "Faulty goods within 30 days of delivery (day {day}): you may reject them for a full refund, or ask "
    "for a repair or a replacement.",
)
UK_REPAIR_FIRST = Rule(
    "uk.cra.repair_or_replace",
    UK_CRA,
    "收货已超过 30 天：商家有一次修理或更换的机会；失败后您可以要求减价或最终拒收退款。",
    "More than 30 days after delivery: the trader gets one chance to repair or replace; if that fails "
    "you may ask for a price reduction or a final rejection with a refund.",
)
UK_FINAL_REJECT = Rule(
    "uk.cra.final_reject",
    UK_CRA,
    "修理或更换未能解决问题，您可以最终拒收并获得退款（长期使用可能扣减）。",
    "The repair or replacement failed, so you may make a final rejection for a refund (less a "
    "deduction for use, where allowed).",
)
UK_TOO_LATE = Rule(
    "uk.cra.time_limit",
    UK_CRA,
    "已超过主张权利的期限。",
    "The time limit for bringing a claim has passed.",
)

# --- US --------------------------------------------------------------------------------------------
US_NO_STATUTORY_RETURN = Rule(
    "us.no_statutory_return",
    US_NONE,
    "美国法律没有为网购规定一般的退货权，退货以商家公布的退货政策为准。",
    "US law gives no general right to return goods bought online; the store's posted return policy "
    "decides.",
)
US_NO_STATUTORY_FAULT = Rule(
    "us.store_warranty",
    US_NONE,
    "有缺陷的商品按商家的退货政策和保修条款处理。",
    "Faulty goods are handled under the store's return policy and warranty.",
)
US_NOT_SHIPPED = Rule(
    "us.not_shipped.cancel",
    US_NONE,
    "订单尚未发货，可以取消并全额退款。",
    "The order has not shipped; it can be cancelled for a full refund.",
)


def _exception(line: OrderLine, seal_broken: bool) -> tuple[str, str] | None:
    """The Art 16 / CCR exceptions. Unlike China, none of them needs a checkout confirmation."""
    if line.customised:
        return "按消费者要求定制", "made to the consumer's specifications"
    if line.perishable:
        return "易迅速变质", "liable to deteriorate rapidly"
    if line.sealed_media and seal_broken:
        return "已拆封的音像制品或软件", "sealed audio, video or software unsealed after delivery"
    if line.hygiene_sensitive and seal_broken:
        return "因健康卫生原因密封且已拆封", "sealed for health or hygiene reasons and unsealed"
    if line.periodical:
        return "报纸或期刊", "newspaper or periodical"
    if line.digital_download:
        return "经您事先同意开始提供的数字内容", "digital content supplied with the consumer's prior consent"
    return None


def withdrawal_window(ctx: Context, days: int, *, eu_info_missing: bool) -> Window:
    assert ctx.signed_day is not None
    window = day_window(ctx.signed_day, days, ctx.tz)
    if eu_info_missing:
        window = day_window(add_months(window.last_day, NO_INFO_EXTENSION_MONTHS), 0, ctx.tz)
    return window


def apply_eu(ctx: Context, draft: DecisionDraft) -> None:
    _apply_distance(ctx, draft, uk=False)


def apply_uk(ctx: Context, draft: DecisionDraft) -> None:
    _apply_distance(ctx, draft, uk=True)


def _apply_distance(ctx: Context, draft: DecisionDraft, *, uk: bool) -> None:
    draft.refund_due_days = REFUND_DAYS
    if not ctx.shipped:
        apply_not_shipped(draft, EU_NOT_SHIPPED.cite(), EU_NOTHING.cite())
        return
    reason = ctx.facts.request.reason
    if reason in NO_REASON_REASONS:
        _withdrawal(ctx, draft, uk=uk)
    elif reason in SELLER_FAULT_REASONS or reason is Reason.LATE_DELIVERY:
        (_uk_faulty if uk else _eu_conformity)(ctx, draft)
    else:
        draft.basis = Basis.PRICE_PROTECTION
        citation = NOT_STATUTORY.cite()
        for remedy in (Remedy.RETURN_REFUND, Remedy.REFUND_ONLY, Remedy.EXCHANGE, Remedy.REPAIR):
            draft.close(remedy, citation)


def _withdrawal(ctx: Context, draft: DecisionDraft, *, uk: bool) -> None:
    facts = ctx.facts
    draft.basis = Basis.WITHDRAWAL
    draft.refund_outbound_shipping = True
    draft.refund_due_rule = EU_OUTBOUND_REFUNDED.cite()
    info_missing = not uk and not facts.eu_withdrawal_info_given
    window = withdrawal_window(ctx, WITHDRAWAL_DAYS, eu_info_missing=info_missing)
    record_window(draft, window)
    last_day = window.last_day.isoformat()
    goods = facts.request.goods
    exception: Citation | None = None
    for line, _qty in ctx.returned:
        what = _exception(line, goods.seal_broken)
        if what is not None:
            rule = UK_EXCEPTION if uk else EU_EXCEPTION
            exception = rule.cite(sku=line.sku, what_zh=what[0], what_en=what[1])
            break
    if exception is not None:
        draft.close(Remedy.RETURN_REFUND, exception)
    elif window.contains(facts.request.notice_at):
        if info_missing:
            citation = EU_WITHDRAWAL_EXTENDED.cite(last_day=last_day)
        else:
            citation = (UK_CANCEL_OPEN if uk else EU_WITHDRAWAL_OPEN).cite(last_day=last_day)
        draft.open(Remedy.RETURN_REFUND, citation)
    else:
        draft.close(Remedy.RETURN_REFUND, (UK_CANCEL_PASSED if uk else EU_WITHDRAWAL_PASSED).cite(last_day=last_day))
        draft.window_closed_only = True
    if goods.used_beyond_inspection:
        draft.notes.append(EU_DIMINISHED_VALUE.cite())
        draft.auto_block = EU_DIMINISHED_VALUE.cite()
    not_statutory = EU_NOT_EXCHANGE.cite()
    for remedy in (Remedy.REFUND_ONLY, Remedy.EXCHANGE, Remedy.REPAIR):
        draft.close(remedy, not_statutory)
    draft.outbound = EU_OUTBOUND_REFUNDED.leg(Payer.MERCHANT)
    if info_missing:
        draft.return_leg = EU_RETURN_COST_TRADER.leg(Payer.MERCHANT)
    else:
        draft.return_leg = EU_RETURN_COST_BUYER.leg(Payer.BUYER)
    draft.reship = not_applicable_leg()


def _eu_conformity(ctx: Context, draft: DecisionDraft) -> None:
    draft.basis = Basis.SELLER_FAULT
    draft.refund_outbound_shipping = True
    start = ctx.service_start_day
    assert start is not None
    legs = EU_COSTS_TRADER.leg(Payer.MERCHANT)
    draft.outbound = draft.return_leg = draft.reship = legs
    last_day = add_months(start, EU_CONFORMITY_MONTHS)
    draft.warranty_last_day = last_day
    draft.close(Remedy.REFUND_ONLY, NOT_STATUTORY.cite())
    if ctx.notice_day > last_day:
        expired = EU_CONFORMITY_EXPIRED.cite()
        for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR):
            draft.close(remedy, expired)
        return
    remedy_citation = EU_CONFORMITY_REMEDY.cite()
    draft.open(Remedy.REPAIR, remedy_citation)
    draft.open(Remedy.EXCHANGE, remedy_citation)
    if _failed_repairs(ctx) >= 1:
        draft.open(Remedy.RETURN_REFUND, EU_CONFORMITY_TERMINATE.cite())
    else:
        draft.close(Remedy.RETURN_REFUND, remedy_citation)


def _uk_faulty(ctx: Context, draft: DecisionDraft) -> None:
    draft.basis = Basis.SELLER_FAULT
    draft.refund_outbound_shipping = True
    day = ctx.day_number
    assert day is not None and ctx.service_start_day is not None
    legs = UK_REPAIR_FIRST.leg(Payer.MERCHANT)
    draft.outbound = draft.return_leg = draft.reship = legs
    draft.close(Remedy.REFUND_ONLY, NOT_STATUTORY.cite())
    if ctx.notice_day > add_months(ctx.service_start_day, UK_CLAIM_MONTHS):
        late = UK_TOO_LATE.cite()
        for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR):
            draft.close(remedy, late)
        return
    if day <= UK_SHORT_TERM_REJECT_DAYS:
        citation = UK_SHORT_TERM_REJECT.cite(day=day)
        for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR):
            draft.open(remedy, citation)
        return
    citation = UK_REPAIR_FIRST.cite()
    draft.open(Remedy.REPAIR, citation)
    draft.open(Remedy.EXCHANGE, citation)
    if _failed_repairs(ctx) >= 1:
        draft.open(Remedy.RETURN_REFUND, UK_FINAL_REJECT.cite())
    else:
        draft.close(Remedy.RETURN_REFUND, citation)


def _failed_repairs(ctx: Context) -> int:
    line_ids = {line.line_id for line, _ in ctx.returned}
    return sum(1 for r in ctx.facts.history.repairs if r.failed and (r.line_id is None or r.line_id in line_ids))


def apply_us(ctx: Context, draft: DecisionDraft) -> None:
    """S25: no federal return right for online sales; everything opens (or not) in the store layer."""
    draft.refund_due_days = None
    if not ctx.shipped:
        apply_not_shipped(draft, _us_cancel(), _us_cancel())
        return
    reason = ctx.facts.request.reason
    fault = reason in SELLER_FAULT_REASONS or reason is Reason.LATE_DELIVERY
    if reason in NO_REASON_REASONS:
        draft.basis = Basis.STORE_POLICY
    elif fault:
        draft.basis = Basis.SELLER_FAULT
        draft.refund_outbound_shipping = True
    else:
        draft.basis = Basis.PRICE_PROTECTION
    citation = (US_NO_STATUTORY_FAULT if fault else US_NO_STATUTORY_RETURN).cite()
    for remedy in (Remedy.RETURN_REFUND, Remedy.REFUND_ONLY, Remedy.EXCHANGE, Remedy.REPAIR):
        draft.close(remedy, citation)
    draft.window_closed_only = reason in NO_REASON_REASONS or fault
    payer = Payer.MERCHANT if fault else Payer.BUYER
    draft.outbound = ShippingLeg(payer, citation)
    draft.return_leg = ShippingLeg(payer, citation)
    draft.reship = ShippingLeg(Payer.MERCHANT if fault else Payer.NOT_APPLICABLE, citation)


def _us_cancel() -> Citation:
    return US_NOT_SHIPPED.cite()


def us_store_window(ctx: Context, days: int) -> Window:
    assert ctx.signed_day is not None
    return day_window(ctx.signed_day, days, ctx.tz)

