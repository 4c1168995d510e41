"""How much goes back, and to which payment method.

The order of operations follows S3 Arts 12–18: the refund is what the buyer actually paid for the
returned goods (Art 17(1)); a partial return that breaks a 满减 settles the kept goods at their item
prices (Art 17(2)); a partial return that breaks 包邮 lets the store keep the outbound postage
(Art 18(2)); an unreturned gift costs its pre-stated value (Art 12(2)); each payment method gets its
own share back (Art 14), coupons and points in kind (Art 15); a card fee the store absorbed may be
deducted (Art 16). Money is rounded once, to the currency's minor unit, and the split is allocated by
largest remainder so that the parts always add up to the refund exactly.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from aftersales.policies.decision import (
    Basis,
    DecisionDraft,
    Deduction,
    Refund,
    RefundPart,
    Remedy,
    Rule,
)
from aftersales.policies.facts import (
    CARD_METHODS,
    IN_KIND_METHODS,
    FeeBearer,
    RequestKind,
    best_full_reduction,
)
from aftersales.policies.rules.context import Context

ZERO = Decimal("0")
MINOR_UNITS = {"JPY": 0, "KRW": 0}

PROMOTION_SETTLEMENT = Rule(
    "cn.nr.promotion_settlement",
    "《网络购买商品七日无理由退货暂行办法》第十七条第二款 (S3 Art 17(2))",
    "部分退货后剩余商品不再满足满减条件，剩余商品按购买时的商品价格结算，多退少补。",
    "After this partial return the rest of the order no longer meets the spend-and-save threshold, so "
    "the kept items are settled at their item prices and the difference is taken from the refund.",
)
FREE_SHIPPING_CLAWBACK = Rule(
    "cn.nr.free_shipping_clawback",
    "《网络购买商品七日无理由退货暂行办法》第十八条第二款 (S3 Art 18(2))",
    "部分退货后剩余商品不再满足包邮条件，商家可以从退款中扣除发货运费。",
    "After this partial return the rest of the order no longer qualifies for free shipping, so the "
    "store may deduct the outbound shipping from the refund.",
)
CLAWBACK_UNKNOWN_FEE = Rule(
    "cn.nr.free_shipping_fee_unknown",
    "《网络购买商品七日无理由退货暂行办法》第十八条第二款 (S3 Art 18(2))",
    "部分退货打破包邮条件，但订单未记录标准运费，无法扣除；请在订单中补充标准运费。",
    "A partial return broke free shipping, but the order has no standard shipping fee, so nothing was "
    "deducted; record the standard fee on the order.",
)
GIFT_NOT_RETURNED = Rule(
    "cn.nr.gift_not_returned",
    "《网络购买商品七日无理由退货暂行办法》第十二条第二款 (S3 Art 12(2))",
    "赠品未随商品退回，按商家事先标明的赠品价格从退款中扣除。",
    "The free gift was not sent back with the goods, so its value as stated at sale is deducted from "
    "the refund.",
)
GIFT_VALUE_UNKNOWN = Rule(
    "cn.nr.gift_value_unknown",
    "《网络购买商品七日无理由退货暂行办法》第十二条第二款 (S3 Art 12(2)); 淘宝规则第六十三条 (S13 Art 63)",
    "赠品未退回，但商家没有事先标明赠品价格，不能自行定价扣款；需人工处理（平台模式下由平台评估）。",
    "The gift was not returned but no gift value was stated at sale, so the store cannot set one now; "
    "handle it by hand (on a platform, the platform assesses it).",
)
CARD_FEE = Rule(
    "cn.nr.card_fee",
    "《网络购买商品七日无理由退货暂行办法》第十六条 (S3 Art 16)",
    "商家为您承担了信用卡手续费，退货时可以按退款比例扣除这部分手续费。",
    "The store paid the card fee for you, so it may deduct the share of that fee on the refund.",
)
CARD_FEE_KEPT = Rule(
    "cn.nr.card_fee_buyer",
    "《网络购买商品七日无理由退货暂行办法》第十六条 (S3 Art 16)",
    "您支付的信用卡手续费不予退还。",
    "The card fee you paid yourself is not refunded.",
)
BUYER_OWES = Rule(
    "cn.nr.buyer_owes",
    "《网络购买商品七日无理由退货暂行办法》第十七条第二款 (S3 Art 17(2))",
    "扣除项超过应退金额（多退少补）：退款为零，差额需与买家结算。",
    "Deductions exceed the refund (settle either way): the refund is zero and the difference is to "
    "be settled with the buyer.",
)


_QUANTA: dict[str, Decimal] = {}
KIND_TO_REMEDY = {kind: Remedy(kind.value) for kind in RequestKind}


def quantum(currency: str) -> Decimal:
    step = _QUANTA.get(currency)
    if step is None:
        step = _QUANTA[currency] = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return step


def rounded(amount: Decimal, step: Decimal) -> Decimal:
    return amount.quantize(step, rounding=ROUND_HALF_UP)


def breaks_free_shipping(ctx: Context) -> bool:
    """S3 Art 18(2): the order shipped free, and what is kept no longer reaches the threshold."""
    order = ctx.facts.order
    threshold = order.free_shipping_threshold
    if threshold is None or order.shipping_fee > 0 or ctx.full_return:
        return False
    subtotal = ctx.subtotal
    paid_goods = subtotal - best_full_reduction(subtotal, order.full_reductions)
    if paid_goods < threshold:
        return False  # it never qualified; free shipping was the store's gift, nothing to claw back
    kept = subtotal - ctx.returned_subtotal
    kept_paid = kept - best_full_reduction(kept, order.full_reductions)
    return kept_paid < threshold


def allocate(total: Decimal, weights: list[Decimal], step: Decimal) -> list[Decimal]:
    """Split `total` in proportion to `weights`, in whole minor units, summing exactly to `total`.

    Largest remainder in integer minor units: each part is floor(units × weight / sum), and the
    units left over go to the parts with the largest remainders (ties to the earlier payment).
    """
    weight_sum = sum(weights, ZERO)
    if total <= ZERO or weight_sum <= ZERO:
        return [ZERO for _ in weights]
    if total == weight_sum:
        return [rounded(weight, step) for weight in weights]  # a full refund: every method in full
    units = int(total / step)
    minor = [int(weight / step) for weight in weights]
    minor_sum = sum(minor)
    shares = [divmod(units * weight, minor_sum) for weight in minor]
    counts = [share[0] for share in shares]
    leftover = units - sum(counts)
    if leftover:
        by_remainder = sorted(range(len(shares)), key=lambda i: (-shares[i][1], i))
        for index in by_remainder[:leftover]:
            counts[index] += 1
    return [step * count for count in counts]


def empty_refund(currency: str) -> Refund:
    zero = rounded(ZERO, quantum(currency))
    return Refund(currency, zero, zero, (), zero, ())


def compute_refund(ctx: Context, draft: DecisionDraft) -> Refund:
    facts = ctx.facts
    order = facts.order
    currency = order.currency
    step = quantum(currency)
    kind = facts.request.kind
    if kind is RequestKind.EXCHANGE or kind is RequestKind.REPAIR or not draft.is_open(KIND_TO_REMEDY[kind]):
        return empty_refund(currency)

    if draft.basis is Basis.PRICE_PROTECTION:
        difference = rounded(draft.price_difference or ZERO, step)
        return _split(ctx, draft, difference, rounded(ZERO, step), [], step)

    deductions: list[Deduction] = []
    subtotal = ctx.subtotal
    reduction = best_full_reduction(subtotal, order.full_reductions)
    returned = ctx.returned_subtotal
    # Actually paid for the returned goods: their share of the order after 满减 (S3 Art 17(1)).
    goods_paid = returned if subtotal == 0 else returned - reduction * returned / subtotal
    goods_paid = rounded(goods_paid, step)

    settle = draft.no_reason_deductions
    if settle and reduction > 0 and not ctx.full_return:
        kept = subtotal - returned
        kept_reduction = best_full_reduction(kept, order.full_reductions)
        if kept_reduction < reduction:
            # S3 Art 17(2): the kept goods pay their item prices (less any tier they still reach).
            settled = (subtotal - reduction) - (kept - kept_reduction)
            difference = goods_paid - rounded(settled, step)
            if difference > 0:
                deductions.append(Deduction("promotion_settlement", difference, PROMOTION_SETTLEMENT.cite()))

    shipping = rounded(ZERO, step)
    if draft.refund_outbound_shipping and ctx.full_return:
        shipping = rounded(order.shipping_fee, step)

    if settle and breaks_free_shipping(ctx):
        if order.standard_shipping_fee is not None:
            deductions.append(
                Deduction("free_shipping_clawback", rounded(order.standard_shipping_fee, step), FREE_SHIPPING_CLAWBACK.cite())
            )
        else:
            draft.flag(CLAWBACK_UNKNOWN_FEE.cite())

    if settle and not facts.request.goods.gift_returned:
        _gift_deductions(ctx, draft, deductions, step)

    if draft.depreciation is not None and kind is RequestKind.RETURN_REFUND:
        rate, days, citation = draft.depreciation
        charge = rounded(goods_paid * rate * days, step)
        if charge > 0:
            deductions.append(Deduction("depreciation", min(charge, goods_paid), citation))

    return _split(ctx, draft, goods_paid + shipping, goods_paid, deductions, step, shipping=shipping)


def _gift_deductions(ctx: Context, draft: DecisionDraft, deductions: list[Deduction], step: Decimal) -> None:
    fully_returned = {line.line_id for line, qty in ctx.returned if qty == line.quantity}
    value = ZERO
    unknown = False
    for line in ctx.facts.order.lines:
        if not line.is_gift:
            continue
        due_back = line.gift_for_line in fully_returned if line.gift_for_line else ctx.full_return
        if not due_back:
            continue
        if line.gift_declared_value is None:
            unknown = True
        else:
            value += line.gift_declared_value * line.quantity
    if value > 0:
        deductions.append(Deduction("gift_not_returned", rounded(value, step), GIFT_NOT_RETURNED.cite()))
    if unknown:
        draft.flag(GIFT_VALUE_UNKNOWN.cite())


def _split(
    ctx: Context,
    draft: DecisionDraft,
    gross: Decimal,
    goods_paid: Decimal,
    deductions: list[Deduction],
    step: Decimal,
    *,
    shipping: Decimal = ZERO,
) -> Refund:
    """Allocate the net refund over the original payments (S3 Art 14), then take any card fee."""
    order = ctx.facts.order
    payments = order.payments
    total_paid = sum((p.amount for p in payments), ZERO)
    before_card = gross - sum((d.amount for d in deductions), ZERO)
    if before_card < 0:
        draft.flag(BUYER_OWES.cite())
        before_card = ZERO
    before_card = min(before_card, total_paid)
    shares = allocate(before_card, [p.amount for p in payments], step)

    card_fee_total = ZERO
    parts: list[RefundPart] = []
    for payment, share in zip(payments, shares, strict=True):
        if draft.no_reason_deductions and payment.method in CARD_METHODS and payment.fee > 0 and share > 0:
            if payment.fee_borne_by is FeeBearer.MERCHANT:
                fee_share = rounded(payment.fee * share / payment.amount, step)
                share -= fee_share
                card_fee_total += fee_share
            else:
                draft.notes.append(CARD_FEE_KEPT.cite())
        if share > 0:
            parts.append(RefundPart(payment.method, share, payment.method in IN_KIND_METHODS))
    if card_fee_total > 0:
        deductions.append(Deduction("card_fee", card_fee_total, CARD_FEE.cite()))
    amount = rounded(sum((part.amount for part in parts), ZERO), step)
    return Refund(order.currency, goods_paid, rounded(shipping, step), tuple(deductions), amount, tuple(parts))
