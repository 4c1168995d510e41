"""Through the API: an exchange given up after its dearer replacement's difference was charged pays
that difference back to the buyer, through the gateway that took it, exactly once."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from aftersales.cases.models import TimelineEntry
from aftersales.catalog.models import Product
from aftersales.logistics.models import Exchange
from aftersales.logistics.tests.helpers import approved_case, warehouse
from aftersales.refunds import services, tasks
from aftersales.refunds.gateways import sandbox
from aftersales.refunds.models import Charge, ChargeRefund, SandboxGatewayRefund
from aftersales.testing import factories as f
from aftersales.tests import token_caller
from aftersales.warehouse import services as warehouse_services

pytestmark = pytest.mark.django_db

CALLBACK = "/api/v1/refunds/callbacks/sandbox"
LATER = dt.timedelta(hours=1)


def _charged_exchange(store, *, pay: bool = True):
    """An exchange of a T-shirt (paid 99.00) for one at 109.00, goods inspected, replacement chosen: the
    buyer owes 10.00. With `pay`, the gateway has been asked for it (the sandbox then confirms inline
    unless the test defers it)."""
    warehouse(store)
    admin = f.staff(store, "admin")
    Product.objects.create(store=store, sku="TSHIRT-L", name="T恤 L", price=Decimal("109.00"))
    warehouse_services.set_stock(actor=admin, warehouse_id=store.warehouses.get().pk, sku="TSHIRT-L", on_hand=1)
    case = approved_case(store, "exchange")
    caller = token_caller(store)
    caller.post("/warehouse/receipts", {"code": case.number})
    caller.post(f"/cases/{case.pk}/actions/record_inspection", {"outcome": "passed"})
    caller.post(f"/logistics/cases/{case.pk}/exchanges",
                {"order_line_id": case.lines.get().order_line_id, "sku": "TSHIRT-L"}, expect=201)
    charge = Charge.objects.get(case=case)
    if pay:
        services.process_charge(charge_id=charge.pk)  # a no-op when the sandbox already took it inline
    return case, caller, charge


def _convert(caller, case, expect=200):
    """No replacement after all: the buyer takes the money instead, the exchange becomes a return."""
    return caller.post(f"/cases/{case.pk}/actions/convert", {"outcome": "return"}, expect=expect)


def _deliver(times: int = 1) -> list[dict]:
    """The sandbox's due callbacks, each posted `times` times to the signed endpoint."""
    answers = []
    for body, headers in sandbox.due_callbacks(now=dt.datetime.now(dt.UTC) + LATER):
        for _ in range(times):
            answers.append(Client().post(CALLBACK, body, content_type="application/json",
                                         headers={"X-Sandbox-Signature": headers["x-sandbox-signature"]}).json())
    return answers


def _events(case) -> list[str]:
    return [e for e in TimelineEntry.objects.filter(case=case).order_by("id").values_list("event", flat=True)
            if e.startswith("exchange_charge")]


def test_a_paid_difference_goes_back_when_the_exchange_becomes_a_refund():
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    assert caller.get(f"/refunds/charges/{charge.pk}")["status"] == "succeeded"

    moved = _convert(caller, case)

    assert (moved["status"], moved["kind"]) == ("refunding", "return_refund")
    got = caller.get(f"/refunds/charges/{charge.pk}")
    assert (got["status"], got["refunded"], got["abandoned_at"] is not None) == ("succeeded", "10.00", True)
    payback = got["payback"]
    assert (payback["amount"], payback["status"], payback["reason"], [a["status"] for a in payback["attempts"]]) == (
        "10.00", "succeeded", "refunding", ["succeeded"])
    # A refund of the charge's own trade, through the gateway that took it.
    trade = SandboxGatewayRefund.objects.get(kind="charge")
    assert list(SandboxGatewayRefund.objects.order_by("id").values_list("kind", "amount", "status")) == [
        ("charge", Decimal("10.00"), "succeeded"), ("refund", Decimal("10.00"), "succeeded")]
    assert SandboxGatewayRefund.objects.get(kind="refund").payment_reference == trade.reference == got[
        "gateway_reference"]
    assert _events(case) == ["exchange_charge_requested", "exchange_charge_succeeded", "exchange_charge_abandoned",
                             "exchange_charge_refund_requested", "exchange_charge_refunded"]
    timeline = caller.get(f"/cases/{case.pk}/timeline")
    assert [e["data"]["amount"] for e in timeline if e["event"] == "exchange_charge_refunded"] == ["10.00"]
    # The replacement is no longer held, and the shelf has its unit back.
    assert Exchange.objects.get(case=case).status == "released"
    assert [(s["sku"], s["reserved"]) for s in caller.get("/warehouse/stock")] == [("TSHIRT-L", 0)]


def test_a_charge_confirming_after_the_exchange_was_given_up_is_paid_back_as_it_confirms(deferred):
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    assert caller.get(f"/refunds/charges/{charge.pk}")["status"] == "processing"

    _convert(caller, case)

    pending = caller.get(f"/refunds/charges/{charge.pk}")
    assert (pending["status"], pending["refunded"], pending["payback"]) == ("processing", "0.00", None)
    # The gateway confirms the charge, three times: the first writes the payback, the others nothing.
    assert _deliver(times=3) == [{"ok": True, "changed": True}, {"ok": True, "changed": False},
                                 {"ok": True, "changed": False}]
    payback = ChargeRefund.objects.get()
    assert (payback.status, payback.amount) == ("requested", Decimal("10.00"))
    services.process_charge_refund(payback_id=payback.pk)  # what the task does after the commit
    services.process_charge_refund(payback_id=payback.pk)  # a second kick finds nothing to send
    # The payback's confirmation, delivered five times, changes the ledger once.
    assert [a["changed"] for a in _deliver(times=5)] == [True, False, False, False, False]

    got = caller.get(f"/refunds/charges/{charge.pk}")
    assert (got["status"], got["refunded"], got["payback"]["status"],
            [(a["number"], a["status"]) for a in got["payback"]["attempts"]]) == (
        "succeeded", "10.00", "succeeded", [(1, "succeeded")])
    assert list(SandboxGatewayRefund.objects.order_by("id").values_list("kind", "amount")) == [
        ("charge", Decimal("10.00")), ("refund", Decimal("10.00"))]
    assert _events(case) == ["exchange_charge_requested", "exchange_charge_abandoned", "exchange_charge_succeeded",
                             "exchange_charge_refund_requested", "exchange_charge_refunded"]


def test_a_charge_refused_after_the_exchange_was_given_up_is_cancelled_and_not_retried(deferred):
    store = f.make_store()
    sandbox.script("fail")
    case, caller, charge = _charged_exchange(store)
    _convert(caller, case)

    _deliver()

    got = caller.get(f"/refunds/charges/{charge.pk}")
    assert (got["status"], got["refunded"], got["payback"]) == ("cancelled", "0.00", None)
    assert caller.post(f"/refunds/charges/{charge.pk}/retry", expect=409)["code"] == "charge_cancelled"
    assert list(SandboxGatewayRefund.objects.values_list("kind", "status")) == [("charge", "failed")]


def test_a_difference_never_sent_is_cancelled_without_any_money_moving(deferred):
    store = f.make_store()
    case, caller, charge = _charged_exchange(store, pay=False)

    _convert(caller, case)

    got = caller.get(f"/refunds/charges/{charge.pk}")
    assert (got["status"], got["attempts"], got["payback"]) == ("cancelled", [], None)
    services.process_charge(charge_id=charge.pk)  # a kick arriving late sends nothing
    assert SandboxGatewayRefund.objects.count() == 0
    assert _events(case) == ["exchange_charge_requested", "exchange_charge_cancelled"]


def test_a_payback_that_timed_out_is_resolved_by_asking_the_gateway_and_paid_once(deferred):
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    _deliver()  # the charge is paid
    _convert(caller, case)
    payback = ChargeRefund.objects.get()
    sandbox.script("timeout")  # the gateway pays the buyer back, the answer is lost
    services.process_charge_refund(payback_id=payback.pk)
    assert caller.get(f"/refunds/charges/{charge.pk}")["payback"]["attempts"][0]["status"] == "unknown"

    retried = caller.post(f"/refunds/charges/{charge.pk}/payback/retry")

    assert (retried["payback"]["status"], [(a["number"], a["status"]) for a in retried["payback"]["attempts"]]) == (
        "succeeded", [(1, "succeeded")])
    assert SandboxGatewayRefund.objects.filter(kind="refund").count() == 1
    assert caller.post(f"/refunds/charges/{charge.pk}/payback/retry", expect=409)["code"] == "already_refunded"
    # The late callbacks of the timed-out key change nothing.
    assert [a["changed"] for a in _deliver(times=2)] == [False, False]


def test_the_sweep_resolves_a_payback_left_open(deferred):
    store = f.make_store()
    case, caller, _charge = _charged_exchange(store)
    _deliver()
    _convert(caller, case)
    sandbox.script("timeout")
    services.process_charge_refund(payback_id=ChargeRefund.objects.get().pk)

    tasks.sweep((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat())

    payback = ChargeRefund.objects.get()
    assert (payback.status, list(payback.attempts.values_list("number", "status"))) == (
        "succeeded", [(1, "succeeded")])
    assert SandboxGatewayRefund.objects.filter(kind="refund").count() == 1


def test_a_refused_payback_is_retried_with_a_new_key_and_shows_in_the_timeline():
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    sandbox.script("fail")

    _convert(caller, case)

    failed = caller.get(f"/refunds/charges/{charge.pk}")["payback"]
    assert (failed["status"], failed["failure_reason"]) == ("failed", "sandbox: insufficient merchant balance")
    assert _events(case)[-1] == "exchange_charge_refund_failed"
    retried = caller.post(f"/refunds/charges/{charge.pk}/payback/retry")["payback"]
    assert (retried["status"], [(a["number"], a["status"]) for a in retried["attempts"]]) == (
        "succeeded", [(1, "failed"), (2, "succeeded")])
    assert list(SandboxGatewayRefund.objects.filter(kind="refund").order_by("id").values_list("amount", "status")) == [
        (Decimal("10.00"), "failed"), (Decimal("10.00"), "succeeded")]
    assert Charge.objects.get().refunded == Decimal("10.00")


def test_the_database_refuses_to_pay_a_charge_back_twice_or_beyond_what_it_took():
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    _convert(caller, case)
    with pytest.raises(IntegrityError), transaction.atomic():
        Charge.objects.filter(pk=charge.pk).update(refunded=Decimal("10.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        ChargeRefund.objects.create(store=store, case=case, charge=charge, amount=Decimal("1.00"), gateway="sandbox",
                                    requested_at=dt.datetime.now(dt.UTC))
    assert (ChargeRefund.objects.count(), Charge.objects.get().refunded) == (1, Decimal("10.00"))


def test_reconciliation_matches_paybacks_and_lists_one_the_gateway_holds_for_another_amount():
    store = f.make_store()
    case, caller, _charge = _charged_exchange(store)
    _convert(caller, case)
    day = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()

    clean = caller.post("/refunds/reconciliation", {"day": day.isoformat()})
    assert (clean["matched"], clean["mismatches"]) == (2, [])

    SandboxGatewayRefund.objects.filter(kind="refund").update(amount=Decimal("9.00"))
    report = caller.post("/refunds/reconciliation", {"day": day.isoformat()})
    key = ChargeRefund.objects.get().attempts.get().idempotency_key
    assert (report["matched"], report["mismatches"]) == (1, [{"kind": "amount_differs", "key": key,
                                                              "ledger_amount": "10.00", "gateway_amount": "9.00"}])


def test_another_store_cannot_see_or_retry_a_payback():
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    _convert(caller, case)
    stranger = token_caller(f.make_store(slug="other"))

    assert stranger.get(f"/refunds/charges/{charge.pk}", expect=404)["code"] == "not_found"
    assert stranger.post(f"/refunds/charges/{charge.pk}/payback/retry", expect=404)["code"] == "not_found"


def test_the_callback_body_names_the_payback_key_and_a_forged_one_is_refused(deferred):
    store = f.make_store()
    case, caller, _charge = _charged_exchange(store)
    _deliver()
    _convert(caller, case)
    services.process_charge_refund(payback_id=ChargeRefund.objects.get().pk)
    [(body, headers)] = sandbox.due_callbacks(now=dt.datetime.now(dt.UTC) + LATER)
    forged = json.dumps({**json.loads(body), "amount": "99.00"}).encode()

    refused = Client().post(CALLBACK, forged, content_type="application/json",
                            headers={"X-Sandbox-Signature": headers["x-sandbox-signature"]})

    assert (refused.status_code, refused.json()["code"]) == (401, "bad_signature")
    assert json.loads(body)["out_refund_no"] == ChargeRefund.objects.get().attempts.get().idempotency_key
    assert ChargeRefund.objects.get().status == "processing"


def test_the_sweep_pays_back_a_charge_whose_exchange_was_released_without_a_payback():
    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    # As an exchange given up before paybacks existed was left: released, its charge paid and kept.
    Exchange.objects.filter(case=case).update(status="released")

    tasks.sweep((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat())
    tasks.sweep((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat())  # and again: nothing more

    got = caller.get(f"/refunds/charges/{charge.pk}")
    assert (got["refunded"], got["payback"]["status"], got["payback"]["amount"]) == ("10.00", "succeeded", "10.00")
    assert SandboxGatewayRefund.objects.filter(kind="refund").count() == 1
    assert _events(case)[-3:] == ["exchange_charge_abandoned", "exchange_charge_refund_requested",
                                  "exchange_charge_refunded"]


def test_the_admin_lists_charges_and_paybacks_read_only(client):
    from django.contrib.auth import get_user_model

    store = f.make_store()
    case, caller, charge = _charged_exchange(store)
    _convert(caller, case)
    operator = get_user_model().objects.create_superuser(username="operator", password="pw-for-tests-only", email="")
    client.force_login(operator)
    payback = ChargeRefund.objects.get()

    listed = client.get("/admin/refunds/chargerefund/")
    shown = client.get(f"/admin/refunds/charge/{charge.pk}/change/")

    assert (listed.status_code, shown.status_code) == (200, 200)
    assert f"/admin/refunds/chargerefund/{payback.pk}/change/" in listed.content.decode()
    assert client.get("/admin/refunds/chargerefund/add/").status_code == 403
