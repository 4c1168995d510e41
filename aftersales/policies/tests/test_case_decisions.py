"""The engine wired into cases: decided when a case opens, stored as it was, driving auto-approval."""

import datetime as dt

import pytest
import time_machine

from aftersales.cases import services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.orders.models import Shipment
from aftersales.policies.models import StorePolicy
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db

# Signed for on 2026-11-01 18:00 in Shanghai; the 7-day window runs to 24:00 on 2026-11-08 (S3 Art 10).
WITHIN_WINDOW = dt.datetime(2026, 11, 8, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=8)))
AFTER_WINDOW = dt.datetime(2026, 11, 9, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _return(store, buyer, order, reason="no_reason"):
    line = order.lines.order_by("line_no")[0]
    return services.create_case(actor=f.buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[services.LineRequest(order_line_id=line.pk, quantity=1)], reason_code=reason)


def test_a_no_reason_return_inside_the_window_is_open_and_priced():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)

    with time_machine.travel(WITHIN_WINDOW, tick=False):
        case = _return(store, buyer, order)

    assert case.decision["requested_open"] is True
    assert case.decision["refund"]["amount"] == "99.00"
    assert case.decision["deadlines"]["return_window_last_day"] == "2026-11-08"
    assert case.status == "pending_review"


def test_one_minute_later_the_same_request_is_closed_by_the_window_rule():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)

    with time_machine.travel(AFTER_WINDOW, tick=False):
        case = _return(store, buyer, order)

    assert case.decision["requested_open"] is False
    assert [r["rule_id"] for r in case.decision["remedies_closed"] if r["remedy"] == "return_refund"] == [
        "cn.nr.window_passed"
    ]


def test_the_stored_decision_is_not_rewritten_when_the_store_changes_its_promises():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)
    with time_machine.travel(AFTER_WINDOW, tick=False):
        case = _return(store, buyer, order)
    before = dict(case.decision)

    StorePolicy.objects.create(store=store, no_reason_days=30)
    case.refresh_from_db()

    assert case.decision == before


def test_a_longer_store_promise_opens_what_the_law_had_closed():
    store = f.make_store()
    StorePolicy.objects.create(store=store, no_reason_days=30)
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)

    with time_machine.travel(AFTER_WINDOW, tick=False):
        case = _return(store, buyer, order)

    assert case.decision["requested_open"] is True


def test_a_store_that_opted_in_has_eligible_requests_approved_by_the_engine():
    store = f.make_store()
    StorePolicy.objects.create(store=store, auto_approve_eligible=True)
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)

    with time_machine.travel(WITHIN_WINDOW, tick=False):
        case = _return(store, buyer, order)

    assert case.decision["may_auto_approve"]["allowed"] is True
    assert case.status == "awaiting_return"
    assert case.deadline_rule == "buyer_ship_timeout.expire"
    approve = TimelineEntry.objects.get(case=case, event="approve")
    assert (approve.actor_kind, approve.data) == ("system", {"rule": "policy.auto_approve"})


def test_without_the_opt_in_an_eligible_request_waits_for_the_shop():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)

    with time_machine.travel(WITHIN_WINDOW, tick=False):
        case = _return(store, buyer, order)

    assert (case.decision["may_auto_approve"]["allowed"], case.status) == (True, "pending_review")


def test_facts_the_engine_cannot_decide_on_are_stored_as_an_error_for_the_agent():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer, signed_at=None)
    # Shipped, but the carrier has not reported a signature yet.
    Shipment.objects.create(store=store, order=order, carrier="SF", tracking_number="SF1", shipped_at=f.SIGNED_AT)

    case = _return(store, buyer, order, reason="quality")

    assert case.decision["error"]["field"] == "order.signed_at"
    assert case.status == "pending_review"


def test_a_signature_reported_after_the_request_updates_the_undecided_case():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer, signed_at=None)
    shipment = Shipment.objects.create(store=store, order=order, carrier="SF", tracking_number="SF2",
                                       shipped_at=f.SIGNED_AT)
    with time_machine.travel(WITHIN_WINDOW, tick=False):
        case = _return(store, buyer, order, reason="quality")
    assert case.decision["error"]["field"] == "order.signed_at"

    shipment.signed_at = f.SIGNED_AT
    shipment.save(update_fields=["signed_at"])
    changed = services.refresh_decisions_for_orders(store_id=store.pk, order_ids=[order.pk])

    case.refresh_from_db()
    assert changed == 1
    assert case.decision["requested_open"] is True
    entry = TimelineEntry.objects.get(case=case, event="decision_updated")
    assert entry.data["before"] == {"error": {"code": "invalid_facts", "field": "order.signed_at",
                                              "message": "the signing (delivery) time is needed to decide this request"}}
    assert entry.data["after"]["requested_open"] is True


def test_a_decided_case_keeps_its_decision_when_the_order_changes():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)
    with time_machine.travel(WITHIN_WINDOW, tick=False):
        case = _return(store, buyer, order)
    services.transition_case(actor=f.staff(store), case_id=case.pk, action="approve")
    before = Case.objects.get(pk=case.pk).decision

    order.shipments.update(signed_at=f.SIGNED_AT - dt.timedelta(days=30))
    changed = services.refresh_decisions_for_orders(store_id=store.pk, order_ids=[order.pk])

    assert (changed, Case.objects.get(pk=case.pk).decision) == (0, before)
