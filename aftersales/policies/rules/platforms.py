"""Platform overlays: Taobao/Tmall (S13, S16), JD (S14, S15), WeChat (S17, S18).

A platform rule sits on top of the law where the order was placed on that platform. It may add
rights (Taobao's no-reason exchange) and say who pays what, but the statutory floor below it stays:
an overlay here never closes a remedy the law opened.
"""

from __future__ import annotations

from aftersales.policies.decision import Basis, DecisionDraft, Evidence, Payer, Remedy, Rule
from aftersales.policies.facts import ELECTRONICS, Category, Jurisdiction, PlatformMode, Reason, RequestKind
from aftersales.policies.rules.context import Context

S13_53 = "淘宝平台争议处理规则第五十三条 (S13 Art 53)"

TAOBAO_EXCHANGE = Rule(
    "taobao.nr.exchange",
    "淘宝平台争议处理规则第五十四条 (S13 Art 54)",
    "淘宝平台支持七日无理由换货，换货的来回运费由您承担。",
    "Taobao allows a no-reason exchange within the 7 days; you pay the postage both ways.",
)
TAOBAO_FREE_SHIPPING = Rule(
    "taobao.nr.shipping_free",
    S13_53,
    "包邮商品七日无理由退货，您只承担退回运费。",
    "For an item that shipped free you pay only the return postage.",
)
TAOBAO_PAID_SHIPPING = Rule(
    "taobao.nr.shipping_all",
    S13_53,
    "非包邮商品（或部分退货后不再包邮）七日无理由退货，来回运费由您承担。",
    "For an item that did not ship free (or no longer qualifies after a partial return) you pay the "
    "postage both ways.",
)
TAOBAO_EVIDENCE = Rule(
    "taobao.q.burden",
    "淘宝平台争议处理规则第六十五条、第六十六条 (S13 Arts 65, 66)",
    "外观可见的问题由您提供初步凭证，再由卖家举证；不可见的问题可能需要检测报告。",
    "For a visible defect you give first evidence and the seller must then answer it; a hidden defect "
    "may need a test report.",
)
TAOBAO_INTERCEPT = Rule(
    "taobao.intercept",
    "淘宝平台争议处理规则第二十三条 (S13 Art 23)",
    "未签收前申请退款的，卖家应拦截包裹，拦截成功后退款。",
    "If you ask for a refund before delivery, the seller should intercept the parcel and refund once "
    "it is intercepted.",
)
JD_COSTS = Rule(
    "jd.q.costs",
    "京东开放平台商品类问题纠纷处理标准第十七条、第二十条 (S15 Arts 17, 20)",
    "经确认的质量问题，退换货运费全部由商家承担。",
    "For a confirmed quality problem the merchant pays all return and exchange freight.",
)
JD_DEFAULT_WARRANTY = Rule(
    "jd.default_warranty",
    "京东开放平台商品类问题纠纷处理标准第二十七条 (S15 Art 27)",
    "商家未承诺保修期的，{what_zh}默认保修 {days} 天，期内可免费维修。",
    "The merchant stated no warranty, so {what_en} carry a default {days}-day warranty: free repair within it.",
)
JD_REPORT_WINDOW = Evidence(
    "jd_visible_defect_48h",
    "京东规则：便携 3C 产品的外观问题须在签收后 48 小时内反馈（S15 Art 26(1)）。",
    "JD rule: visible defects of portable electronics must be reported within 48 hours of delivery "
    "(S15 Art 26(1)).",
)
WECHAT_UNSHIPPED = Rule(
    "wechat.refund_only_unshipped",
    "微信小程序交易组件售后指引 (S17)",
    "订单未发货时，仅退款是唯一的售后类型，运费随最后一件商品一起退还。",
    "Before anything ships, refund-only is the only after-sales type, and the shipping fee goes back "
    "with the last item refunded.",
)
WECHAT_REFUND_ONLY_AFTER_SHIPPING = Rule(
    "wechat.refund_only_request",
    "微信小程序交易组件售后 FAQ (S17)",
    "已发货订单也可以发起仅退款申请，但是否同意由商家决定（48 小时未处理将自动推进）。",
    "After shipping you can still ask for a refund only, but the merchant decides (with a 48-hour "
    "timeout that moves the request on).",
)
PLATFORM_OUTSIDE_CN = Rule(
    "platform.outside_cn",
    "S13–S18",
    "所选平台规则只适用于中国大陆订单，本次决定未套用平台规则。",
    "The chosen platform's rules apply to mainland China orders only, so they were not applied here.",
)

JD_DEFAULT_WARRANTY_DAYS = {Category.SHOES: 120, Category.BAGS: 90}
JD_WARRANTY_NAMES = {Category.SHOES: ("鞋类", "shoes"), Category.BAGS: ("箱包", "bags")}


def apply(ctx: Context, draft: DecisionDraft) -> None:
    mode = ctx.facts.store.platform_mode
    if mode is PlatformMode.NONE:
        return
    if ctx.facts.store.jurisdiction is not Jurisdiction.CN:
        draft.flag(PLATFORM_OUTSIDE_CN.cite())
        return
    if mode is PlatformMode.TAOBAO:
        _taobao(ctx, draft)
    elif mode is PlatformMode.JD:
        _jd(ctx, draft)
    else:
        _wechat(ctx, draft)


def _taobao(ctx: Context, draft: DecisionDraft) -> None:
    if draft.basis is Basis.NO_REASON:
        if draft.is_open(Remedy.RETURN_REFUND):
            draft.open(Remedy.EXCHANGE, TAOBAO_EXCHANGE.cite())
        if ctx.facts.request.kind is RequestKind.EXCHANGE:
            leg = TAOBAO_EXCHANGE.leg(Payer.BUYER)
            draft.return_leg = draft.reship = leg
        elif draft.outbound is not None and draft.outbound.payer is Payer.MERCHANT:
            draft.return_leg = TAOBAO_FREE_SHIPPING.leg(Payer.BUYER)
        else:
            draft.outbound = TAOBAO_PAID_SHIPPING.leg(Payer.BUYER)
            draft.return_leg = TAOBAO_PAID_SHIPPING.leg(Payer.BUYER)
    elif draft.basis is Basis.SELLER_FAULT:
        draft.notes.append(TAOBAO_EVIDENCE.cite())
    elif draft.basis is Basis.NOT_SHIPPED and ctx.facts.order.shipped_at is not None:
        draft.notes.append(TAOBAO_INTERCEPT.cite())


def _jd(ctx: Context, draft: DecisionDraft) -> None:
    if draft.basis is not Basis.SELLER_FAULT:
        return
    leg = JD_COSTS.leg(Payer.MERCHANT)
    draft.outbound = draft.return_leg = draft.reship = leg
    # S15 Art 26(1) is about visible (appearance) defects, which is what transit damage is.
    if ctx.facts.request.reason is Reason.DAMAGED_IN_TRANSIT and any(
        line.category in ELECTRONICS for line, _ in ctx.returned
    ):
        draft.need(JD_REPORT_WINDOW)
    if draft.is_open(Remedy.REPAIR) or ctx.day_number is None:
        return
    # S15 Art 27: shoes and bags whose merchant states no warranty get a default one on JD.
    lines = [line for line, _ in ctx.returned]
    covered = [
        line
        for line in lines
        if line.category in JD_DEFAULT_WARRANTY_DAYS
        and line.warranty_months == 0
        and ctx.day_number <= JD_DEFAULT_WARRANTY_DAYS[line.category]
    ]
    if lines and len(covered) == len(lines):
        category = covered[0].category
        zh, en = JD_WARRANTY_NAMES[category]
        days = JD_DEFAULT_WARRANTY_DAYS[category]
        draft.open(Remedy.REPAIR, JD_DEFAULT_WARRANTY.cite(what_zh=zh, what_en=en, days=days))


def _wechat(ctx: Context, draft: DecisionDraft) -> None:
    if draft.basis is Basis.NOT_SHIPPED:
        draft.open(Remedy.REFUND_ONLY, WECHAT_UNSHIPPED.cite())
    elif ctx.facts.request.kind is RequestKind.REFUND_ONLY and not draft.is_open(Remedy.REFUND_ONLY):
        draft.notes.append(WECHAT_REFUND_ONLY_AFTER_SHIPPING.cite())
