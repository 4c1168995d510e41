"""Small template helpers shared by the console and the portal: labels in the page's language, money,
deadline urgency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone
from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _

from aftersales.cases.models import Priority
from aftersales.cases.states import Kind, Status

register = template.Library()

CURRENCY_SIGNS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "JPY": "¥"}


def _is_chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


@register.filter
def pick(item: Any) -> str:
    """The zh or en text of a policy citation or evidence item, by the page's language."""
    if not isinstance(item, dict):
        return ""
    return str(item.get("zh") if _is_chinese() else item.get("en")) or ""


@register.filter
def status_label(status: str) -> str:
    zh, en = Status.LABELS.get(status, (status, status))
    return zh if _is_chinese() else en


@register.filter
def kind_label(kind: str) -> str:
    zh, en = Kind.LABELS.get(kind, (kind, kind))
    return zh if _is_chinese() else en


@register.filter
def priority_label(priority: int) -> str:
    try:
        return str(Priority(int(priority)).label)
    except ValueError:
        return str(priority)


@register.filter
def money(amount: Any, currency: str = "CNY") -> str:
    if amount is None or amount == "":
        return "—"
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    sign = CURRENCY_SIGNS.get(currency or "CNY", f"{currency} ")
    return f"{sign}{value:,.2f}"


@register.filter
def urgency(deadline: dt.datetime | None) -> str:
    """A CSS class for a deadline: overdue, under 4 hours, under 24 hours, or later."""
    if deadline is None:
        return "due-none"
    left = (deadline - timezone.now()).total_seconds()
    if left < 0:
        return "due-over"
    if left < 4 * 3600:
        return "due-soon"
    if left < 24 * 3600:
        return "due-today"
    return "due-later"


@register.filter
def countdown(deadline: dt.datetime | None) -> str:
    """"3 h 20 min left" or "overdue by 2 h", rendered on the server and refreshed by the page script."""
    if deadline is None:
        return ""
    seconds = int((deadline - timezone.now()).total_seconds())
    late = seconds < 0
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        span = _("%(d)s d %(h)s h") % {"d": days, "h": hours}
    elif hours:
        span = _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    else:
        span = _("%(m)s min") % {"m": minutes}
    return (_("overdue by %(span)s") if late else _("%(span)s left")) % {"span": span}


@register.filter
def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action.replace("_", " "))


@register.filter
def outcome_label(outcome: str) -> str:
    labels = {
        "passed": _("passed"), "failed": _("failed"), "refund": _("refund"), "return": _("return"),
        "reject": _("reject"), "reship": _("reship"), "exchange": _("exchange"), "covered": _("covered"),
        "repair": _("repair"),
    }
    return labels.get(outcome, outcome)


class _Labels(dict[str, str]):
    def get(self, key: str, default: Any = None) -> Any:
        # Translated when read, not when imported, so each page gets its own language.
        value = super().get(key)
        return _(value) if value is not None else default


ACTION_LABELS = _Labels(
    approve=gettext_noop("Approve"), reject=gettext_noop("Reject"), counter_offer=gettext_noop("Counter-offer"), accept_offer=gettext_noop("Accept the offer"),
    decline_offer=gettext_noop("Decline the offer"), ship_return=gettext_noop("I have shipped the goods"), mark_received=gettext_noop("Mark received"),
    start_inspection=gettext_noop("Start inspection"), record_inspection=gettext_noop("Record inspection"), refund=gettext_noop("Refund"),
    reship=gettext_noop("Ship the replacement"), start_diagnosis=gettext_noop("Start diagnosis"), diagnose=gettext_noop("Diagnose"), quote=gettext_noop("Send a quote"),
    accept_quote=gettext_noop("Accept the quote"), decline_quote=gettext_noop("Decline the quote"), mark_repaired=gettext_noop("Mark repaired"),
    ship_back=gettext_noop("Ship back"), convert=gettext_noop("Convert"), escalate=gettext_noop("Ask the platform to step in"), arbitrate=gettext_noop("Arbitrate"),
    cancel=gettext_noop("Cancel the request"), acknowledge=gettext_noop("Acknowledge"), start_progress=gettext_noop("Start working"),
    wait_on_customer=gettext_noop("Wait for the buyer"), customer_replied=gettext_noop("I have replied"), resolve=gettext_noop("Resolve"), reopen=gettext_noop("Reopen"),
    close=gettext_noop("Close"), expire=gettext_noop("Timed out"),
    # Timeline events that are not transitions.
    created=gettext_noop("Filed"), submit=gettext_noop("Sent for review"), assigned=gettext_noop("Assigned"),
    message=gettext_noop("Message"), note=gettext_noop("Internal note"), attachment=gettext_noop("Photo or file added"),
    priority_changed=gettext_noop("Priority changed"), rated=gettext_noop("Rated"),
    decision_updated=gettext_noop("Policy decision updated"),
    # Written by the SLA clocks and the timeouts.
    sla_warning=gettext_noop("SLA warning"), sla_breached=gettext_noop("SLA breached"),
    sla_escalated=gettext_noop("SLA breach escalated to a supervisor"),
    refund_due_soon=gettext_noop("Refund due soon"), refund_overdue=gettext_noop("Refund overdue"),
    refund_violation=gettext_noop("Refund 15 days overdue"),
    first_response_overdue=gettext_noop("First response overdue"),
    # Written by the refund ledger.
    refund_requested=gettext_noop("Refund requested"), refund_succeeded=gettext_noop("Refund paid"),
    refund_failed=gettext_noop("Refund failed"), refund_pending_approval=gettext_noop("Refund waiting for finance"),
    refund_processing=gettext_noop("Refund processing"), refund_cancelled=gettext_noop("Refund cancelled"),
    refund_item_cancelled=gettext_noop("Refund line cancelled"),
    store_credit_consent=gettext_noop("Agreed to store credit"),
    refund_approved=gettext_noop("Refund approved by finance"),
    # Written by an exchange whose replacement costs more: the buyer pays the difference, and gets it
    # back if the exchange is given up.
    exchange_charge_requested=gettext_noop("Price difference requested"),
    exchange_charge_succeeded=gettext_noop("Price difference paid"),
    exchange_charge_failed=gettext_noop("Price difference payment failed"),
    exchange_charge_cancelled=gettext_noop("Price difference payment cancelled"),
    exchange_charge_abandoned=gettext_noop("Exchange given up after the difference was charged"),
    exchange_charge_refund_requested=gettext_noop("Price difference being paid back"),
    exchange_charge_refunded=gettext_noop("Price difference paid back"),
    exchange_charge_refund_failed=gettext_noop("Paying back the price difference failed"),
    demo_hold=gettext_noop("Placed here by the demo data"),
)
