"""The timeout of each waiting state: what happens on its own when nobody acts, and when.

Defaults follow the platform the store sells on (shared domain notes §5): WeChat's published rules
(48 h for the shop to answer, 7 days for the buyer to ship, 10 days for the shop to confirm receipt,
7 days to escalate after a rejection) are also the default of an independent shop; JD gives the
merchant 48 h to review an after-sale order and the buyer 15 days to escalate a rejection; Taobao gives
the seller 5 days on a request about goods already shipped. The law's refund clock (暂行办法 Art 13 and
the notes §7.3) is the same everywhere: due 7 days after the goods are back, alert a day before, a
violation at 15 days. A store may change any number or switch a timeout off (sla.TimeoutSetting).

The deadline is only computed and stored on the case here, so that it is data a query can find; the
sweep that acts on it is in aftersales/sla.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aftersales.sla import selectors as sla_selectors

from .states import Status

if TYPE_CHECKING:
    from collections.abc import Mapping

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@dataclass(frozen=True)
class DeadlineRule:
    rule: str
    after: dt.timedelta  # from the moment the case entered the state


WECHAT: dict[str, tuple[DeadlineRule, ...]] = {
    Status.PENDING_REVIEW: (DeadlineRule("shop_review_timeout.auto_approve", 48 * H),),
    Status.AWAITING_RETURN: (DeadlineRule("buyer_ship_timeout.expire", 7 * D),),
    Status.AWAITING_DEVICE: (DeadlineRule("buyer_ship_timeout.expire", 7 * D),),
    Status.RETURN_IN_TRANSIT: (DeadlineRule("shop_confirm_timeout.auto_receive", 10 * D),),
    Status.DEVICE_IN_TRANSIT: (DeadlineRule("shop_confirm_timeout.auto_receive", 10 * D),),
    # The law gives no number for how long a buyer may sit on an offer or a quote (domain notes §7.6);
    # 7 days mirrors the platforms' other buyer-side clocks. Timing out declines it.
    Status.NEGOTIATING: (DeadlineRule("buyer_offer_timeout.decline", 7 * D),),
    Status.QUOTE_PENDING: (DeadlineRule("buyer_quote_timeout.decline", 7 * D),),
    # Several stages in one state: each fires in turn, the last one leaves no deadline.
    Status.REFUNDING: (
        DeadlineRule("refund_due.alert", 6 * D),
        DeadlineRule("refund_due.statutory_7_days", 7 * D),
        DeadlineRule("refund_due.violation_15_days", 15 * D),
    ),
    Status.REJECTED: (DeadlineRule("escalation_window.close", 7 * D),),
    # A conversation nobody has taken up: an alert (the SLA clocks do the fine-grained work).
    Status.OPEN: (DeadlineRule("first_response.due", 24 * H),),
}

DEFAULTS_BY_PLATFORM: dict[str, dict[str, tuple[DeadlineRule, ...]]] = {
    "none": WECHAT,
    "wechat": WECHAT,
    "jd": {
        **WECHAT,
        Status.PENDING_REVIEW: (DeadlineRule("shop_review_timeout.auto_approve", 48 * H),),  # jd.q.review_h
        Status.REJECTED: (DeadlineRule("escalation_window.close", 15 * D),),  # jd.escalate_window_days
    },
    "taobao": {
        **WECHAT,
        # tb.timeout.seller_refund: 5 days once the goods have shipped, which after-sales requests are.
        Status.PENDING_REVIEW: (DeadlineRule("shop_review_timeout.auto_approve", 5 * D),),
    },
}


def rules_for(status: str, *, platform_mode: str = "none",
              overrides: Mapping[str, int | None] | None = None) -> tuple[DeadlineRule, ...]:
    """The stages of the timeout in `status`. `overrides` maps a status to the store's own minutes for
    its first stage (None: switched off); later stages keep their distance from the first."""
    defaults = DEFAULTS_BY_PLATFORM.get(platform_mode, WECHAT).get(status, ())
    if not overrides or status not in overrides or not defaults:
        return defaults
    minutes = overrides[status]
    if minutes is None:
        return ()
    shift = dt.timedelta(minutes=minutes) - defaults[0].after
    return tuple(DeadlineRule(stage.rule, stage.after + shift) for stage in defaults)


def deadline_for(status: str, entered_at: dt.datetime, *, platform_mode: str = "none",
                 overrides: Mapping[str, int | None] | None = None) -> tuple[dt.datetime | None, str]:
    stages = rules_for(status, platform_mode=platform_mode, overrides=overrides)
    if not stages:
        return None, ""
    return entered_at + stages[0].after, stages[0].rule


def next_stage(status: str, rule: str, entered_at: dt.datetime, *, platform_mode: str = "none",
               overrides: Mapping[str, int | None] | None = None) -> tuple[dt.datetime | None, str]:
    """The stage after `rule` in the same state, or (None, "") when it was the last."""
    stages = rules_for(status, platform_mode=platform_mode, overrides=overrides)
    names = [stage.rule for stage in stages]
    if rule not in names or names.index(rule) + 1 >= len(stages):
        return None, ""
    following = stages[names.index(rule) + 1]
    return entered_at + following.after, following.rule


def deadline_for_case(case: object, entered_at: dt.datetime, *,
                      timeouts: tuple[str, Mapping[str, int | None]] | None = None) -> tuple[dt.datetime | None, str]:
    """The deadline for a case entering its current status, with its store's platform and settings
    (`timeouts`: the store's platform mode and timeout settings, when the caller has read them)."""
    store_id: int = case.store_id  # type: ignore[attr-defined]
    status: str = case.status  # type: ignore[attr-defined]
    if timeouts is None:
        # The store is often in hand already (a new case carries it): its platform mode is then not read again.
        store = case.store if type(case).store.is_cached(case) else None  # type: ignore[attr-defined]
        timeouts = sla_selectors.timeout_settings(
            store_id=store_id, platform_mode=store.platform_mode if store is not None else None)
    platform_mode, overrides = timeouts
    return deadline_for(status, entered_at, platform_mode=platform_mode, overrides=overrides)
