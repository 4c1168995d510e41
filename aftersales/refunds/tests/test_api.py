"""The refunds API end to end over HTTP: ask, approve, retry, consent, the signed callback, reports.

The router is mounted at /api/v1 by aftersales/api.py; until it is, these tests have no URL to call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from aftersales.core import clock
from aftersales.refunds import services
from aftersales.refunds.gateways import sandbox
from aftersales.refunds.models import RefundAttempt, SandboxGatewayRefund
from aftersales.testing import factories as f
from aftersales.tests import session_caller, token_caller

from .helpers import refunding_case

CALLBACK = "/api/v1/refunds/callbacks/sandbox"


def _local_today() -> dt.date:
    # Reports are by the store's own day (Asia/Shanghai for the test stores), not the UTC day.
    return clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()


def _mounted() -> bool:
    from aftersales.api import api

    return "/api/v1/refunds/callbacks/{gateway}" in api.get_openapi_schema()["paths"]


pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("not _mounted()", reason="the refunds router is not mounted at /api/v1 yet"),
]


def _callback(body: bytes, signature: str):
    return Client().post(CALLBACK, body, content_type="application/json", headers={"X-Sandbox-Signature": signature})


def test_a_refund_asked_over_http_is_paid_and_shown_with_its_due_date():
    store = f.make_store()
    case = refunding_case(store)
    api = token_caller(store)

    made = api.post(f"/cases/{case.pk}/refunds", {}, expect=201)

    assert (made["amount"], made["status"], made["number"], made["overdue"]) == ("99.00", "succeeded", 1, False)
    assert made["due_at"] is not None
    [item] = made["items"]
    assert (item["method"], item["amount"], item["status"]) == ("alipay", "99.00", "succeeded")
    assert [a["status"] for a in item["attempts"]] == ["succeeded"]
    assert api.get(f"/cases/{case.pk}")["status"] == "refunded"
    assert [r["id"] for r in api.get(f"/cases/{case.pk}/refunds")] == [made["id"]]


def test_another_stores_case_answers_as_missing():
    store, other = f.make_store(), f.make_store()
    case = refunding_case(other)

    refused = token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=404)

    assert refused["code"] == "not_found"


def test_store_credit_over_http_needs_the_buyers_consent_first():
    store = f.make_store()
    buyer = f.make_buyer(store, with_login=True)
    case = refunding_case(store, buyer=buyer)
    api = token_caller(store)

    assert api.post(f"/cases/{case.pk}/refunds", {"to_store_credit": True}, expect=409)["code"] == \
        "store_credit_needs_consent"
    session_caller(buyer.user).post(f"/cases/{case.pk}/store-credit-consent", {"wording": "同意退到店铺余额"}, expect=201)
    made = api.post(f"/cases/{case.pk}/refunds", {"to_store_credit": True}, expect=201)

    assert (made["status"], [i["method"] for i in made["items"]]) == ("succeeded", ["store_credit"])


def test_finance_approves_over_http():
    store = f.make_store()
    case = refunding_case(store, lines=(1,))
    services.set_approval_threshold(actor=f.staff(store, "admin"), threshold=Decimal("1000.00"))
    made = token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=201)
    assert made["status"] == "pending_approval"

    agent = session_caller(f.make_staff(store, "agent"))
    assert agent.post(f"/refunds/{made['id']}/approve", expect=403)["code"] == "permission_denied"
    approved = session_caller(f.make_staff(store, "finance")).post(f"/refunds/{made['id']}/approve")

    assert approved["status"] == "succeeded"


def test_a_callback_with_a_bad_signature_is_refused_and_logged(caplog, deferred):
    store = f.make_store()
    case = refunding_case(store)
    token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=201)
    services.process_refund(refund_id=case.refunds.get().pk)
    [(body, _)] = sandbox.due_callbacks(now=clock.now() + dt.timedelta(hours=1))

    with caplog.at_level(logging.WARNING, logger="aftersales.refunds.services"):
        response = _callback(body, "0" * 64)

    assert (response.status_code, response.json()["code"]) == (401, "bad_signature")
    assert "refund callback refused" in caplog.text
    assert RefundAttempt.objects.get().status == "accepted"


def test_a_tampered_callback_body_is_refused():
    body = json.dumps({"out_refund_no": "x", "refund_id": "y", "status": "succeeded", "amount": "1.00"}).encode()
    signature = sandbox.sign(body)

    response = _callback(body.replace(b"1.00", b"9.00"), signature)

    assert (response.status_code, response.json()["code"]) == (401, "bad_signature")


def test_a_signed_callback_delivered_again_changes_nothing_the_second_time(deferred):
    store = f.make_store()
    case = refunding_case(store)
    token_caller(store).post(f"/cases/{case.pk}/refunds", {}, expect=201)
    services.process_refund(refund_id=case.refunds.get().pk)
    [(body, headers)] = sandbox.due_callbacks(now=clock.now() + dt.timedelta(hours=1))
    signature = headers["x-sandbox-signature"]

    answers = [_callback(body, signature).json() for _ in range(5)]

    assert answers == [{"ok": True, "changed": True}] + [{"ok": True, "changed": False}] * 4
    assert SandboxGatewayRefund.objects.count() == 1


def test_a_retry_over_http_after_a_timeout_pays_once(deferred):
    store = f.make_store()
    case = refunding_case(store)
    api = token_caller(store)
    made = api.post(f"/cases/{case.pk}/refunds", {}, expect=201)
    sandbox.script("timeout")
    services.process_refund(refund_id=made["id"])
    retried = api.post(f"/refunds/items/{made['items'][0]['id']}/retry")

    assert (retried["status"], len(retried["items"][0]["attempts"])) == ("succeeded", 1)
    assert SandboxGatewayRefund.objects.count() == 1


def test_reconciliation_over_http():
    store = f.make_store()
    case = refunding_case(store)
    api = token_caller(store)
    api.post(f"/cases/{case.pk}/refunds", {}, expect=201)

    report = api.post("/refunds/reconciliation", {"day": _local_today().isoformat()})

    assert (report["matched"], report["mismatches"]) == (1, [])
    assert [r["day"] for r in api.get("/refunds/reconciliation/reports")] == [_local_today().isoformat()]
