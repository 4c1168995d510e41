"""The statutory floor in mainland China.

No-reason returns: 消法 Art 25 (S1) and the 七日无理由退货暂行办法 (S3). Quality: 消法 Art 24 (S1),
the 实施条例 (S4) and the 三包 rules (S9, S11, S12). Article numbers are in each rule's `source`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from aftersales.policies.decision import (
    Basis,
    Citation,
    DecisionDraft,
    Evidence,
    Payer,
    Remedy,
    Rule,
    ShippingLeg,
)
from aftersales.policies.facts import (
    DURABLE_GOODS,
    ELECTRONICS,
    NO_REASON_REASONS,
    SEALED_CONSUMABLES,
    SELLER_FAULT_REASONS,
    SOFT_GOODS,
    Confirmation,
    GoodsState,
    OrderLine,
    Reason,
)
from aftersales.policies.rules.calendar import Window, add_months, day_window, start_of_day
from aftersales.policies.rules.context import Context
from aftersales.policies.rules.refund_math import breaks_free_shipping

NO_REASON_DAYS = 7
QUALITY_RETURN_DAYS = 7  # S1 Art 24(1); S9 Art 9
SANBAO_EXCHANGE_DAYS = 15  # S9 Art 10
FAILED_REPAIRS_FOR_EXCHANGE = 2  # S9 Art 11
NOTICE_CAP_MONTHS = 24  # S6 Art 621: two years from receipt when no quality period applies
REFUND_DUE_DAYS = 7  # S1 Art 25(3); S3 Art 13
VIOLATION_DAYS = 15  # S3 Art 31(2)(3)
BURDEN_SHIFT_MONTHS = 6  # S1 Art 23(3)

S1_25 = "《消费者权益保护法》第二十五条 (S1 Art 25)"
S3_6 = "《消费者权益保护法》第二十五条第一款；《网络购买商品七日无理由退货暂行办法》第六条 (S1 Art 25(1); S3 Art 6)"
S3_7 = "《网络购买商品七日无理由退货暂行办法》第七条、第二十条 (S3 Arts 7, 20)"
S3_8 = "《网络购买商品七日无理由退货暂行办法》第八条 (S3 Art 8)"
S3_9 = "《网络购买商品七日无理由退货暂行办法》第九条 (S3 Art 9)"
S3_10 = "《消费者权益保护法》第二十五条；《网络购买商品七日无理由退货暂行办法》第十条 (S1 Art 25; S3 Art 10)"
S1_24 = "《消费者权益保护法》第二十四条 (S1 Art 24)"
S9 = "《部分商品修理更换退货责任规定》"

# --- no-reason window -----------------------------------------------------------------------
NR_WINDOW_OPEN = Rule(
    "cn.nr.window",
    S3_10,
    "您在签收次日起算的 7 日内（{last_day} 24:00 前）发出了退货通知，可以七日无理由退货。",
    "You sent your return notice within 7 days counted from the day after delivery (before 24:00 on "
    "{last_day}), so you may return the goods without giving a reason.",
)
NR_WINDOW_PASSED = Rule(
    "cn.nr.window_passed",
    S3_10,
    "七日无理由退货期限（签收次日起算 7 日）已于 {last_day} 24:00 届满，本次申请已超过期限。",
    "The 7-day no-reason period (counted from the day after delivery) ended at 24:00 on {last_day}; "
    "this request came after it.",
)
NR_NO_EXCHANGE = Rule(
    "cn.nr.no_exchange_right",
    S3_10,
    "法律给予的是七日无理由退货，不包括无理由换货；您可以退货后重新下单，或与商家协商换货。",
    "The law gives a 7-day right to return, not to exchange; you can return and order again, or agree "
    "an exchange with the store.",
)
NR_NOT_REPAIR = Rule(
    "cn.nr.not_repair",
    S1_24,
    "维修针对质量问题；如商品有故障，请以“质量问题”申请。",
    "Repair is a remedy for faulty goods; if the item is faulty, choose the quality reason instead.",
)
NR_NEEDS_RETURN = Rule(
    "cn.nr.refund_needs_return",
    "《网络购买商品七日无理由退货暂行办法》第十二条、第十三条 (S3 Arts 12, 13)",
    "七日无理由退货是退回商品后退款，不能只退款不退货。",
    "A no-reason return means sending the goods back and then being refunded; a refund without "
    "returning the goods is not part of it.",
)

# --- statutory exclusions (S1 Art 25(1); S3 Art 6) -------------------------------------------
EXCLUDED_CUSTOMISED = Rule(
    "cn.nr.excluded.customised",
    S3_6,
    "{sku} 是按您的要求定作的商品，依法不适用七日无理由退货；如有质量问题仍可申请售后。",
    "{sku} was made to your order, so by law it cannot be returned without a reason; quality problems "
    "are still covered.",
)
EXCLUDED_PERISHABLE = Rule(
    "cn.nr.excluded.perishable",
    S3_6,
    "{sku} 属于鲜活易腐商品，依法不适用七日无理由退货；如有质量问题仍可申请售后。",
    "{sku} is fresh or perishable, so by law it cannot be returned without a reason; quality problems "
    "are still covered.",
)
EXCLUDED_DIGITAL = Rule(
    "cn.nr.excluded.digital",
    S3_6,
    "{sku} 是在线下载或已拆封的音像制品、计算机软件等数字化商品，依法不适用七日无理由退货。",
    "{sku} is digital content that was downloaded, or audio, video or software whose seal you opened, "
    "so by law it cannot be returned without a reason.",
)
EXCLUDED_PERIODICAL = Rule(
    "cn.nr.excluded.periodical",
    S3_6,
    "{sku} 是已交付的报纸、期刊，依法不适用七日无理由退货。",
    "{sku} is a delivered newspaper or periodical, so by law it cannot be returned without a reason.",
)

# --- exclusions valid only with the buyer's explicit confirmation (S3 Art 7, Art 20) -----------
CONFIRMED_HYGIENE = Rule(
    "cn.nr.confirmed.unsealed",
    S3_7,
    "{sku} 拆封后易影响人身安全、健康或商品品质，您下单时已单独确认其不适用七日无理由退货，且已拆封。",
    "{sku} is affected in safety or quality once opened, you confirmed at checkout that it is not "
    "returnable without a reason, and it has been opened.",
)
CONFIRMED_ACTIVATION = Rule(
    "cn.nr.confirmed.activated",
    S3_7,
    "{sku} 一经激活或试用价值贬损较大，您下单时已单独确认其不适用七日无理由退货，且已激活。",
    "{sku} loses much of its value once activated, you confirmed at checkout that it is not returnable "
    "without a reason, and it has been activated.",
)
CONFIRMED_NEAR_EXPIRY = Rule(
    "cn.nr.confirmed.near_expiry",
    S3_7,
    "{sku} 销售时已明示临近保质期，您下单时已单独确认其不适用七日无理由退货。",
    "{sku} was sold as close to its expiry date, and you confirmed at checkout that it is not "
    "returnable without a reason.",
)
CONFIRMED_DEFECT = Rule(
    "cn.nr.confirmed.disclosed_defect",
    S3_7,
    "{sku} 销售时已明示存在瑕疵，您下单时已单独确认其不适用七日无理由退货。",
    "{sku} was sold with a disclosed flaw, and you confirmed at checkout that it is not returnable "
    "without a reason.",
)
PRE_TICKED_IS_NOT_CONFIRMATION = Rule(
    "cn.nr.confirmation_pre_ticked",
    "《网络购买商品七日无理由退货暂行办法》第二十条第二款、第三十一条第一项；《消费者权益保护法实施条例》第十九条第二款 "
    "(S3 Arts 20(2), 31(1); S4 Art 19(2))",
    "{sku} 的“不适用七日无理由退货”确认是默认勾选的，不构成消费者确认，商家不得据此拒绝退货；请改为下单时单独确认。",
    "The 'not returnable without reason' confirmation for {sku} was pre-ticked. That is not the buyer's "
    "confirmation and cannot be used to refuse a return; make it a separate, unticked checkout step.",
)
UNCONFIRMED_EXCLUSION = Rule(
    "cn.nr.exclusion_unconfirmed",
    S3_7,
    "{sku} 虽属于可经确认排除的商品，但您下单时没有确认，商家不得拒绝无理由退货。",
    "{sku} is the kind of item a store may exclude with the buyer's confirmation, but you did not "
    "confirm at checkout, so the store cannot refuse the return.",
)

# --- "intact" (S3 Arts 8, 9) -------------------------------------------------------------------
NOT_INTACT_SEAL = Rule(
    "cn.nr.not_intact.seal_broken",
    S3_9,
    "{sku} 的必要一次性密封包装已被破坏，商品不再完好，不能七日无理由退货。",
    "The one-time seal of {sku} has been broken, so it is no longer intact and cannot be returned "
    "without a reason.",
)
NOT_INTACT_ELECTRONICS = Rule(
    "cn.nr.not_intact.electronics",
    S3_9,
    "{sku} 已激活或留有超出检查需要的使用痕迹，商品不再完好，不能七日无理由退货。",
    "{sku} has been activated or used beyond checking it, so it is no longer intact and cannot be "
    "returned without a reason.",
)
NOT_INTACT_TAGS = Rule(
    "cn.nr.not_intact.tags",
    S3_9,
    "{sku} 的吊牌、商标标识已被摘除或商品受污，商品不再完好，不能七日无理由退货。",
    "The tags or labels of {sku} were removed or the item is soiled, so it is no longer intact and "
    "cannot be returned without a reason.",
)
NOT_INTACT_PARTS = Rule(
    "cn.nr.not_intact.parts_missing",
    S3_8,
    "{sku} 的配件不齐全，商品不再完好；补齐配件后可再申请。",
    "Parts or accessories of {sku} are missing, so it is not complete; send them with the return and "
    "apply again.",
)
NOT_INTACT_USED = Rule(
    "cn.nr.not_intact.used",
    S3_9,
    "{sku} 的使用超出了查验需要，价值明显贬损，不能七日无理由退货。",
    "{sku} was used beyond what checking it needs and lost much of its value, so it cannot be returned "
    "without a reason.",
)
INSPECTION_IS_FINE = Rule(
    "cn.nr.inspection_ok",
    "《网络购买商品七日无理由退货暂行办法》第八条第三款；《消费者权益保护法实施条例》第十九条第三款 (S3 Art 8(3); S4 Art 19(3))",
    "为检查商品拆开包装不影响商品完好，不能因此拒绝退货。",
    "Opening the packaging to inspect the goods does not make them 'not intact'; it is no reason to "
    "refuse the return.",
)

# --- quality ladder ------------------------------------------------------------------------------
QUALITY_DAY7 = Rule(
    "cn.q.day7",
    S1_24,
    "收货后 7 日内（第 {day} 日）出现质量问题，您可以选择退货、换货或修理，运费由商家承担。",
    "A quality problem within 7 days of receipt (day {day}): you may choose a return, an exchange or a "
    "repair, and the store pays the freight.",
)
QUALITY_AFTER_DAY7 = Rule(
    "cn.q.after_day7",
    "《消费者权益保护法》第二十四条；《民法典》第五百六十三条 (S1 Art 24(1); S6 Art 563)",
    "收货已超过 7 日（第 {day} 日）：可以换货或修理；只有商品问题导致合同目的不能实现时才可退货。",
    "More than 7 days after receipt (day {day}): you may have the item exchanged or repaired; a return "
    "is only possible when the defect defeats the purpose of the purchase.",
)
QUALITY_REPEATED_FAILURE = Rule(
    "cn.q.repeated_failure",
    "《消费者权益保护法》第二十四条；《民法典》第五百六十三条第一款第（四）项 (S1 Art 24(1); S6 Art 563(1)(4))",
    "已修理 {failed} 次仍不能正常使用，购买目的无法实现，您可以退货或换货。",
    "After {failed} failed repairs the item still does not work, so the purpose of the purchase is "
    "defeated and you may return or exchange it.",
)
QUALITY_EXPIRED = Rule(
    "cn.q.period_expired",
    "《消费者权益保护法实施条例》第十八条第一款；《民法典》第六百二十一条 (S4 Art 18(1); S6 Art 621)",
    "质量保证期已于 {last_day} 届满，免费的退货、换货、修理不再适用；可与商家协商付费维修。",
    "The quality period ended on {last_day}; free return, exchange and repair no longer apply, but a "
    "paid repair can be agreed with the store.",
)
QUALITY_NO_REFUND_ONLY = Rule(
    "cn.q.no_refund_only",
    "《消费者权益保护法》第二十四条；《民法典》第五百八十二条 (S1 Art 24; S6 Art 582)",
    "质量问题的法定救济是退货、换货或修理；不退货只退款（或部分退款）需与商家协商。",
    "For faulty goods the law gives return, exchange or repair; a refund without returning the goods "
    "(or a partial refund) has to be agreed with the store.",
)
SANBAO_DAY7 = Rule(
    "cn.sanbao.day7",
    f"{S9}第九条；《消费者权益保护法》第二十四条 (S9 Art 9; S1 Art 24)",
    "三包商品在 7 日内（第 {day} 日）出现性能故障，您可以选择退货、换货或修理。",
    "A performance fault in a 三包 product within 7 days (day {day}): you choose return, exchange or "
    "repair.",
)
SANBAO_DAY15 = Rule(
    "cn.sanbao.day15",
    f"{S9}第十条 (S9 Art 10)",
    "三包商品在 15 日内（第 {day} 日）出现性能故障，您可以选择换货或修理，已不能退货。",
    "A performance fault in a 三包 product within 15 days (day {day}): you may choose an exchange or a "
    "repair; a return is no longer available.",
)
SANBAO_REPAIR = Rule(
    "cn.sanbao.warranty_repair",
    f"{S9}第八条、第十条 (S9 Arts 8, 10)",
    "三包有效期内（至 {last_day}，已扣除维修占用时间）出现性能故障，可免费修理；换货、退货需先经两次修理仍不能正常使用。",
    "Within the 三包 period (until {last_day}, repair time excluded) faults are repaired free of charge; "
    "exchange or return needs two failed repairs first.",
)
SANBAO_TWO_REPAIRS = Rule(
    "cn.sanbao.two_repairs",
    f"{S9}第十一条、第十三条 (S9 Arts 11, 13)",
    "三包有效期内已修理 {failed} 次仍不能正常使用，您可以免费换货，或选择退货。",
    "The item still does not work after {failed} repairs within the 三包 period: you may have it "
    "exchanged free of charge, or return it.",
)
SANBAO_DEPRECIATION = Rule(
    "cn.sanbao.depreciation",
    f"{S9}第十三条 (S9 Art 13)",
    "同型号商品有货而您选择退货：按三包目录日折旧率 {rate} 收取 {days} 天（购买至退货，扣除维修占用 {repair_days} 天）的折旧费。",
    "The same model is available but you chose a return: depreciation is charged at the catalogue "
    "rate of {rate} per day for {days} days (purchase to return, less {repair_days} days in repair).",
)
NONCONFORMING_DELIVERY = Rule(
    "cn.q.nonconforming_delivery",
    "《电子商务法》第二十条；《民法典》第六百零四条、第六百一十条 (S2 Art 20; S6 Arts 604, 610)",
    "商品在交付前损坏、发错货或与描述不符，属于商家交付不符合约定，您可以退货或换货，运费由商家承担。",
    "The goods were damaged before delivery, the wrong item was sent, or it does not match the listing: "
    "the store did not deliver what was agreed, so you may return or exchange it at the store's cost.",
)
NONCONFORMING_NO_REPAIR = Rule(
    "cn.q.nonconforming_no_repair",
    "《民法典》第六百一十条 (S6 Art 610)",
    "发错货或与描述不符的商品无需修理，请选择退货或换货。",
    "A wrong or mis-described item is not something to repair; choose a return or an exchange.",
)
NOTICE_TOO_LATE = Rule(
    "cn.q.notice_cap",
    "《民法典》第六百二十一条 (S6 Art 621)",
    "自收货起已超过两年且没有约定的质量保证期，商家不再承担免费的退换修责任。",
    "More than two years have passed since receipt and no quality period was agreed, so the store no "
    "longer owes a free remedy.",
)
DISCLOSED_DEFECT_NOTE = Rule(
    "cn.q.disclosed_defect",
    "《消费者权益保护法》第二十三条第一款 (S1 Art 23(1))",
    "{sku} 销售时已明示的瑕疵不构成质量问题；其他质量问题不受影响。",
    "The flaw disclosed at sale for {sku} is not a quality problem; other faults are still covered.",
)
DURABLE_BURDEN = Rule(
    "cn.q.burden_on_merchant",
    "《消费者权益保护法》第二十三条第三款 (S1 Art 23(3))",
    "耐用商品自收货起 6 个月内出现瑕疵，由商家承担举证责任。",
    "For durable goods, within 6 months of receipt the store must prove the goods were not defective.",
)
LATE_DELIVERY = Rule(
    "cn.late_delivery",
    "《民法典》第五百六十三条 (S6 Art 563)",
    "商家迟延交付致使合同目的不能实现，您可以解除合同退货退款，运费由商家承担。",
    "The store delivered late so that the purpose of the purchase was defeated: you may cancel and "
    "return the goods for a refund, and the store pays the freight.",
)
PRICE_DROP_NO_STATUTE = Rule(
    "cn.price_drop.not_statutory",
    "《消费者权益保护法实施条例》第十二条 (S4 Art 12); cn-rules §5.4",
    "降价补差（价格保护）不是法定义务，只有商家或平台作出承诺时才适用。",
    "A refund of a later price drop (price protection) is not a legal right; it applies only where the "
    "store or the platform promised it.",
)
NOT_SHIPPED_REFUND = Rule(
    "cn.not_shipped.refund_only",
    S3_10,
    "订单尚未发货，您可以申请仅退款取消购买，货款和运费全部退还。",
    "The order has not shipped: you can cancel with a refund only, and get the price and the shipping "
    "fee back in full.",
)
NOT_SHIPPED_NOTHING_TO_RETURN = Rule(
    "cn.not_shipped.nothing_to_return",
    S3_10,
    "订单尚未发货，没有可退回、换货或修理的商品。",
    "The order has not shipped, so there is nothing to return, exchange or repair yet.",
)
OUT_OF_SCOPE = Rule(
    "cn.not_applicable",
    S1_25,
    "该售后方式不适用于本次申请的原因。",
    "This remedy does not apply to the reason given for this request.",
)

# --- shipping and deadlines ----------------------------------------------------------------------
NR_RETURN_SHIPPING = Rule(
    "cn.nr.return_shipping_buyer",
    "《消费者权益保护法》第二十五条第三款；《网络购买商品七日无理由退货暂行办法》第十八条第一款 (S1 Art 25(3); S3 Art 18(1))",
    "七日无理由退货的退回运费由您承担，商家另有约定（如包退运费、运费险）的除外。",
    "For a no-reason return you pay the return postage, unless the store agreed otherwise (free "
    "returns, shipping insurance).",
)
NR_OUTBOUND_KEPT = Rule(
    "cn.nr.outbound_not_refunded",
    "《网络购买商品七日无理由退货暂行办法》第十三条、第十七条 (S3 Arts 13, 17)",
    "七日无理由退货退还的是商品价款，您下单时支付的运费不退。",
    "A no-reason return refunds the price of the goods; the shipping fee you paid on the order is not "
    "refunded.",
)
NR_OUTBOUND_FREE = Rule(
    "cn.nr.outbound_free_shipping",
    "《网络购买商品七日无理由退货暂行办法》第十八条 (S3 Art 18)",
    "订单包邮，发货运费由商家承担。",
    "The order shipped free; the store bears the outbound shipping.",
)
NR_CLAWBACK = Rule(
    "cn.nr.free_shipping_clawback",
    "《网络购买商品七日无理由退货暂行办法》第十八条第二款 (S3 Art 18(2))",
    "部分退货后剩余商品不再满足包邮条件，商家可以从退款中扣除发货运费 {amount}。",
    "After this partial return the rest of the order no longer qualifies for free shipping, so the "
    "store may deduct the outbound shipping of {amount} from the refund.",
)
QUALITY_SHIPPING = Rule(
    "cn.q.costs_on_merchant",
    "《消费者权益保护法》第二十四条第二款 (S1 Art 24(2))",
    "因质量问题退货、换货、修理的，运输等必要费用由商家承担。",
    "For returns, exchanges and repairs of faulty goods the store pays the freight and other necessary "
    "costs.",
)
NOT_APPLICABLE_LEG = Rule(
    "shipping.not_applicable",
    S1_25,
    "本次售后不涉及这段运输。",
    "This request involves no such shipment.",
)
REFUND_DUE = Rule(
    "cn.refund_due",
    "《消费者权益保护法》第二十五条第三款；《网络购买商品七日无理由退货暂行办法》第十三条 (S1 Art 25(3); S3 Art 13)",
    "商家收到退回商品之日起 7 日内退款；超过 15 日未退款属违法行为（S3 Art 31）。",
    "The store refunds within 7 days of receiving the returned goods; more than 15 days without a "
    "refund is a punishable breach (S3 Art 31).",
)
QUALITY_REFUND_DUE = Rule(
    "cn.q.refund_due",
    "《消费者权益保护法实施条例》第十八条第二款 (S4 Art 18(2)); 7 日比照 S3 Art 13 (cn-rules §7.6)",
    "质量问题退货，商家收到商品后一次性退还价款；本平台按 7 日内退款执行。",
    "For a faulty-goods return the store refunds the price in one payment after receiving the goods; "
    "we apply the same 7 days as for no-reason returns.",
)

# --- evidence ----------------------------------------------------------------------------------------
EVIDENCE_DEFECT_PHOTOS = Evidence(
    "defect_photos",
    "请上传能看清故障或瑕疵的照片或视频。",
    "Upload photos or a video that clearly show the fault or flaw.",
)
EVIDENCE_SANBAO_VOUCHER = Evidence(
    "sanbao_voucher",
    "请提供发票或三包凭证（《部分商品修理更换退货责任规定》第八条）。",
    "Provide the invoice or the 三包 warranty card (S9 Art 8).",
)
EVIDENCE_PACKAGE_PHOTOS = Evidence(
    "package_photos",
    "请上传外包装和商品破损处的照片，如有快递员签收异常记录请一并提供。",
    "Upload photos of the outer package and of the damage, and any exception note made at delivery.",
)
EVIDENCE_LABEL_PHOTOS = Evidence(
    "label_photos",
    "请上传收到商品及其标签（型号、规格）的照片。",
    "Upload photos of the item you received and of its label (model, size).",
)
EVIDENCE_LISTING_COMPARISON = Evidence(
    "listing_comparison",
    "请上传商品照片，并指出与商品页面描述不符之处。",
    "Upload photos of the item and point out where it differs from the listing.",
)
EVIDENCE_CONTENTS_PHOTOS = Evidence(
    "contents_photos",
    "请上传包裹内全部物品的照片，以确认缺少的配件。",
    "Upload a photo of everything in the parcel so the missing parts can be confirmed.",
)

_REASON_EVIDENCE = {
    Reason.QUALITY: EVIDENCE_DEFECT_PHOTOS,
    Reason.NOT_AS_DESCRIBED: EVIDENCE_LISTING_COMPARISON,
    Reason.WRONG_ITEM: EVIDENCE_LABEL_PHOTOS,
    Reason.DAMAGED_IN_TRANSIT: EVIDENCE_PACKAGE_PHOTOS,
    Reason.MISSING_PARTS: EVIDENCE_CONTENTS_PHOTOS,
}


def merchant_leg(rule: Rule) -> ShippingLeg:
    return rule.leg(Payer.MERCHANT)


def not_applicable_leg() -> ShippingLeg:
    return NOT_APPLICABLE_LEG.leg(Payer.NOT_APPLICABLE)


def apply(ctx: Context, draft: DecisionDraft) -> None:
    """Apply the CN statutory floor to the draft."""
    reason = ctx.facts.request.reason
    draft.refund_due_days = REFUND_DUE_DAYS
    draft.violation_days = VIOLATION_DAYS
    draft.request_violation_at = start_of_day(ctx.notice_day + dt.timedelta(days=VIOLATION_DAYS + 1), ctx.tz)
    if not ctx.shipped:
        apply_not_shipped(draft, NOT_SHIPPED_REFUND.cite(), NOT_SHIPPED_NOTHING_TO_RETURN.cite())
        return
    if reason in NO_REASON_REASONS:
        apply_no_reason(ctx, draft)
    elif reason in SELLER_FAULT_REASONS:
        apply_seller_fault(ctx, draft)
    elif reason is Reason.LATE_DELIVERY:
        draft.basis = Basis.LATE_DELIVERY
        citation = LATE_DELIVERY.cite()
        draft.open(Remedy.RETURN_REFUND, citation)
        draft.close(Remedy.REFUND_ONLY, QUALITY_NO_REFUND_ONLY.cite())
        draft.refund_outbound_shipping = True
        draft.refund_due_rule = QUALITY_REFUND_DUE.cite()
        leg = merchant_leg(LATE_DELIVERY)
        draft.outbound = draft.return_leg = leg
        draft.reship = not_applicable_leg()
    else:  # Reason.PRICE_DROP
        draft.basis = Basis.PRICE_PROTECTION
        citation = PRICE_DROP_NO_STATUTE.cite()
        for remedy in (Remedy.REFUND_ONLY, Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR):
            draft.close(remedy, citation)


def apply_not_shipped(draft: DecisionDraft, refund: Citation, nothing: Citation) -> None:
    """Before shipping, the only thing to do is to cancel: refund everything, including the postage."""
    draft.basis = Basis.NOT_SHIPPED
    draft.open(Remedy.REFUND_ONLY, refund)
    for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR):
        draft.close(remedy, nothing)
    draft.refund_outbound_shipping = True
    draft.outbound = draft.return_leg = draft.reship = ShippingLeg(Payer.NOT_APPLICABLE, nothing)


# --------------------------------------------------------------------------------------------------
# 七日无理由退货


def no_reason_window(ctx: Context, days: int, *, extend: bool) -> Window:
    assert ctx.signed_day is not None  # validate_facts guarantees signing for shipped orders
    return day_window(ctx.signed_day, days, ctx.tz, extend_on_cn_holiday=extend)


def no_reason_blockers(ctx: Context, draft: DecisionDraft) -> list[Citation]:
    """Reasons, per returned line, that the goods cannot be returned without reason.

    Also flags and notes what must *not* block the return: pre-ticked confirmations (S3 Art 20(2)),
    missing confirmations and opened packaging.
    """
    goods = ctx.facts.request.goods
    blockers: list[Citation] = []
    for line, _qty in ctx.returned:
        sku = line.sku
        statutory = _statutory_exclusion(line, goods.seal_broken)
        if statutory is not None:
            blockers.append(statutory.cite(sku=sku))
            continue
        confirmed_rule = _confirmable_exclusion(line, goods.seal_broken, goods.activated)
        if confirmed_rule is not None:
            confirmation = line.nonreturnable_confirmed
            if confirmation is Confirmation.EXPLICIT:
                blockers.append(confirmed_rule.cite(sku=sku))
                continue
            if confirmation is Confirmation.PRE_TICKED:
                draft.flag(PRE_TICKED_IS_NOT_CONFIRMATION.cite(sku=sku))
            draft.notes.append(UNCONFIRMED_EXCLUSION.cite(sku=sku))
        not_intact = _not_intact(line, goods)
        if not_intact is not None:
            blockers.append(not_intact.cite(sku=sku))
    if goods.packaging_opened and not blockers:
        draft.notes.append(INSPECTION_IS_FINE.cite())
    return blockers


def _statutory_exclusion(line: OrderLine, seal_broken: bool) -> Rule | None:
    if line.customised:
        return EXCLUDED_CUSTOMISED
    if line.perishable:
        return EXCLUDED_PERISHABLE
    # Audio, video and software are excluded only once the buyer has unsealed them (S3 Art 6(3)).
    if line.digital_download or (line.sealed_media and seal_broken):
        return EXCLUDED_DIGITAL
    if line.periodical:
        return EXCLUDED_PERIODICAL
    return None


def _confirmable_exclusion(line: OrderLine, seal_broken: bool, activated: bool) -> Rule | None:
    # S3 Art 7(1) and (2) speak of goods "拆封后" / "一经激活或者试用后": the exclusion bites once the
    # goods are opened or activated; sealed or never-activated goods go back like any other.
    if line.hygiene_sensitive and seal_broken:
        return CONFIRMED_HYGIENE
    if line.activation_devalues and activated:
        return CONFIRMED_ACTIVATION
    if line.near_expiry_disclosed:
        return CONFIRMED_NEAR_EXPIRY
    if line.defect_disclosed:
        return CONFIRMED_DEFECT
    return None


def _not_intact(line: OrderLine, goods: GoodsState) -> Rule | None:
    category = line.category
    if category in SEALED_CONSUMABLES and goods.seal_broken:
        return NOT_INTACT_SEAL
    if category in ELECTRONICS and (goods.activated or goods.used_beyond_inspection):
        return NOT_INTACT_ELECTRONICS
    if category in SOFT_GOODS and (goods.tags_removed or goods.soiled):
        return NOT_INTACT_TAGS
    if goods.parts_missing:
        return NOT_INTACT_PARTS
    if goods.used_beyond_inspection:
        return NOT_INTACT_USED
    return None


def apply_no_reason(ctx: Context, draft: DecisionDraft) -> None:
    draft.basis = Basis.NO_REASON
    draft.no_reason_deductions = True
    draft.refund_due_rule = REFUND_DUE.cite()
    window = no_reason_window(ctx, NO_REASON_DAYS, extend=False)
    record_window(draft, window)
    blockers = no_reason_blockers(ctx, draft)
    if blockers:
        draft.close(Remedy.RETURN_REFUND, blockers[0])
        draft.notes.extend(blockers[1:])
    elif window.contains(ctx.facts.request.notice_at):
        draft.open(Remedy.RETURN_REFUND, NR_WINDOW_OPEN.cite(last_day=window.last_day.isoformat()))
    else:
        draft.close(Remedy.RETURN_REFUND, NR_WINDOW_PASSED.cite(last_day=window.last_day.isoformat()))
        draft.window_closed_only = True
    draft.close(Remedy.REFUND_ONLY, NR_NEEDS_RETURN.cite())
    draft.close(Remedy.EXCHANGE, NR_NO_EXCHANGE.cite())
    draft.close(Remedy.REPAIR, NR_NOT_REPAIR.cite())
    no_reason_shipping(ctx, draft)


def record_window(draft: DecisionDraft, window: Window) -> None:
    draft.window_last_day = window.last_day
    draft.window_closes_at = window.closes_at
    draft.window_extended_for = window.extended_for


def no_reason_shipping(ctx: Context, draft: DecisionDraft) -> None:
    order = ctx.facts.order
    if order.shipping_fee > 0:
        draft.outbound = NR_OUTBOUND_KEPT.leg(Payer.BUYER)
    elif breaks_free_shipping(ctx):
        amount = order.standard_shipping_fee if order.standard_shipping_fee is not None else "—"
        draft.outbound = ShippingLeg(Payer.BUYER, NR_CLAWBACK.cite(amount=amount))
    else:
        draft.outbound = merchant_leg(NR_OUTBOUND_FREE)
    draft.return_leg = NR_RETURN_SHIPPING.leg(Payer.BUYER)
    draft.reship = not_applicable_leg()


# --------------------------------------------------------------------------------------------------
# Quality and other seller-fault reasons


def apply_seller_fault(ctx: Context, draft: DecisionDraft) -> None:
    request = ctx.facts.request
    draft.basis = Basis.SELLER_FAULT
    draft.refund_outbound_shipping = True
    draft.refund_due_rule = QUALITY_REFUND_DUE.cite()
    evidence = _REASON_EVIDENCE[request.reason]
    draft.need(evidence)
    leg = merchant_leg(QUALITY_SHIPPING)
    draft.outbound = draft.return_leg = draft.reship = leg
    draft.close(Remedy.REFUND_ONLY, QUALITY_NO_REFUND_ONLY.cite())

    per_line: list[dict[Remedy, tuple[bool, Citation]]] = []
    for line, _qty in ctx.returned:
        if line.defect_disclosed:
            draft.notes.append(DISCLOSED_DEFECT_NOTE.cite(sku=line.sku))
        if request.reason in (Reason.WRONG_ITEM, Reason.NOT_AS_DESCRIBED, Reason.DAMAGED_IN_TRANSIT):
            per_line.append(_nonconforming_delivery(ctx))
        else:
            per_line.append(quality_ladder(ctx, draft, line, extra_months=0))
    for remedy, (is_open, citation) in merge_line_verdicts(per_line).items():
        if is_open:
            draft.open(remedy, citation)
        else:
            draft.close(remedy, citation)
    if any(line.sanbao_catalogue is not None for line, _ in ctx.returned):
        draft.need(EVIDENCE_SANBAO_VOUCHER)
    if any(line.category in DURABLE_GOODS for line, _ in ctx.returned):
        start = ctx.service_start_day
        if start is not None and ctx.notice_day <= add_months(start, BURDEN_SHIFT_MONTHS):
            draft.notes.append(DURABLE_BURDEN.cite())


def merge_line_verdicts(
    per_line: Iterable[dict[Remedy, tuple[bool, Citation]]],
) -> dict[Remedy, tuple[bool, Citation]]:
    """A remedy is open for the request only if it is open for every line in it."""
    merged: dict[Remedy, tuple[bool, Citation]] = {}
    for verdicts in per_line:
        for remedy, (is_open, citation) in verdicts.items():
            current = merged.get(remedy)
            if current is None or (current[0] and not is_open):
                merged[remedy] = (is_open, citation)
    return merged


def _nonconforming_delivery(ctx: Context) -> dict[Remedy, tuple[bool, Citation]]:
    start = ctx.service_start_day
    assert start is not None
    if ctx.notice_day > add_months(start, NOTICE_CAP_MONTHS):
        late = NOTICE_TOO_LATE.cite()
        return {Remedy.RETURN_REFUND: (False, late), Remedy.EXCHANGE: (False, late), Remedy.REPAIR: (False, late)}
    citation = NONCONFORMING_DELIVERY.cite()
    repair: tuple[bool, Citation] = (False, NONCONFORMING_NO_REPAIR.cite())
    if ctx.facts.request.reason is Reason.DAMAGED_IN_TRANSIT:
        repair = (True, citation)
    return {Remedy.RETURN_REFUND: (True, citation), Remedy.EXCHANGE: (True, citation), Remedy.REPAIR: repair}


class WarrantyStatus:
    """Where a line stands in its quality period (S4 Art 18(1), S9 Art 8)."""

    __slots__ = ("failed_repairs", "last_day", "period_start", "repair_days", "total_repair_days")

    def __init__(
        self,
        period_start: dt.date,
        last_day: dt.date | None,
        repair_days: int,
        failed_repairs: int,
        total_repair_days: int,
    ) -> None:
        self.period_start = period_start
        self.last_day = last_day
        self.repair_days = repair_days
        self.failed_repairs = failed_repairs
        self.total_repair_days = total_repair_days


def warranty_status(ctx: Context, line: OrderLine, extra_months: int) -> WarrantyStatus:
    """The line's quality period: it restarts after an exchange and does not count repair time.

    S4 Art 18(1): periods run from delivery or installation, restart after an exchange, and exclude
    repair time; S9 Art 8 says the same for 三包 (repair and waiting-for-parts time excluded).
    """
    start = ctx.service_start_day
    assert start is not None
    history = ctx.facts.history
    period_start = start
    for exchange in history.exchanges:
        if exchange.line_id in (None, line.line_id) and exchange.exchanged_on > period_start:
            period_start = exchange.exchanged_on
    repair_days = 0
    total_repair_days = 0
    failed = 0
    for repair in history.repairs:
        if repair.line_id not in (None, line.line_id):
            continue
        total_repair_days += repair.days
        if repair.started_on >= period_start:
            repair_days += repair.days
            failed += repair.failed
    months = max(line.warranty_months, line.sanbao_catalogue.warranty_months if line.sanbao_catalogue else 0)
    months += extra_months
    last_day = add_months(period_start, months) + dt.timedelta(days=repair_days) if months else None
    return WarrantyStatus(period_start, last_day, repair_days, failed, total_repair_days)


def quality_ladder(
    ctx: Context, draft: DecisionDraft, line: OrderLine, *, extra_months: int
) -> dict[Remedy, tuple[bool, Citation]]:
    """The remedy ladder for a faulty line: 7 days → 15 days (三包) → repair in the period → two failed repairs."""
    day = ctx.day_number
    assert day is not None
    status = warranty_status(ctx, line, extra_months)
    if status.last_day is not None:
        draft.warranty_last_day = status.last_day
    sanbao = line.sanbao_catalogue
    if day <= QUALITY_RETURN_DAYS:
        citation = (SANBAO_DAY7 if sanbao else QUALITY_DAY7).cite(day=day)
        return {remedy: (True, citation) for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR)}

    in_period: bool
    if status.last_day is not None:
        in_period = ctx.notice_day <= status.last_day
        expired = QUALITY_EXPIRED.cite(last_day=status.last_day.isoformat())
    else:
        cap = add_months(ctx.service_start_day or status.period_start, NOTICE_CAP_MONTHS)
        in_period = ctx.notice_day <= cap
        expired = NOTICE_TOO_LATE.cite()
    if not in_period:
        return {remedy: (False, expired) for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR)}

    if sanbao is not None:
        if status.failed_repairs >= FAILED_REPAIRS_FOR_EXCHANGE:
            citation = SANBAO_TWO_REPAIRS.cite(failed=status.failed_repairs)
            if ctx.facts.request.same_model_available:
                # S9 Art 13: days from purchase to return, minus every day the item spent in repair.
                start = ctx.service_start_day or status.period_start
                days = max((ctx.notice_day - start).days - status.total_repair_days, 0)
                rate = sanbao.daily_depreciation_rate
                draft.depreciation = (
                    rate,
                    days,
                    SANBAO_DEPRECIATION.cite(
                        rate=_percent(rate), days=days, repair_days=status.total_repair_days
                    ),
                )
            return {remedy: (True, citation) for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR)}
        if day <= SANBAO_EXCHANGE_DAYS:
            citation = SANBAO_DAY15.cite(day=day)
            return {
                Remedy.RETURN_REFUND: (False, citation),
                Remedy.EXCHANGE: (True, citation),
                Remedy.REPAIR: (True, citation),
            }
        assert status.last_day is not None
        citation = SANBAO_REPAIR.cite(last_day=status.last_day.isoformat())
        return {
            Remedy.RETURN_REFUND: (False, citation),
            Remedy.EXCHANGE: (False, citation),
            Remedy.REPAIR: (True, citation),
        }

    if status.failed_repairs >= FAILED_REPAIRS_FOR_EXCHANGE:
        citation = QUALITY_REPEATED_FAILURE.cite(failed=status.failed_repairs)
        return {remedy: (True, citation) for remedy in (Remedy.RETURN_REFUND, Remedy.EXCHANGE, Remedy.REPAIR)}
    citation = QUALITY_AFTER_DAY7.cite(day=day)
    return {
        Remedy.RETURN_REFUND: (False, citation),
        Remedy.EXCHANGE: (True, citation),
        Remedy.REPAIR: (True, citation),
    }


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"
