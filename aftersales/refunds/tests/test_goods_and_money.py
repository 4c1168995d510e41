"""Through the API: a replacement's price difference (charged or refunded), the per-payment ceiling,
shipping refunds inside their ceiling, cancelling or retrying a failed row, and reconciliation by the
store's own day."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.test import Client

from aftersales.cases import services as case_services
from aftersales.cases.models import Case
from aftersales.catalog.models import Product
from aftersales.core.errors import Conflict
from aftersales.logistics.tests.helpers import approved_case, warehouse
from aftersales.orders.models import Payment
from aftersales.refunds import services, tasks
from aftersales.refunds.gateways import sandbox
from aftersales.refunds.models import (
    Charge,
    LineRefundTotal,
    PaymentRefundTotal,
    Refund,
    RefundItem,
    SandboxGatewayRefund,
    ShippingRefundTotal,
)
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f
from aftersales.tests import session_caller, token_caller
from aftersales.warehouse import services as warehouse_services

from .helpers import refunding_case

pytestmark = pytest.mark.django_db

CALLBACK = "/api/v1/refunds/callbacks/sandbox"


# --- exchanges --------------------------------------------------------------------------------------

def _reshipping_exchange(store, sku: str, price: str):
    """An exchange of one T-shirt (paid 99.00) whose goods passed inspection, a replacement in stock."""
    warehouse(store)
    admin = f.staff(store, "admin")
    Product.objects.create(store=store, sku=sku, name=sku, price=Decimal(price))
    warehouse_services.set_stock(actor=admin, warehouse_id=store.warehouses.get().pk, sku=sku, on_hand=1)
    case = approved_case(store, "exchange")
    caller = token_caller(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    case_services.transition_case(actor=admin, case_id=case.pk, action="record_inspection", outcome="passed")
    return case, caller


def _choose(caller, case, sku):
    return caller.post(f"/logistics/cases/{case.pk}/exchanges",
                       {"order_line_id": case.lines.get().order_line_id, "sku": sku}, expect=201)


def _reship(caller, case, expect=201):
    return caller.post(f"/logistics/cases/{case.pk}/reship", {"carrier": "SF", "tracking_number": "SF4444444444444"},
                       expect=expect)


def test_a_dearer_replacement_ships_only_after_the_buyer_paid_the_difference(deferred):
    store = f.make_store()
    case, caller = _reshipping_exchange(store, "TSHIRT-L", "109.00")
    chosen = _choose(caller, case, "TSHIRT-L")
    assert (chosen["settlement"], chosen["price_difference"], chosen["settlement_status"]) == (
        "charge", "10.00", "requested")

    assert _reship(caller, case, expect=409)["code"] == "difference_not_paid"

    [charge] = caller.get(f"/cases/{case.pk}/charges")
    services.process_charge(charge_id=charge["id"])  # what the task does after the commit
    assert caller.get(f"/refunds/charges/{charge['id']}")["status"] == "processing"
    assert _reship(caller, case, expect=409)["code"] == "difference_not_paid"
    # The gateway confirms, twice (real ones do): the second changes nothing.
    [(body, headers)] = sandbox.due_callbacks(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert json.loads(body)["status"] == "succeeded"
    answers = [Client().post(CALLBACK, body, content_type="application/json",
                             headers={"X-Sandbox-Signature": headers["x-sandbox-signature"]}).json()
               for _ in range(2)]
    assert answers == [{"ok": True, "changed": True}, {"ok": True, "changed": False}]

    paid = caller.get(f"/refunds/charges/{charge['id']}")
    assert (paid["status"], paid["amount"], [a["status"] for a in paid["attempts"]]) == (
        "succeeded", "10.00", ["succeeded"])
    assert _reship(caller, case)["status"] == "in_transit"
    assert list(SandboxGatewayRefund.objects.values_list("kind", "amount", "status")) == [
        ("charge", Decimal("10.00"), "succeeded")]


def test_a_refused_charge_is_retried_with_a_new_key_and_then_ships():
    store = f.make_store()
    case, caller = _reshipping_exchange(store, "TSHIRT-L", "109.00")
    sandbox.script("fail")
    assert _choose(caller, case, "TSHIRT-L")["settlement_status"] == "failed"
    assert _reship(caller, case, expect=409)["code"] == "difference_not_paid"
    [charge] = Charge.objects.filter(case=case)

    retried = caller.post(f"/refunds/charges/{charge.pk}/retry")

    assert (retried["status"], [(a["number"], a["status"]) for a in retried["attempts"]]) == (
        "succeeded", [(1, "failed"), (2, "succeeded")])
    assert _reship(caller, case)["status"] == "in_transit"
    assert caller.post(f"/refunds/charges/{charge.pk}/retry", expect=409)["code"] == "already_charged"


def test_choosing_before_the_inspection_charges_when_the_goods_pass():
    store = f.make_store()
    warehouse(store)
    admin = f.staff(store, "admin")
    Product.objects.create(store=store, sku="TSHIRT-L", name="T恤 L", price=Decimal("109.00"))
    warehouse_services.set_stock(actor=admin, warehouse_id=store.warehouses.get().pk, sku="TSHIRT-L", on_hand=1)
    case = approved_case(store, "exchange")
    caller = token_caller(store)
    assert _choose(caller, case, "TSHIRT-L")["settlement_status"] == ""  # nothing taken before the goods are back
    caller.post("/warehouse/receipts", {"code": case.number})
    case_services.transition_case(actor=admin, case_id=case.pk, action="record_inspection", outcome="passed")
    assert [(c["amount"], c["status"]) for c in caller.get(f"/cases/{case.pk}/charges")] == [("10.00", "succeeded")]


def test_a_cheaper_replacement_refunds_the_difference_once_when_it_ships():
    store = f.make_store()
    case, caller = _reshipping_exchange(store, "TSHIRT-S", "89.00")
    assert _choose(caller, case, "TSHIRT-S")["settlement"] == "refund"

    _reship(caller, case)

    [refund] = caller.get(f"/cases/{case.pk}/refunds")
    assert (refund["purpose"], refund["amount"], refund["status"], refund["final"]) == (
        "exchange_difference", "10.00", "succeeded", False)
    assert [(i["method"], i["amount"]) for i in refund["items"]] == [("alipay", "10.00")]
    assert caller.get(f"/logistics/cases/{case.pk}/exchanges")[0]["settlement_status"] == "succeeded"
    assert LineRefundTotal.objects.get().committed == Decimal("10.00")
    # Never twice: shipping again is refused by the case, and asking the ledger again by the ledger.
    assert _reship(caller, case, expect=409)["code"] == "no_replacement_reserved"
    with pytest.raises(Conflict) as refused, transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        services.refund_exchange_difference(actor=system_actor(store.pk), case=locked,
                                            exchange_id=refund["exchange_id"])
    assert refused.value.code == "refund_already_requested"
    assert Refund.objects.count() == 1


# --- the per-payment ceiling ------------------------------------------------------------------------

def test_a_refund_to_a_payment_beyond_what_it_paid_is_refused_and_writes_nothing():
    store = f.make_store()
    case = refunding_case(store, payments=[("alipay", "50.00"), ("wechat", "3147.00")])
    # A decision taken on stale payment facts names more for Alipay than Alipay paid.
    case.decision["refund"]["split"] = [{"method": "alipay", "amount": "99.00", "in_kind": False}]
    case.offer_amount = None
    Case.objects.filter(pk=case.pk).update(decision=case.decision)

    refused = token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=409)

    assert (refused["code"], refused["details"]) == ("refund_exceeds_payment", {"method": "alipay",
                                                                                "short_by": "49.00"})
    assert (Refund.objects.count(), LineRefundTotal.objects.count(), PaymentRefundTotal.objects.count()) == (0, 0, 0)


def test_refunds_count_against_each_payment_they_go_to():
    store = f.make_store()
    case = refunding_case(store, payments=[("alipay", "100.00"), ("wechat", "3097.00")])

    made = token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=201)

    by_method = {i["method"]: Decimal(i["amount"]) for i in made["items"]}
    assert sum(by_method.values()) == Decimal("99.00")
    assert dict(PaymentRefundTotal.objects.values_list("payment__method", "committed")) == by_method


def test_the_database_refuses_a_payment_total_above_what_it_paid():
    store = f.make_store()
    case = refunding_case(store)
    payment = Payment.objects.get(order=case.order)
    total = PaymentRefundTotal.objects.create(store=store, payment=payment, paid=payment.amount)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentRefundTotal.objects.filter(pk=total.pk).update(committed=payment.amount + Decimal("0.01"))


# --- shipping ---------------------------------------------------------------------------------------

def test_return_shipping_is_refunded_through_the_ledger_up_to_the_ceiling():
    store = f.make_store()
    case = refunding_case(store)
    api = token_caller(store)

    made = api.post(f"/cases/{case.pk}/shipping-refunds", {"leg": "return", "amount": "12.00"}, expect=201)
    assert (made["purpose"], made["status"], made["final"]) == ("return_shipping", "succeeded", False)
    assert [(i["order_line_id"], i["method"], i["amount"]) for i in made["items"]] == [(None, "alipay", "12.00")]

    too_much = api.post(f"/cases/{case.pk}/shipping-refunds", {"leg": "return", "amount": "20.00"}, expect=422)
    assert (too_much["code"], too_much["details"]["maximum"]) == ("amount_exceeds_ceiling", "18.00")
    api.post(f"/cases/{case.pk}/shipping-refunds", {"leg": "return", "amount": "18.00"}, expect=201)
    assert ShippingRefundTotal.objects.values_list("leg", "ceiling", "committed").get() == (
        "return", Decimal("30.00"), Decimal("30.00"))
    # The goods are refunded beside it, and the case completes on the goods alone.
    api.post(f"/cases/{case.pk}/refunds", {}, expect=201)
    assert Case.objects.values_list("status", "refund_amount").get(pk=case.pk) == ("refunded", Decimal("99.00"))
    assert PaymentRefundTotal.objects.get().committed == Decimal("129.00")


def test_the_original_shipping_fee_is_refunded_at_most_once_per_order_over_its_cases():
    store = f.make_store()
    first = refunding_case(store)
    order = first.order
    assert order is not None
    order.shipping_fee = Decimal("8.00")
    order.save(update_fields=["shipping_fee"])
    Payment.objects.filter(order=order).update(amount=order.total_paid + Decimal("8.00"))
    api = token_caller(store)
    api.post(f"/cases/{first.pk}/shipping-refunds", {"leg": "outbound", "amount": "8.00"}, expect=201)

    # Another case on the same order (its phone) finds the fee already refunded.
    with time_machine.travel(f.SIGNED_AT + dt.timedelta(days=4), tick=False):
        second = case_services.create_case(
            actor=system_actor(store.pk), kind="return_refund", order_id=order.pk, reason_code="quality",
            lines=[case_services.LineRequest(order_line_id=order.lines.get(line_no=2).pk, quantity=1)])
    again = api.post(f"/cases/{second.pk}/shipping-refunds", {"leg": "outbound", "amount": "0.01"}, expect=422)
    assert (again["code"], again["details"]) == ("amount_exceeds_ceiling", {"field": "amount", "maximum": "0.00"})


def test_shipping_the_decision_leaves_to_the_buyer_is_not_refunded():
    store = f.make_store()
    case = refunding_case(store)
    case.decision["shipping"]["return"]["payer"] = "buyer"
    Case.objects.filter(pk=case.pk).update(decision=case.decision)

    refused = token_caller(store).post(f"/cases/{case.pk}/shipping-refunds", {"leg": "return", "amount": "5.00"},
                                       expect=409)

    assert (refused["code"], refused["details"]) == ("shop_does_not_pay_shipping", {"leg": "return", "payer": "buyer"})
    assert Refund.objects.count() == 0


def test_the_database_refuses_a_shipping_total_above_its_ceiling():
    store = f.make_store()
    case = refunding_case(store)
    assert case.order is not None
    total = ShippingRefundTotal.objects.create(store=store, leg="return", order=case.order, case=case,
                                               ceiling=Decimal("30.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        ShippingRefundTotal.objects.filter(pk=total.pk).update(committed=Decimal("30.01"))


# --- a failed row: cancel or retry -------------------------------------------------------------------

def _failed_refund(store):
    case = refunding_case(store)
    sandbox.script("fail")
    made = token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=201)
    assert (made["status"], made["items"][0]["status"]) == ("failed", "failed")
    return case, made


def test_finance_cancels_a_failed_row_which_releases_its_ceilings_and_the_case_is_refunded_anew():
    store = f.make_store()
    case, made = _failed_refund(store)
    item_id = made["items"][0]["id"]
    finance = session_caller(f.make_staff(store, "finance"))
    agent = session_caller(f.make_staff(store, "agent"))

    assert agent.post(f"/refunds/items/{item_id}/cancel", {}, expect=403)["code"] == "permission_denied"
    cancelled = finance.post(f"/refunds/items/{item_id}/cancel", {"reason": "原支付已关闭"})

    assert (cancelled["status"], cancelled["final"], cancelled["items"][0]["status"]) == ("cancelled", False,
                                                                                          "cancelled")
    assert cancelled["items"][0]["cancelled_by"] != ""
    assert (LineRefundTotal.objects.get().committed, PaymentRefundTotal.objects.get().committed) == (
        Decimal("0.00"), Decimal("0.00"))
    assert Case.objects.get(pk=case.pk).status == "refunding"
    assert finance.post(f"/refunds/items/{item_id}/retry", expect=409)["code"] == "refund_cancelled"

    again = token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=201)
    assert (again["number"], again["status"]) == (2, "succeeded")
    assert Case.objects.values_list("status", "refund_amount").get(pk=case.pk) == ("refunded", Decimal("99.00"))
    assert PaymentRefundTotal.objects.get().committed == Decimal("99.00")


def test_a_failed_row_retried_is_paid_and_can_no_longer_be_cancelled():
    store = f.make_store()
    case, made = _failed_refund(store)
    item_id = made["items"][0]["id"]
    finance = session_caller(f.make_staff(store, "finance"))

    retried = finance.post(f"/refunds/items/{item_id}/retry")

    assert (retried["status"], [a["status"] for a in retried["items"][0]["attempts"]]) == (
        "succeeded", ["failed", "succeeded"])
    assert Case.objects.get(pk=case.pk).status == "refunded"
    assert finance.post(f"/refunds/items/{item_id}/cancel", {}, expect=409)["code"] == "not_failed"
    assert RefundItem.objects.get().status == "succeeded"


def test_a_row_whose_outcome_is_unknown_cannot_be_cancelled(deferred):
    store = f.make_store()
    case = refunding_case(store)
    sandbox.script("timeout")
    refund = services.request_refund(actor=f.staff(store, "finance"), case_id=case.pk)
    services.process_refund(refund_id=refund.pk)
    item = RefundItem.objects.get()
    assert item.status == "processing"
    finance = session_caller(f.make_staff(store, "finance"))
    assert finance.post(f"/refunds/items/{item.pk}/cancel", {}, expect=409)["code"] == "not_failed"


# --- reconciliation by the store's day -----------------------------------------------------------------

def test_reconciliation_cuts_days_at_midnight_in_shanghai_not_utc():
    store = f.make_store()  # Asia/Shanghai
    finance = f.staff(store, "finance")
    late, early = refunding_case(store), refunding_case(store)
    # 23:30 on 20 November in Shanghai, then 00:30 on the 21st: the same UTC day (the 20th).
    with time_machine.travel(dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC), tick=False):
        services.request_refund(actor=finance, case_id=late.pk)
    with time_machine.travel(dt.datetime(2026, 11, 20, 16, 30, tzinfo=dt.UTC), tick=False):
        services.request_refund(actor=finance, case_id=early.pk)
    api = token_caller(store)

    on_20th = api.post("/refunds/reconciliation", {"day": "2026-11-20"})
    on_21st = api.post("/refunds/reconciliation", {"day": "2026-11-21"})

    assert (on_20th["matched"], on_20th["mismatches"], on_21st["matched"], on_21st["mismatches"]) == (1, [], 1, [])
    # The daily task, run at 01:00 on the 22nd in Shanghai (still the 21st in UTC), reconciles the 21st.
    with time_machine.travel(dt.datetime(2026, 11, 21, 17, 0, tzinfo=dt.UTC), tick=False):
        assert tasks.daily_reconciliation() == 1
    assert [r["day"] for r in api.get("/refunds/reconciliation/reports")] == ["2026-11-21", "2026-11-20"]


def test_reconciliation_lists_a_charge_the_gateway_holds_for_another_amount():
    store = f.make_store()
    case, caller = _reshipping_exchange(store, "TSHIRT-L", "109.00")
    _choose(caller, case, "TSHIRT-L")
    SandboxGatewayRefund.objects.filter(kind="charge").update(amount=Decimal("11.00"))
    day = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()

    report = caller.post("/refunds/reconciliation", {"day": day.isoformat()})

    key = Charge.objects.get().attempts.get().idempotency_key
    assert report["mismatches"] == [{"kind": "amount_differs", "key": key, "ledger_amount": "10.00",
                                     "gateway_amount": "11.00"}]


def test_a_replacement_whose_difference_was_paid_cannot_be_swapped_for_another():
    store = f.make_store()
    case, caller = _reshipping_exchange(store, "TSHIRT-L", "109.00")
    Product.objects.create(store=store, sku="TSHIRT-XL", name="T恤 XL", price=Decimal("119.00"))
    warehouse_services.set_stock(actor=f.staff(store, "admin"), warehouse_id=store.warehouses.get().pk,
                                 sku="TSHIRT-XL", on_hand=1)
    assert _choose(caller, case, "TSHIRT-L")["settlement_status"] == "succeeded"

    refused = caller.post(f"/logistics/cases/{case.pk}/exchanges",
                          {"order_line_id": case.lines.get().order_line_id, "sku": "TSHIRT-XL"}, expect=409)

    assert refused["code"] == "difference_already_charged"
    assert [(e["replacement_sku"], e["status"]) for e in caller.get(f"/logistics/cases/{case.pk}/exchanges")] == [
        ("TSHIRT-L", "reserved")]
    assert [(s["sku"], s["reserved"]) for s in caller.get("/warehouse/stock")] == [("TSHIRT-L", 1), ("TSHIRT-XL", 0)]
    assert Charge.objects.count() == 1


def test_a_charge_that_timed_out_is_resolved_by_the_sweep_without_charging_twice(deferred):
    store = f.make_store()
    case, caller = _reshipping_exchange(store, "TSHIRT-L", "109.00")
    _choose(caller, case, "TSHIRT-L")
    charge = Charge.objects.get()
    sandbox.script("timeout")  # the gateway takes the money, the answer is lost
    services.process_charge(charge_id=charge.pk)
    assert charge.attempts.get().status == "unknown"

    tasks.sweep((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat())

    charge.refresh_from_db()
    assert (charge.status, list(charge.attempts.values_list("number", "status"))) == ("succeeded", [(1, "succeeded")])
    assert SandboxGatewayRefund.objects.filter(kind="charge").count() == 1
