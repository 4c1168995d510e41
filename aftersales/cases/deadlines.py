"""The default timeout of each waiting state: what happens on its own when nobody acts, and when.

Defaults follow the platforms' published rules (shared domain notes §5.3, WeChat: 48 h for the shop to
answer, 7 days for the buyer to ship, 10 days for the shop to confirm receipt, 7 days to escalate
after a rejection) and the law's refund clock (暂行办法 Art 13: refund within 7 days of receiving the
goods). The sweep that acts on them belongs to the SLA app; here the deadline is only computed and
stored on the case, so that it is data a query can find.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .states import Status


@dataclass(frozen=True)
class DeadlineRule:
    rule: str
    after: dt.timedelta


DEFAULT_DEADLINES: dict[str, DeadlineRule] = {
    Status.PENDING_REVIEW: DeadlineRule("shop_review_timeout.auto_approve", dt.timedelta(hours=48)),
    Status.AWAITING_RETURN: DeadlineRule("buyer_ship_timeout.expire", dt.timedelta(days=7)),
    Status.AWAITING_DEVICE: DeadlineRule("buyer_ship_timeout.expire", dt.timedelta(days=7)),
    Status.RETURN_IN_TRANSIT: DeadlineRule("shop_confirm_timeout.auto_receive", dt.timedelta(days=10)),
    Status.DEVICE_IN_TRANSIT: DeadlineRule("shop_confirm_timeout.auto_receive", dt.timedelta(days=10)),
    # The law gives no number for how long a buyer may sit on an offer or a quote (domain notes §7.6);
    # 7 days mirrors the platforms' other buyer-side clocks. Timing out declines it.
    Status.NEGOTIATING: DeadlineRule("buyer_offer_timeout.decline", dt.timedelta(days=7)),
    Status.QUOTE_PENDING: DeadlineRule("buyer_quote_timeout.decline", dt.timedelta(days=7)),
    Status.REFUNDING: DeadlineRule("refund_due.statutory_7_days", dt.timedelta(days=7)),
    Status.REJECTED: DeadlineRule("escalation_window.close", dt.timedelta(days=7)),
    Status.OPEN: DeadlineRule("first_response.due", dt.timedelta(hours=24)),
}


def deadline_for(status: str, entered_at: dt.datetime) -> tuple[dt.datetime | None, str]:
    rule = DEFAULT_DEADLINES.get(status)
    if rule is None:
        return None, ""
    return entered_at + rule.after, rule.rule
