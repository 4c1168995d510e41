"""The refund ledger: what is written when a refund is asked for, how the gateway's answers move it,
and the guarantees that make paying twice impossible."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, transaction

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.core import clock
from aftersales.core.errors import Conflict, PermissionDenied, ValidationFailed
from aftersales.refunds import selectors, services, tasks
from aftersales.refunds.gateways import sandbox
from aftersales.refunds.models import (
    LineRefundTotal,
    Refund,
    RefundAttempt,
    RefundItem,
    SandboxGatewayRefund,
    StoreCreditEntry,
)
from aftersales.testing import factories as f

from .helpers import refunding_case

pytestmark = pytest.mark.django_db


def _local_today() -> dt.date:
    # Reports are by the store's own day (Asia/Shanghai for the test stores), not the UTC day.
    return clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()


def _items(refund):
    return list(RefundItem.objects.filter(refund=refund).order_by("id")
                .values_list("order_line__line_no", "method", "amount", "status"))


def _callbacks():
    return sandbox.due_callbacks(now=clock.now() + dt.timedelta(hours=1))


def _deliver(callbacks):
    return [services.handle_callback(gateway_name="sandbox", body=body, headers=headers) for body, headers in callbacks]


def _status(case):
    return Case.objects.values_list("status", "refund_amount").get(pk=case.pk)


# --- what a request writes ------------------------------------------------------------------------------

def test_a_persons_refund_action_writes_the_ledger_and_leaves_the_case_refunding(deferred):
    store = f.make_store()
    case = refunding_case(store)

    moved = case_services.transition_case(actor=f.staff(store, "finance"), case_id=case.pk, action="refund")

    refund = Refund.objects.get(case=case)
    assert (moved.status, refund.amount, refund.status, refund.split_basis) == ("refunding", Decimal("99.00"),
                                                                                "requested", "decision")
    assert _items(refund) == [(1, "alipay", Decimal("99.00"), "requested")]
    assert SandboxGatewayRefund.objects.count() == 0


def test_the_gateways_confirmation_moves_the_case_to_refunded(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    services.process_refund(refund_id=refund.pk)
    assert _status(case) == ("refunding", None)
    assert _deliver(_callbacks()) == [True]

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert _status(case) == ("refunded", Decimal("99.00"))
    entry = TimelineEntry.objects.get(case=case, event="refund")
    assert (entry.actor_kind, entry.data) == ("system", {"amount": "99.00", "rule": "refunds.gateway_confirmed"})


def test_the_split_follows_the_decision_over_lines_and_payment_methods(deferred):
    store = f.make_store()
    # The order (2 × 99.00 + 2999.00 = 3197.00) paid by Alipay 2997.00 and a 200.00 coupon; one T-shirt
    # and the phone come back.
    case = refunding_case(store, lines=(0, 1), payments=[("alipay", "2997.00"), ("coupon", "200.00")])
    assert case.decision["refund"]["split"] == [{"method": "alipay", "amount": "2904.19", "in_kind": False},
                                                {"method": "coupon", "amount": "193.81", "in_kind": True}]

    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    # Each line in proportion to the decision's split; per method the rows add up to the decision's amounts
    # (92.81 + 2811.38 = 2904.19 and 6.19 + 187.62 = 193.81), per line to what was paid for it.
    assert (refund.amount, refund.split_basis) == (Decimal("3098.00"), "decision")
    assert _items(refund) == [(1, "alipay", Decimal("92.81"), "requested"), (1, "coupon", Decimal("6.19"), "requested"),
                              (2, "alipay", Decimal("2811.38"), "requested"),
                              (2, "coupon", Decimal("187.62"), "requested")]


def test_a_negotiated_amount_is_split_pro_rata_over_the_payments(deferred):
    store = f.make_store()
    case = refunding_case(store, payments=[("alipay", "3099.00"), ("coupon", "98.00")])
    Case.objects.filter(pk=case.pk).update(offer_amount=Decimal("50.00"))

    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    # 50.00 × 3099/3197 = 48.467… and 50.00 × 98/3197 = 1.532…: the leftover cent goes to the larger remainder.
    assert (refund.amount, refund.split_basis) == (Decimal("50.00"), "pro_rata")
    assert _items(refund) == [(1, "alipay", Decimal("48.47"), "requested"), (1, "coupon", Decimal("1.53"), "requested")]


def test_internal_methods_are_booked_without_the_gateway(deferred):
    store = f.make_store()
    case = refunding_case(store, payments=[("alipay", "3099.00"), ("coupon", "98.00")])
    Case.objects.filter(pk=case.pk).update(offer_amount=Decimal("50.00"))
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    services.process_refund(refund_id=refund.pk)

    assert _items(refund) == [(1, "alipay", Decimal("48.47"), "processing"), (1, "coupon", Decimal("1.53"), "succeeded")]
    assert list(SandboxGatewayRefund.objects.values_list("amount", flat=True)) == [Decimal("48.47")]


def test_more_than_is_left_is_refused_and_nothing_is_written(deferred):
    store = f.make_store()
    case = refunding_case(store)

    with pytest.raises(ValidationFailed) as error:
        services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk, amount=Decimal("99.01"))

    assert (error.value.code, error.value.details) == ("amount_exceeds_paid", {"maximum": "99.00", "field": "amount"})
    assert (Refund.objects.count(), RefundItem.objects.count(), LineRefundTotal.objects.count()) == (0, 0, 0)


def test_a_case_not_in_refunding_cannot_be_refunded(deferred):
    store = f.make_store()
    case = refunding_case(store)
    Case.objects.filter(pk=case.pk).update(status="pending_review")

    with pytest.raises(Conflict) as error:
        services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    assert error.value.code == "case_not_refunding"


def test_a_warehouse_user_cannot_ask_for_a_refund(deferred):
    store = f.make_store()
    case = refunding_case(store)

    with pytest.raises(PermissionDenied):
        services.request_refund(actor=f.staff(store, "warehouse"), case_id=case.pk)

    assert Refund.objects.count() == 0


# --- never twice ------------------------------------------------------------------------------------------

def test_a_second_request_for_a_fully_requested_case_is_refused(deferred):
    store = f.make_store()
    case = refunding_case(store)
    services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    with pytest.raises(Conflict) as error:
        services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    assert error.value.code == "refund_already_requested"
    assert Refund.objects.count() == 1


def test_the_database_refuses_a_line_total_above_what_was_paid(deferred):
    store = f.make_store()
    case = refunding_case(store)
    services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    total = LineRefundTotal.objects.get()
    assert (total.paid, total.committed) == (Decimal("198.00"), Decimal("99.00"))

    with pytest.raises(IntegrityError), transaction.atomic():
        LineRefundTotal.objects.filter(pk=total.pk).update(committed=Decimal("198.01"))


def test_two_cases_on_one_line_cannot_together_refund_more_than_was_paid(deferred):
    store = f.make_store()
    case = refunding_case(store, quantity=2)
    services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    # A second case on the same line, as if the quantity check had been bypassed: only the line total stops it.
    second = Case.objects.get(pk=case.pk)
    second.pk, second.number = None, "AS-X"
    second.save()
    for line in case.lines.all():
        line.pk, line.case = None, second
        line.save()
    TimelineEntry.objects.create(store=store, case=second, at=clock.now(), event="x", to_status="refunding",
                                 actor_kind="system", actor_label="t")

    with pytest.raises(Conflict) as error:
        services.request_refund(actor=f.staff(store, "finance"), case_id=second.pk)

    assert error.value.code == "refund_exceeds_paid"
    assert LineRefundTotal.objects.get().committed == Decimal("198.00")
    assert Refund.objects.filter(case=second).count() == 0


def test_a_callback_delivered_five_times_changes_the_ledger_once(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    services.process_refund(refund_id=refund.pk)
    [(body, headers)] = _callbacks()

    changed = _deliver([(body, headers)] * 5)

    assert changed == [True, False, False, False, False]
    item = RefundItem.objects.get(refund=refund)
    assert (item.status, item.amount) == ("succeeded", Decimal("99.00"))
    assert RefundAttempt.objects.get(item=item).status == "succeeded"
    assert TimelineEntry.objects.filter(case=case, event__in=("refund", "refund_succeeded")).count() == 2
    assert _status(case) == ("refunded", Decimal("99.00"))


def test_duplicated_callbacks_from_the_sandbox_are_harmless(deferred):
    deferred.AFTERSALES_SANDBOX_GATEWAY = {"duplicate_callbacks": 3}
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    services.process_refund(refund_id=refund.pk)

    assert _deliver(_callbacks()) == [True, False, False]
    assert _status(case) == ("refunded", Decimal("99.00"))


def test_a_timeout_then_a_retry_asks_the_gateway_first_and_pays_once(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    sandbox.script("timeout")

    services.process_refund(refund_id=refund.pk)
    attempt = RefundAttempt.objects.get()
    assert attempt.status == "unknown"
    item = services.retry_item(actor=f.staff(store, "finance"), item_id=attempt.item_id)

    # The gateway had taken the first request: the retry learnt it by the key and sent nothing.
    assert list(SandboxGatewayRefund.objects.values_list("idempotency_key", "amount", "status")) == [
        (attempt.idempotency_key, Decimal("99.00"), "succeeded")]
    assert RefundAttempt.objects.count() == 1
    assert item.status == "succeeded"
    assert _status(case) == ("refunded", Decimal("99.00"))
    # The late callbacks of the timed-out request change nothing.
    assert _deliver(_callbacks()) == [False]


def test_a_timeout_the_gateway_never_received_is_resent_with_the_same_key(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    sandbox.script("timeout")
    services.process_refund(refund_id=refund.pk)
    # As if the request had been lost before reaching the gateway.
    SandboxGatewayRefund.objects.all().delete()

    services.retry_item(actor=f.staff(store, "finance"), item_id=RefundAttempt.objects.get().item_id)

    attempt = RefundAttempt.objects.get()
    assert list(SandboxGatewayRefund.objects.values_list("idempotency_key", flat=True)) == [attempt.idempotency_key]
    assert attempt.status == "accepted"


def test_a_failed_payment_can_be_retried_with_a_new_key(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    sandbox.script("fail")
    services.process_refund(refund_id=refund.pk)
    _deliver(_callbacks())
    refund.refresh_from_db()
    item = RefundItem.objects.get(refund=refund)
    assert (refund.status, item.status, item.failure_reason) == ("failed", "failed",
                                                                 "sandbox: insufficient merchant balance")
    assert _status(case) == ("refunding", None)

    services.retry_item(actor=f.staff(store, "finance"), item_id=item.pk)
    _deliver(_callbacks())

    assert list(RefundAttempt.objects.order_by("number").values_list("number", "status")) == [
        (1, "failed"), (2, "succeeded")]
    assert list(SandboxGatewayRefund.objects.order_by("id").values_list("status", flat=True)) == ["failed", "succeeded"]
    assert _status(case) == ("refunded", Decimal("99.00"))


def test_a_refusal_by_the_gateway_fails_the_attempt_at_once(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    sandbox.script("reject")

    services.process_refund(refund_id=refund.pk)

    assert list(RefundAttempt.objects.values_list("status", "error")) == [("failed", "sandbox: payment closed")]
    assert SandboxGatewayRefund.objects.count() == 0


def test_retrying_a_paid_item_is_refused(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    services.process_refund(refund_id=refund.pk)
    _deliver(_callbacks())

    with pytest.raises(Conflict) as error:
        services.retry_item(actor=f.staff(store, "finance"), item_id=RefundItem.objects.get().pk)

    assert error.value.code == "already_refunded"
    assert SandboxGatewayRefund.objects.count() == 1


def test_the_sweep_asks_about_an_attempt_left_unknown(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    sandbox.script("timeout")
    services.process_refund(refund_id=refund.pk)

    tasks.sweep((clock.now() + dt.timedelta(minutes=5)).isoformat())

    assert SandboxGatewayRefund.objects.count() == 1
    assert _status(case) == ("refunded", Decimal("99.00"))


# --- steps, store credit, approval, deadlines --------------------------------------------------------------

def test_a_refund_in_two_steps_moves_the_case_after_the_final_one(deferred):
    store = f.make_store()
    case = refunding_case(store)
    finance = f.staff(store, "finance")
    first = services.request_refund(actor=finance, case_id=case.pk, amount=Decimal("40.00"), final=False)
    services.process_refund(refund_id=first.pk)
    _deliver(_callbacks())
    assert _status(case) == ("refunding", None)

    second = services.request_refund(actor=finance, case_id=case.pk)
    services.process_refund(refund_id=second.pk)
    _deliver(_callbacks())

    assert (first.number, second.number, second.amount) == (1, 2, Decimal("59.00"))
    assert _status(case) == ("refunded", Decimal("99.00"))


def test_a_partial_refund_pays_only_the_amount_asked(deferred):
    store = f.make_store()
    case = refunding_case(store)
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk, amount=Decimal("30.00"))
    services.process_refund(refund_id=refund.pk)
    _deliver(_callbacks())

    assert _status(case) == ("refunded", Decimal("30.00"))
    assert LineRefundTotal.objects.get().committed == Decimal("30.00")


def test_store_credit_without_the_buyers_consent_is_refused(deferred):
    store = f.make_store()
    case = refunding_case(store)

    with pytest.raises(Conflict) as error:
        services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk, to_store_credit=True)

    assert error.value.code == "store_credit_needs_consent"
    assert Refund.objects.count() == 0


def test_only_the_buyer_can_consent_to_store_credit(deferred):
    store = f.make_store()
    case = refunding_case(store)

    with pytest.raises(PermissionDenied):
        services.give_store_credit_consent(actor=f.staff(store, "agent"), case_id=case.pk, wording="ok")


def test_store_credit_with_the_buyers_consent_is_booked_at_once(deferred):
    store = f.make_store()
    buyer = f.make_buyer(store)
    case = refunding_case(store, buyer=buyer)
    services.give_store_credit_consent(actor=f.buyer_of(buyer), case_id=case.pk, wording="我同意以店铺余额退款")

    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk, to_store_credit=True)
    services.process_refund(refund_id=refund.pk)

    assert _items(refund) == [(1, "store_credit", Decimal("99.00"), "succeeded")]
    assert list(StoreCreditEntry.objects.values_list("buyer_id", "amount")) == [(buyer.pk, Decimal("99.00"))]
    assert SandboxGatewayRefund.objects.count() == 0
    assert _status(case) == ("refunded", Decimal("99.00"))


def test_above_the_threshold_a_refund_waits_for_finance(deferred):
    store = f.make_store()
    case = refunding_case(store, lines=(1,))  # the phone, 2999.00
    services.set_approval_threshold(actor=f.staff(store, "admin"), threshold=Decimal("1000.00"))

    refund = services.request_refund(actor=f.staff(store, "agent"), case_id=case.pk)
    services.process_refund(refund_id=refund.pk)

    assert refund.status == "pending_approval"
    assert SandboxGatewayRefund.objects.count() == 0


def test_an_agent_cannot_approve_a_refund_above_the_threshold(deferred):
    store = f.make_store()
    case = refunding_case(store, lines=(1,))
    services.set_approval_threshold(actor=f.staff(store, "admin"), threshold=Decimal("1000.00"))
    refund = services.request_refund(actor=f.staff(store, "agent"), case_id=case.pk)

    with pytest.raises(PermissionDenied):
        services.approve_refund(actor=f.staff(store, "agent"), refund_id=refund.pk)

    assert Refund.objects.get(pk=refund.pk).status == "pending_approval"


def test_a_finance_user_approves_and_the_refund_is_paid(deferred):
    store = f.make_store()
    case = refunding_case(store, lines=(1,))
    services.set_approval_threshold(actor=f.staff(store, "admin"), threshold=Decimal("1000.00"))
    refund = services.request_refund(actor=f.staff(store, "agent"), case_id=case.pk)

    approved = services.approve_refund(actor=f.staff(store, "finance"), refund_id=refund.pk)
    services.process_refund(refund_id=refund.pk)
    _deliver(_callbacks())

    assert (approved.status, approved.approved_by.startswith("finance-")) == ("requested", True)
    assert _status(case) == ("refunded", Decimal("2999.00"))


def test_the_refund_is_due_the_number_of_days_the_decision_gives(deferred):
    store = f.make_store()
    case = refunding_case(store)
    days = case.decision["deadlines"]["refund_due_days_after_receipt"]
    received = TimelineEntry.objects.get(case=case, to_status="received").at

    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)

    assert days == 7
    assert refund.due_at == received + dt.timedelta(days=days)
    assert refund.due_rule == case.decision["deadlines"]["refund_due_rule"]["rule_id"]


def test_an_unpaid_refund_past_its_due_date_is_listed_as_overdue(deferred):
    store = f.make_store()
    case = refunding_case(store)
    finance = f.staff(store, "finance")
    refund = services.request_refund(actor=finance, case_id=case.pk)
    assert refund.due_at is not None

    with time_machine.travel(refund.due_at + dt.timedelta(minutes=1)):
        late = [r.pk for r in selectors.overdue_refunds(finance)]
    with time_machine.travel(refund.due_at - dt.timedelta(minutes=1)):
        early = [r.pk for r in selectors.overdue_refunds(finance)]

    assert (late, early) == ([refund.pk], [])


# --- reconciliation ------------------------------------------------------------------------------------

def test_reconciliation_matches_the_ledger_and_lists_mismatches(deferred):
    store = f.make_store()
    finance = f.staff(store, "finance")
    paid = refunding_case(store)
    services.process_refund(refund_id=services.request_refund(actor=finance, case_id=paid.pk).pk)
    _deliver(_callbacks())
    unconfirmed = refunding_case(store)
    services.process_refund(refund_id=services.request_refund(actor=finance, case_id=unconfirmed.pk).pk)
    # The gateway's books hold a refund the ledger does not know of.
    now = clock.now()
    SandboxGatewayRefund.objects.create(store_id=store.pk, idempotency_key="foreign-1", reference="SBXFOREIGN",
                                        amount=Decimal("5.00"), currency="CNY", status="succeeded", created_at=now)
    pending_key = RefundAttempt.objects.get(item__case=unconfirmed).idempotency_key

    report = services.reconcile(store_id=store.pk, day=_local_today())

    assert report.matched == 1
    assert report.mismatches == [
        {"kind": "unknown_to_ledger", "key": "foreign-1", "gateway_status": "succeeded", "gateway_amount": "5.00",
         "gateway_reference": "SBXFOREIGN"},
        {"kind": "status_differs", "key": pending_key, "ledger_status": "accepted", "gateway_status": "succeeded"},
    ]


def test_reconciliation_lists_another_amount(deferred):
    store = f.make_store()
    case = refunding_case(store)
    services.process_refund(refund_id=services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk).pk)
    _deliver(_callbacks())
    SandboxGatewayRefund.objects.update(amount=Decimal("98.00"))

    report = services.reconcile(store_id=store.pk, day=_local_today())

    key = RefundAttempt.objects.get().idempotency_key
    assert (report.matched, report.mismatches) == (0, [{"kind": "amount_differs", "key": key,
                                                         "ledger_amount": "99.00", "gateway_amount": "98.00"}])


def test_the_daily_task_reconciles_yesterday_for_each_store(deferred):
    store = f.make_store()
    case = refunding_case(store)
    services.process_refund(refund_id=services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk).pk)
    _deliver(_callbacks())
    today = _local_today()

    assert tasks.daily_reconciliation(today.isoformat()) == 1
    assert tasks.daily_reconciliation((today - dt.timedelta(days=1)).isoformat()) == 0


# --- the embedded set-up ------------------------------------------------------------------------------

def test_without_a_broker_the_sandbox_pays_within_the_request():
    store = f.make_store()
    case = refunding_case(store)

    moved = case_services.transition_case(actor=f.staff(store, "finance"), case_id=case.pk, action="refund")

    assert (moved.status, moved.refund_amount) == ("refunded", Decimal("99.00"))
    assert SandboxGatewayRefund.objects.count() == 1
