"""The policy engine: facts in, decision out.

    decision = evaluate(facts)

Pure and deterministic: no database, no clock (every date is judged against `request.notice_at`),
no I/O. Layers apply in a fixed order — statutory floor of the jurisdiction, platform overlay,
store promises — and the refund is computed last from what the layers decided.
"""

from __future__ import annotations

from collections.abc import Callable

from aftersales.policies.decision import (
    REMEDY_ORDER,
    AutoApproval,
    Basis,
    Citation,
    Deadlines,
    Decision,
    DecisionDraft,
    Payer,
    Remedy,
    Rule,
    Shipping,
    ShippingLeg,
)
from aftersales.policies.facts import Facts, Jurisdiction, RequestKind, validate_facts
from aftersales.policies.rules import cn_law, eu_uk_us, platforms, store_promises
from aftersales.policies.rules.context import Context, build_context
from aftersales.policies.rules.refund_math import compute_refund

FLOORS: dict[Jurisdiction, Callable[[Context, DecisionDraft], None]] = {
    Jurisdiction.CN: cn_law.apply,
    Jurisdiction.EU: eu_uk_us.apply_eu,
    Jurisdiction.UK: eu_uk_us.apply_uk,
    Jurisdiction.US: eu_uk_us.apply_us,
}

AUTO_CLEAR = Rule(
    "auto.clear",
    "engine",
    "申请符合规则且无需人工判断的证据，可以自动同意。",
    "The request meets the rules and needs no evidence to be judged by a person, so it can be approved "
    "automatically.",
)
AUTO_CLOSED = Rule(
    "auto.remedy_closed",
    "engine",
    "所申请的售后方式不可用，不能自动同意；请客服说明原因或提出其他方案。",
    "The remedy asked for is not available, so it cannot be approved automatically; an agent should "
    "explain why or offer another remedy.",
)
AUTO_EVIDENCE = Rule(
    "auto.needs_review",
    "engine",
    "需要客服审核凭证（照片、物流记录或检测）后再决定。",
    "An agent must review the evidence (photos, tracking or a test) before deciding.",
)
AUTO_FLAGS = Rule(
    "auto.flags_open",
    "engine",
    "本次决定有需要人工处理的事项（见提示），不能自动同意。",
    "The decision has items that need a person (see the flags), so it cannot be approved automatically.",
)

# Flags that concern this very refund (not just store configuration) stop automatic approval.
REFUND_REVIEW_FLAGS = frozenset(
    {"cn.nr.gift_value_unknown", "cn.nr.buyer_owes", "cn.nr.free_shipping_fee_unknown"}
)
REMEDY_INDEX = {kind: REMEDY_ORDER.index(Remedy(kind.value)) for kind in RequestKind}
AUTO_BASES = frozenset(
    {Basis.NO_REASON, Basis.WITHDRAWAL, Basis.NOT_SHIPPED, Basis.STORE_POLICY, Basis.PRICE_PROTECTION}
)


def evaluate(facts: Facts) -> Decision:
    """Decide a request. Raises FactsError for inconsistent facts."""
    validate_facts(facts)
    ctx = build_context(facts)
    draft = DecisionDraft(requested=facts.request.kind, default_closed=cn_law.OUT_OF_SCOPE.cite())
    FLOORS[facts.store.jurisdiction](ctx, draft)
    platforms.apply(ctx, draft)
    store_promises.apply(ctx, draft)
    refund = compute_refund(ctx, draft)
    remedies = draft.verdicts()
    requested = remedies[REMEDY_INDEX[facts.request.kind]]
    return Decision(
        requested=facts.request.kind,
        basis=draft.basis,
        remedies=remedies,
        shipping=_shipping(draft, facts.request.kind, requested.open, requested.citation),
        refund=refund,
        deadlines=Deadlines(
            return_window_last_day=draft.window_last_day,
            return_window_closes_at=draft.window_closes_at,
            window_extended_for=draft.window_extended_for,
            refund_due_days_after_receipt=draft.refund_due_days,
            refund_due_rule=draft.refund_due_rule,
            violation_days_after_receipt=draft.violation_days,
            request_handling_violation_at=draft.request_violation_at,
            warranty_last_day=draft.warranty_last_day,
        ),
        evidence=tuple(draft.evidence),
        auto_approval=_auto_approval(draft, requested.open),
        flags=tuple(draft.flags),
        notes=tuple(draft.notes),
    )


def _shipping(draft: DecisionDraft, kind: RequestKind, is_open: bool, closed_because: Citation) -> Shipping:
    """Who pays which leg of the requested remedy; nothing moves when the remedy is closed."""
    unused = cn_law.NOT_APPLICABLE_LEG.leg(Payer.NOT_APPLICABLE)
    if not is_open:
        none = ShippingLeg(Payer.NOT_APPLICABLE, closed_because)
        return Shipping(none, none, none)
    outbound = draft.outbound or unused
    return_leg = draft.return_leg or unused
    reship = draft.reship or unused
    if kind is RequestKind.REFUND_ONLY:
        return_leg = reship = unused
    elif kind is RequestKind.RETURN_REFUND:
        reship = unused
    elif reship.payer is Payer.NOT_APPLICABLE:
        # An exchange or a repair sends something back to the buyer; whoever pays the return pays that too.
        reship = return_leg
    return Shipping(outbound, return_leg, reship)


def _auto_approval(draft: DecisionDraft, is_open: bool) -> AutoApproval:
    if not is_open:
        return AutoApproval(False, AUTO_CLOSED.cite())
    if draft.auto_block is not None:
        return AutoApproval(False, draft.auto_block)
    if draft.basis not in AUTO_BASES or draft.evidence:
        return AutoApproval(False, AUTO_EVIDENCE.cite())
    if any(flag.rule_id in REFUND_REVIEW_FLAGS for flag in draft.flags):
        return AutoApproval(False, AUTO_FLAGS.cite())
    return AutoApproval(True, AUTO_CLEAR.cite())


__all__ = ["Remedy", "evaluate"]
