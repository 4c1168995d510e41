"""Every kind of case, driven end to end through the HTTP API, by a store's token and by people signed in."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from aftersales.cases.models import Case, TimelineEntry
from aftersales.stores.models import ArbiterMembership, Marketplace
from aftersales.testing import factories as f
from aftersales.tests import ApiCaller, session_caller, token_caller

pytestmark = pytest.mark.django_db


def _line_id(order, index=0):
    return order.lines.order_by("line_no")[index].pk


def _open(api, order, kind, *, index=0, quantity=1, reason="quality", **extra):
    body = {"kind": kind, "order_id": order.pk, "lines": [{"order_line_id": _line_id(order, index), "quantity": quantity}],
            "reason": reason, **extra}
    return api.post("/cases", body, expect=201)


OPENED = [("created", "", "submitted"), ("submit", "submitted", "pending_review")]
# A person's refund asks the refunds ledger to pay; the gateway's confirmation moves the case (by the system).
PAID = [("refund_requested", "", ""), ("refund_succeeded", "", ""), ("refund", "refunding", "refunded")]


def test_return_refund_by_token_from_request_to_closed():
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)

    case = _open(api, order, "return_refund")
    assert (case["status"], case["kind"], case["number"]) == ("pending_review", "return_refund", "AS-000001")
    assert case["lines"] == [{"order_line_id": _line_id(order), "sku": "TSHIRT-M", "name": "T恤 M", "quantity": 1}]
    cid = case["id"]
    assert api.act(cid, "approve")["status"] == "awaiting_return"
    shipped = api.act(cid, "ship_return", carrier="SF", tracking_number="SF1234567890")
    assert (shipped["status"], shipped["return_carrier"], shipped["return_tracking_number"]) == (
        "return_in_transit", "SF", "SF1234567890")
    assert api.act(cid, "mark_received")["status"] == "received"
    assert api.act(cid, "start_inspection")["status"] == "inspecting"
    assert api.act(cid, "record_inspection", outcome="passed", grade="A", notes="unworn")["status"] == "refunding"
    refunded = api.act(cid, "refund")
    # One T-shirt of two bought at 99.00 each.
    assert (refunded["status"], refunded["refund_amount"]) == ("refunded", "99.00")
    closed = api.act(cid, "close")
    assert (closed["status"], closed["allowed_actions"]) == ("closed", [])

    assert api.timeline(cid) == [
        *OPENED,
        ("approve", "pending_review", "awaiting_return"),
        ("ship_return", "awaiting_return", "return_in_transit"),
        ("mark_received", "return_in_transit", "received"),
        ("start_inspection", "received", "inspecting"),
        ("record_inspection", "inspecting", "refunding"),
        *PAID,
        ("close", "refunded", "closed"),
    ]
    entries = {e["event"]: e for e in api.get(f"/cases/{cid}/timeline")}
    assert entries["refund"]["data"] == {"amount": "99.00", "rule": "refunds.gateway_confirmed"}
    assert entries["record_inspection"]["data"] == {"notes": "unworn", "grade": "A", "outcome": "passed"}
    assert entries["approve"]["actor_kind"] == "token"


def test_return_refund_by_the_people_of_the_store_signed_in():
    store = f.make_store()
    buyer = f.make_buyer(store, with_login=True)
    order = f.make_order(store, buyer)
    as_buyer = session_caller(buyer.user)
    as_agent = session_caller(f.make_staff(store, "agent"))
    as_warehouse = session_caller(f.make_staff(store, "warehouse"))
    as_finance = session_caller(f.make_staff(store, "finance"))

    case = _open(as_buyer, order, "return_refund", quantity=2, reason="no_reason")
    cid = case["id"]
    # The buyer sees only what a buyer may do: back out.
    assert case["allowed_actions"] == [{"action": "cancel", "outcomes": []}]
    as_agent.act(cid, "approve")
    as_buyer.act(cid, "ship_return", carrier="YTO", tracking_number="YT-778899")
    as_warehouse.act(cid, "mark_received")
    as_warehouse.act(cid, "start_inspection")
    as_warehouse.act(cid, "record_inspection", outcome="passed")
    assert as_finance.act(cid, "refund")["refund_amount"] == "198.00"
    assert as_agent.act(cid, "close")["status"] == "closed"

    kinds = [(e["event"], e["actor_kind"]) for e in as_agent.get(f"/cases/{cid}/timeline")]
    assert kinds == [("created", "buyer"), ("submit", "system"), ("approve", "staff"), ("ship_return", "buyer"),
                     ("mark_received", "staff"), ("start_inspection", "staff"), ("record_inspection", "staff"),
                     ("refund_requested", "staff"), ("refund_succeeded", "system"), ("refund", "system"),
                     ("close", "staff")]


def test_refund_only_pays_what_was_asked():
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)

    cid = _open(api, order, "refund_only", index=1, reason="price_drop", requested_amount="50.00")["id"]
    assert api.act(cid, "approve")["status"] == "refunding"
    assert api.act(cid, "refund")["refund_amount"] == "50.00"
    assert api.act(cid, "close")["status"] == "closed"
    assert api.timeline(cid) == [*OPENED, ("approve", "pending_review", "refunding"), *PAID,
                                 ("close", "refunded", "closed")]


def test_exchange_reships_after_the_inspection_passes():
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)

    cid = _open(api, order, "exchange", reason="size")["id"]
    steps: list[tuple[str, dict[str, Any]]] = [("approve", {}), ("ship_return", {"carrier": "SF", "tracking_number": "SF1"}),
                         ("mark_received", {}), ("start_inspection", {}), ("record_inspection", {"outcome": "passed"})]
    for action, body in steps:
        api.act(cid, action, **body)
    reshipped = api.act(cid, "reship", carrier="JD", tracking_number="JDV0001")
    assert (reshipped["status"], reshipped["reship_carrier"], reshipped["reship_tracking_number"], reshipped["refund_amount"]) == (
        "reshipped", "JD", "JDV0001", None)
    api.act(cid, "close")
    assert api.timeline(cid)[-3:] == [("record_inspection", "inspecting", "reshipping"),
                                      ("reship", "reshipping", "reshipped"), ("close", "reshipped", "closed")]


def test_repair_with_a_quote_the_buyer_accepts():
    store = f.make_store()
    buyer = f.make_buyer(store, with_login=True)
    order = f.make_order(store, buyer)
    api = token_caller(store)
    as_buyer = session_caller(buyer.user)

    cid = _open(api, order, "repair", index=1)["id"]
    assert api.act(cid, "approve")["status"] == "awaiting_device"
    # The buyer's tracking number is recorded; the device is still on its way.
    assert api.act(cid, "ship_return", carrier="SF", tracking_number="SF9")["status"] == "device_in_transit"
    assert api.act(cid, "mark_received")["status"] == "device_received"
    assert api.act(cid, "start_diagnosis")["status"] == "diagnosing"
    quoted = api.act(cid, "quote", amount="300.00", diagnosis="screen cracked by a fall")
    assert (quoted["status"], quoted["quote_amount"]) == ("quote_pending", "300.00")
    assert as_buyer.act(cid, "accept_quote")["status"] == "repairing"
    assert api.act(cid, "mark_repaired")["status"] == "repaired"
    assert api.act(cid, "ship_back", carrier="SF", tracking_number="SF10")["status"] == "shipping_back"
    assert api.act(cid, "close")["status"] == "closed"
    assert api.timeline(cid) == [
        *OPENED,
        ("approve", "pending_review", "awaiting_device"),
        ("ship_return", "awaiting_device", "device_in_transit"),
        ("mark_received", "device_in_transit", "device_received"),
        ("start_diagnosis", "device_received", "diagnosing"),
        ("quote", "diagnosing", "quote_pending"),
        ("accept_quote", "quote_pending", "repairing"),
        ("mark_repaired", "repairing", "repaired"),
        ("ship_back", "repaired", "shipping_back"),
        ("close", "shipping_back", "closed"),
    ]


def test_an_unrepairable_device_converts_to_an_exchange():
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)
    cid = _open(api, order, "repair", index=1)["id"]
    for action in ("approve", "mark_received", "start_diagnosis"):
        api.act(cid, action)

    missing = api.act(cid, "convert", expect=422)
    assert (missing["code"], missing["details"]) == ("outcome_required", {"field": "outcome", "outcomes": ["exchange", "return"]})
    converted = api.act(cid, "convert", outcome="exchange")
    assert (converted["kind"], converted["status"]) == ("exchange", "reshipping")
    api.act(cid, "reship", carrier="SF", tracking_number="SF11")
    assert api.act(cid, "close")["status"] == "closed"
    convert = [e for e in api.get(f"/cases/{cid}/timeline") if e["event"] == "convert"]
    assert convert[0]["data"] == {"outcome": "exchange", "converted_from": "repair"}


@pytest.mark.parametrize("kind", ["complaint", "inquiry"])
def test_conversation_runs_to_closed_and_reopens(kind):
    store = f.make_store()
    buyer = f.make_buyer(store)
    api = token_caller(store)

    case = api.post("/cases", {"kind": kind, "buyer_id": buyer.pk, "subject": "快递员态度差"}, expect=201)
    assert (case["status"], case["buyer_id"], case["lines"], case["order_id"]) == ("open", buyer.pk, [], None)
    cid = case["id"]
    steps = [("acknowledge", "acknowledged"), ("start_progress", "in_progress"),
             ("wait_on_customer", "waiting_on_customer"), ("customer_replied", "in_progress"),
             ("resolve", "resolved"), ("close", "closed"), ("reopen", "in_progress")]
    for action, status in steps:
        assert api.act(cid, action)["status"] == status
    assert api.timeline(cid) == [
        ("created", "", "open"),
        ("acknowledge", "open", "acknowledged"),
        ("start_progress", "acknowledged", "in_progress"),
        ("wait_on_customer", "in_progress", "waiting_on_customer"),
        ("customer_replied", "waiting_on_customer", "in_progress"),
        ("resolve", "in_progress", "resolved"),
        ("close", "resolved", "closed"),
        ("reopen", "closed", "in_progress"),
    ]


def test_counter_offer_accepted_by_the_buyer_refunds_the_offer():
    store = f.make_store()
    buyer = f.make_buyer(store, with_login=True)
    order = f.make_order(store, buyer)
    api = token_caller(store)
    as_buyer = session_caller(buyer.user)
    cid = _open(api, order, "return_refund", quantity=2, reason="not_as_described")["id"]

    offered = api.act(cid, "counter_offer", amount="30.00", message="keep the shirts, take 30 back")
    assert (offered["status"], offered["offer_amount"]) == ("negotiating", "30.00")
    seen_by_buyer = as_buyer.get(f"/cases/{cid}")
    assert seen_by_buyer["allowed_actions"] == [
        {"action": "accept_offer", "outcomes": []}, {"action": "decline_offer", "outcomes": []},
        {"action": "cancel", "outcomes": []},
    ]
    assert as_buyer.act(cid, "accept_offer")["status"] == "refunding"
    refunded = api.act(cid, "refund")
    assert (refunded["status"], refunded["refund_amount"], refunded["offer_amount"]) == ("refunded", "30.00", "30.00")
    api.act(cid, "close")
    assert api.timeline(cid) == [
        *OPENED,
        ("counter_offer", "pending_review", "negotiating"),
        ("accept_offer", "negotiating", "refunding"),
        *PAID,
        ("close", "refunded", "closed"),
    ]


def _marketplace_with(*stores):
    marketplace = Marketplace.objects.create(name="淘宝", slug=f"mp-{stores[0].slug}")
    for store in stores:
        store.marketplace = marketplace
        store.save(update_fields=["marketplace"])
    arbiter = f.make_staff(f.make_store(), "agent")  # an arbiter may well work in a store of their own
    ArbiterMembership.objects.create(user=arbiter, marketplace=marketplace)
    return arbiter


def test_buyer_escalates_a_rejection_and_the_platform_arbiter_decides():
    other = f.make_store(platform_mode="taobao")
    store = f.make_store(platform_mode="taobao")
    arbiter = _marketplace_with(other, store)
    buyer = f.make_buyer(store, with_login=True)
    order = f.make_order(store, buyer)
    api = token_caller(store)
    as_buyer = session_caller(buyer.user)
    as_arbiter = session_caller(arbiter, store_slug=store.slug)

    cid = _open(api, order, "return_refund")["id"]
    rejected = api.act(cid, "reject", reason="worn")
    assert (rejected["status"], rejected["rejection_reason"]) == ("rejected", "worn")
    assert {"action": "escalate", "outcomes": []} in as_buyer.get(f"/cases/{cid}")["allowed_actions"]
    assert as_buyer.act(cid, "escalate")["status"] == "in_arbitration"

    seen = as_arbiter.get(f"/cases/{cid}")
    assert seen["allowed_actions"] == [{"action": "arbitrate", "outcomes": ["refund", "reject", "return"]}]
    decided = as_arbiter.act(cid, "arbitrate", outcome="refund", note="photos show the defect")
    assert decided["status"] == "refunding"
    assert api.act(cid, "refund")["refund_amount"] == "99.00"
    entries = api.get(f"/cases/{cid}/timeline")
    assert [(e["event"], e["from_status"], e["to_status"], e["actor_kind"]) for e in entries[2:]] == [
        ("reject", "pending_review", "rejected", "token"),
        ("escalate", "rejected", "in_arbitration", "buyer"),
        ("arbitrate", "in_arbitration", "refunding", "arbiter"),
        ("refund_requested", "", "", "token"),
        ("refund_succeeded", "", "", "system"),
        ("refund", "refunding", "refunded", "system"),
    ]
    assert entries[4]["data"] == {"note": "photos show the defect", "outcome": "refund"}


def test_the_arbiter_acts_only_in_the_store_named_in_x_store():
    first = f.make_store(platform_mode="taobao")
    second = f.make_store(platform_mode="taobao")
    arbiter = _marketplace_with(first, second)
    case_id = _open(token_caller(first), f.make_order(first), "return_refund")["id"]

    assert session_caller(arbiter, store_slug=first.slug).get(f"/cases/{case_id}")["id"] == case_id
    assert session_caller(arbiter, store_slug=second.slug).get(f"/cases/{case_id}", expect=404)["code"] == "not_found"
    # A store outside the arbiter's marketplace is simply not theirs.
    outsider = f.make_store(platform_mode="taobao")
    assert session_caller(arbiter, store_slug=outsider.slug).get("/cases", expect=401)["code"] == "not_authenticated"


def test_escalation_needs_a_platform():
    store = f.make_store()  # an independent shop: nobody to escalate to
    buyer = f.make_buyer(store, with_login=True)
    order = f.make_order(store, buyer)
    api = token_caller(store)
    cid = _open(api, order, "return_refund")["id"]
    api.act(cid, "reject", reason="worn")

    assert session_caller(buyer.user).get(f"/cases/{cid}")["allowed_actions"] == []
    refused = api.act(cid, "escalate", expect=409)
    assert refused["code"] == "platform_not_available"
    assert Case.objects.get(pk=cid).status == "rejected"


def test_an_action_not_allowed_now_is_409_with_what_is_allowed():
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)
    cid = _open(api, order, "return_refund")["id"]
    entries_before = TimelineEntry.objects.filter(case_id=cid).count()

    refused = api.act(cid, "refund", expect=409)

    assert refused["code"] == "action_not_allowed"
    assert refused["details"] == {
        "status": "pending_review",
        "allowed_actions": [{"action": "reject", "outcomes": []}, {"action": "counter_offer", "outcomes": []},
                            {"action": "approve", "outcomes": []}, {"action": "cancel", "outcomes": []}],
    }
    assert Case.objects.get(pk=cid).status == "pending_review"
    assert TimelineEntry.objects.filter(case_id=cid).count() == entries_before


def test_a_signed_in_post_without_the_csrf_token_is_refused():
    store = f.make_store()
    order = f.make_order(store)
    cid = _open(token_caller(store), order, "return_refund")["id"]
    agent = session_caller(f.make_staff(store, "agent"), enforce_csrf=True)

    refused = agent.act(cid, "approve", expect=403)

    assert refused["code"] == "csrf_failed"
    assert Case.objects.get(pk=cid).status == "pending_review"
    # Reads need no token, and the same post with it goes through.
    assert agent.get(f"/cases/{cid}")["status"] == "pending_review"
    agent.client.cookies["csrftoken"] = "k" * 32
    approved = agent.post(f"/cases/{cid}/actions/approve", {}, headers={"X-CSRFToken": "k" * 32})
    assert approved["status"] == "awaiting_return"


def test_a_token_authenticates_even_without_a_session_and_a_bad_one_never_falls_back_to_it():
    store = f.make_store()
    client = Client()
    client.force_login(f.make_staff(store, "agent"))
    bad = ApiCaller(client, Authorization="Bearer as_deadbeef_not-the-secret")

    assert bad.get("/cases", expect=401) == {"code": "not_authenticated", "message": "sign in or send an API token",
                                             "details": {}}


@pytest.mark.parametrize("kind", ["return_refund", "exchange", "repair", "complaint", "inquiry"])
def test_the_answer_to_opening_a_case_is_the_case_as_it_is_read_back(kind):
    # The create answer is rendered without a second pass through the schema (cases/api.py): it must be
    # what GET answers, key for key and in the same order.
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)
    client = Client()
    if kind in ("complaint", "inquiry"):
        body: dict[str, Any] = {"kind": kind, "order_id": order.pk, "subject": "快递太慢", "description": "三天没动"}
    else:
        body = {"kind": kind, "order_id": order.pk, "reason": "quality", "requested_amount": "50.00",
                "lines": [{"order_line_id": _line_id(order), "quantity": 2}]}
    created = client.post("/api/v1/cases", body, content_type="application/json", headers=api.headers)
    assert created.status_code == 201
    assert created["Content-Type"] == "application/json; charset=utf-8"
    read = client.get(f"/api/v1/cases/{created.json()['id']}", headers=api.headers)
    assert list(created.json()) == list(read.json())
    assert created.json() == read.json()
