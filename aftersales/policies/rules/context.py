"""Values every layer needs, computed once per evaluation (local dates, the returned lines)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from aftersales.policies.facts import Facts, OrderLine
from aftersales.policies.rules.calendar import local_date, zone


@dataclass(slots=True)
class Context:
    """Built once per evaluation and only read afterwards (not frozen: it is internal and hot)."""

    facts: Facts
    tz: ZoneInfo
    notice_day: dt.date
    # Local day of signing (delivery, S2 Art 51); None when the order has not been delivered.
    signed_day: dt.date | None
    # Where quality periods start: installation completion when the merchant installs (S4 Art 18(1)).
    service_start_day: dt.date | None
    # Requested paid lines with the quantity asked for; gift lines are handled by the refund maths.
    returned: tuple[tuple[OrderLine, int], ...]
    full_return: bool
    shipped: bool
    # Paid lines after line discounts, before 满减: the whole order, and the part asked back.
    subtotal: Decimal
    returned_subtotal: Decimal

    @property
    def day_number(self) -> int | None:
        """Day of the notice counted from the day after delivery/installation: day 1 is the next day."""
        if self.service_start_day is None:
            return None
        return (self.notice_day - self.service_start_day).days


def build_context(facts: Facts) -> Context:
    tz = zone(facts.store.timezone)
    order = facts.order
    by_id = {line.line_id: line for line in order.lines}
    asked: dict[str, int] = {}
    for wanted in facts.request.lines:
        asked[wanted.line_id] = asked.get(wanted.line_id, 0) + wanted.quantity
    returned = tuple((by_id[line_id], qty) for line_id, qty in asked.items() if not by_id[line_id].is_gift)
    full_return = True
    subtotal = Decimal(0)
    for line in order.lines:
        if not line.is_gift:
            subtotal += line.net_amount
            if asked.get(line.line_id, 0) != line.quantity:
                full_return = False
    returned_subtotal = Decimal(0)
    for line, qty in returned:
        returned_subtotal += line.net_amount if qty == line.quantity else line.net_amount * qty / line.quantity
    signed_day = None if order.signed_at is None else local_date(order.signed_at, tz)
    if order.installed_at is not None:
        service_start_day: dt.date | None = local_date(order.installed_at, tz)
    else:
        service_start_day = signed_day
    return Context(
        facts=facts,
        tz=tz,
        notice_day=local_date(facts.request.notice_at, tz),
        signed_day=signed_day,
        service_start_day=service_start_day,
        returned=returned,
        full_return=full_return,
        shipped=order.shipped_at is not None or order.signed_at is not None,
        subtotal=subtotal,
        returned_subtotal=returned_subtotal,
    )
