"""What the engine answers: which remedies are open and why, who pays which shipping leg, how much is
refunded to which payment method, the deadlines, the evidence to ask for, and flags for the store.

A decision is stored on the case when it is made (DESIGN.md), so everything in it is plain data and
`to_dict()` is stable JSON: Decimals as strings (never floats), dates and datetimes in ISO 8601.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aftersales.policies.facts import PaymentMethod, RequestKind

ZERO = Decimal("0")


class Remedy(StrEnum):
    RETURN_REFUND = "return_refund"
    REFUND_ONLY = "refund_only"
    EXCHANGE = "exchange"
    REPAIR = "repair"


CITATION_MEMO_SIZE = 4096

REMEDY_ORDER = (Remedy.RETURN_REFUND, Remedy.REFUND_ONLY, Remedy.EXCHANGE, Remedy.REPAIR)


class Payer(StrEnum):
    BUYER = "buyer"
    MERCHANT = "merchant"
    # 运费险: an insurer pays the return leg up to a cap; the rest falls back on the buyer.
    INSURER = "insurer"
    NOT_APPLICABLE = "not_applicable"


class Basis(StrEnum):
    """Which body of rules the request is decided under; it drives shipping and refund maths."""

    NO_REASON = "no_reason"
    SELLER_FAULT = "seller_fault"
    WITHDRAWAL = "withdrawal"
    LATE_DELIVERY = "late_delivery"
    PRICE_PROTECTION = "price_protection"
    NOT_SHIPPED = "not_shipped"
    STORE_POLICY = "store_policy"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Citation:
    rule_id: str
    source: str
    zh: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"rule_id": self.rule_id, "source": self.source, "zh": self.zh, "en": self.en}


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule with a stable id, its legal or contractual source, and buyer-facing text templates.

    Templates take keyword arguments (``{last_day}``, ``{sku}``...) so that the explanation names
    the buyer's own dates and items.
    """

    rule_id: str
    source: str
    zh: str
    en: str
    # Most rules are cited without parameters; build that citation once (the engine's hot path).
    plain: Citation = field(init=False, repr=False, compare=False)
    _legs: dict[Payer, ShippingLeg] = field(init=False, repr=False, compare=False)
    _cited: dict[tuple[tuple[str, object], ...], Citation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plain", Citation(self.rule_id, self.source, self.zh, self.en))
        object.__setattr__(self, "_legs", {})
        object.__setattr__(self, "_cited", {})

    def leg(self, payer: Payer) -> ShippingLeg:
        """A shipping leg paid by `payer` under this rule; shared, since legs are immutable."""
        found = self._legs.get(payer)
        if found is None:
            found = self._legs[payer] = ShippingLeg(payer, self.plain)
        return found

    def cite(self, **params: object) -> Citation:
        if not params:
            return self.plain
        # The same dates and SKUs come back again and again; remember a bounded number of them.
        key = tuple(params.items())
        found = self._cited.get(key)
        if found is None:
            if len(self._cited) >= CITATION_MEMO_SIZE:
                self._cited.clear()
            found = Citation(self.rule_id, self.source, self.zh.format(**params), self.en.format(**params))
            self._cited[key] = found
        return found


@dataclass(frozen=True, slots=True)
class RemedyVerdict:
    remedy: Remedy
    open: bool
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        return {"remedy": self.remedy.value, "open": self.open, **self.citation.to_dict()}


@dataclass(frozen=True, slots=True)
class ShippingLeg:
    payer: Payer
    citation: Citation
    # Only for Payer.INSURER: the insurer pays up to this amount, the buyer the rest.
    cap: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "payer": self.payer.value,
            "cap": None if self.cap is None else str(self.cap),
            **self.citation.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Shipping:
    outbound: ShippingLeg
    return_leg: ShippingLeg
    reship: ShippingLeg

    def to_dict(self) -> dict[str, Any]:
        return {
            "outbound": self.outbound.to_dict(),
            "return": self.return_leg.to_dict(),
            "reship": self.reship.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Deduction:
    code: str
    amount: Decimal
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "amount": str(self.amount), **self.citation.to_dict()}


@dataclass(frozen=True, slots=True)
class RefundPart:
    method: PaymentMethod
    amount: Decimal
    # Coupons, points and store credit go back as themselves, not as cash (S3 Art 15).
    in_kind: bool

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method.value, "amount": str(self.amount), "in_kind": self.in_kind}


@dataclass(frozen=True, slots=True)
class Refund:
    currency: str
    # What the buyer actually paid for the returned goods (after line discounts and their 满减 share).
    goods_paid: Decimal
    shipping_refunded: Decimal
    deductions: tuple[Deduction, ...]
    amount: Decimal
    split: tuple[RefundPart, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "goods_paid": str(self.goods_paid),
            "shipping_refunded": str(self.shipping_refunded),
            "deductions": [d.to_dict() for d in self.deductions],
            "amount": str(self.amount),
            "split": [p.to_dict() for p in self.split],
        }


@dataclass(frozen=True, slots=True)
class Deadlines:
    # The last local day on which the buyer may send the notice, and the instant it closes (exclusive).
    return_window_last_day: dt.date | None
    return_window_closes_at: dt.datetime | None
    # Name of the statutory holiday that pushed the last day out, if any.
    window_extended_for: str | None
    # The refund is due this many days after the merchant receives the goods; counted as the
    # receipt day plus N (the start day is not counted, S6 Art 201).
    refund_due_days_after_receipt: int | None
    refund_due_rule: Citation | None
    # S3 Art 31(2)(3): past these lines the merchant's delay is punishable, escalate.
    violation_days_after_receipt: int | None
    request_handling_violation_at: dt.datetime | None
    warranty_last_day: dt.date | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "return_window_last_day": _iso(self.return_window_last_day),
            "return_window_closes_at": _iso(self.return_window_closes_at),
            "window_extended_for": self.window_extended_for,
            "refund_due_days_after_receipt": self.refund_due_days_after_receipt,
            "refund_due_rule": None if self.refund_due_rule is None else self.refund_due_rule.to_dict(),
            "violation_days_after_receipt": self.violation_days_after_receipt,
            "request_handling_violation_at": _iso(self.request_handling_violation_at),
            "warranty_last_day": _iso(self.warranty_last_day),
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    code: str
    zh: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


@dataclass(frozen=True, slots=True)
class AutoApproval:
    allowed: bool
    why: Citation

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, **self.why.to_dict()}


@dataclass(frozen=True, slots=True)
class Decision:
    requested: RequestKind
    basis: Basis
    remedies: tuple[RemedyVerdict, ...]
    shipping: Shipping
    refund: Refund
    deadlines: Deadlines
    evidence: tuple[Evidence, ...]
    auto_approval: AutoApproval
    # For store admins: store settings that were ignored because the law voids them, data to fix.
    flags: tuple[Citation, ...]
    # Other rules that shaped the decision, in the order they were applied.
    notes: tuple[Citation, ...]

    def verdict(self, remedy: Remedy | str) -> RemedyVerdict:
        wanted = Remedy(remedy)
        for item in self.remedies:
            if item.remedy is wanted:
                return item
        raise KeyError(remedy)

    @property
    def requested_open(self) -> bool:
        return self.verdict(self.requested.value).open

    @property
    def open_remedies(self) -> tuple[Remedy, ...]:
        return tuple(item.remedy for item in self.remedies if item.open)

    @property
    def flag_ids(self) -> tuple[str, ...]:
        return tuple(item.rule_id for item in self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested.value,
            "requested_open": self.requested_open,
            "basis": self.basis.value,
            "remedies_open": [v.to_dict() for v in self.remedies if v.open],
            "remedies_closed": [v.to_dict() for v in self.remedies if not v.open],
            "shipping": self.shipping.to_dict(),
            "refund": self.refund.to_dict(),
            "deadlines": self.deadlines.to_dict(),
            "evidence": [e.to_dict() for e in self.evidence],
            "may_auto_approve": self.auto_approval.to_dict(),
            "flags": [f.to_dict() for f in self.flags],
            "notes": [n.to_dict() for n in self.notes],
        }


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --------------------------------------------------------------------------------------------
# The mutable draft the layers write into. Kept here, not in engine.py, so rule modules can use it
# without importing the engine.


@dataclass(slots=True)
class DecisionDraft:
    requested: RequestKind
    default_closed: Citation
    basis: Basis = Basis.NONE
    remedies: dict[Remedy, tuple[bool, Citation]] = field(default_factory=dict)
    # Set while the store layer runs: a store promise may open a remedy but never close one.
    store_layer: bool = False
    outbound: ShippingLeg | None = None
    return_leg: ShippingLeg | None = None
    reship: ShippingLeg | None = None
    # Refund switches, set by the layer that knows the rule behind them.
    refund_outbound_shipping: bool = False
    no_reason_deductions: bool = False
    depreciation: tuple[Decimal, int, Citation] | None = None  # (daily rate, days charged, rule)
    # Price protection: the refund is the price difference, not the goods.
    price_difference: Decimal | None = None
    window_last_day: dt.date | None = None
    window_closes_at: dt.datetime | None = None
    window_extended_for: str | None = None
    # Why the no-reason (or withdrawal) return was closed by the floor: "window" lets a longer
    # store window reopen it; anything else (an exclusion, goods not intact) it may not.
    window_closed_only: bool = False
    refund_due_days: int | None = None
    refund_due_rule: Citation | None = None
    violation_days: int | None = None
    request_violation_at: dt.datetime | None = None
    warranty_last_day: dt.date | None = None
    evidence: list[Evidence] = field(default_factory=list)
    flags: list[Citation] = field(default_factory=list)
    notes: list[Citation] = field(default_factory=list)
    auto_block: Citation | None = None

    def open(self, remedy: Remedy, citation: Citation) -> None:
        self.remedies[remedy] = (True, citation)

    def close(self, remedy: Remedy, citation: Citation) -> None:
        if self.store_layer:
            # Store promises may only be more generous (S4 Art 12; cn-rules §7.1); a stricter store
            # setting is flagged by the store layer, never applied.
            raise RuntimeError("a store promise cannot close a remedy")
        self.remedies[remedy] = (False, citation)

    def explain_closed(self, remedy: Remedy, citation: Citation) -> None:
        """Replace the reason a closed remedy is closed (e.g. "store window passed"); never opens or closes."""
        state = self.remedies.get(remedy)
        if state is None or not state[0]:
            self.remedies[remedy] = (False, citation)

    def is_open(self, remedy: Remedy) -> bool:
        state = self.remedies.get(remedy)
        return state is not None and state[0]

    def flag(self, citation: Citation) -> None:
        if all(existing.rule_id != citation.rule_id for existing in self.flags):
            self.flags.append(citation)

    def need(self, evidence: Evidence) -> None:
        if all(existing.code != evidence.code for existing in self.evidence):
            self.evidence.append(evidence)

    def verdicts(self) -> tuple[RemedyVerdict, ...]:
        result = []
        for remedy in REMEDY_ORDER:
            is_open, citation = self.remedies.get(remedy, (False, self.default_closed))
            result.append(RemedyVerdict(remedy, is_open, citation))
        return tuple(result)
