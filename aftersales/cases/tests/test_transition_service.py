"""Who may move a case, with what, and what happens when two people move it at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from aftersales.cases import services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from aftersales.stores.models import Marketplace
from aftersales.stores.permissions import arbiter_actor, system_actor
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


def _open_case(store, *, kind="return_refund", buyer=None, quantity=1):
    order = f.make_order(store, buyer)
    line = order.lines.order_by("line_no")[0]  # the T-shirts: 2 × 99.00
    return services.create_case(actor=system_actor(store.pk), kind=kind, order_id=order.pk, reason_code="quality",
                                lines=[services.LineRequest(order_line_id=line.pk, quantity=quantity)])


def _move(store, case, *steps):
    for action, outcome, payload in steps:
        services.transition_case(actor=system_actor(store.pk), case_id=case.pk, action=action, outcome=outcome,
                                 payload=payload)


def _state(case):
    """Everything a refused transition must leave untouched."""
    row = Case.objects.filter(pk=case.pk).values().get()
    timeline = list(TimelineEntry.objects.filter(case_id=case.pk).order_by("id").values_list("id", flat=True))
    return row, timeline


REJECTED = ("reject", None, {"reason": "已过退货期"})


# --- permissions ---------------------------------------------------------------------------------------

def test_a_buyer_cannot_approve_their_own_request():
    store = f.make_store()
    buyer = f.make_buyer(store)
    case = _open_case(store, buyer=buyer)
    before = _state(case)

    with pytest.raises(PermissionDenied) as error:
        services.transition_case(actor=f.buyer_of(buyer), case_id=case.pk, action="approve")

    assert (error.value.status, error.value.details) == (403, {"permission": "case.decide"})
    assert _state(case) == before


def test_a_warehouse_user_cannot_refund():
    store = f.make_store()
    case = _open_case(store, kind="refund_only")
    _move(store, case, ("approve", None, None))
    before = _state(case)

    with pytest.raises(PermissionDenied) as error:
        services.transition_case(actor=f.staff(store, "warehouse"), case_id=case.pk, action="refund")

    assert error.value.details == {"permission": "case.refund"}
    assert _state(case) == before


def test_finance_can_refund():
    store = f.make_store()
    case = _open_case(store, kind="refund_only")
    _move(store, case, ("approve", None, None))

    moved = services.transition_case(actor=f.staff(store, "finance"), case_id=case.pk, action="refund")

    assert (moved.status, moved.refund_amount) == ("refunded", 99)


def test_an_agent_cannot_arbitrate():
    store = f.make_store(platform_mode="taobao")
    case = _open_case(store)
    _move(store, case, REJECTED, ("escalate", None, None))
    before = _state(case)

    with pytest.raises(PermissionDenied) as error:
        services.transition_case(actor=f.staff(store, "agent"), case_id=case.pk, action="arbitrate", outcome="refund")

    assert error.value.details == {"permission": "case.arbitrate"}
    assert _state(case) == before


def test_a_platform_arbiter_can_arbitrate():
    marketplace = Marketplace.objects.create(name="商城", slug="mall")
    store = f.make_store(marketplace=marketplace)
    case = _open_case(store)
    _move(store, case, REJECTED, ("escalate", None, None))
    user = get_user_model().objects.create_user(username="arbiter", password="pw-for-tests-only")
    arbiter = arbiter_actor(store_id=store.pk, user_id=user.pk, label="仲裁员")

    moved = services.transition_case(actor=arbiter, case_id=case.pk, action="arbitrate", outcome="refund")

    assert moved.status == "refunding"


def test_only_the_cases_own_buyer_can_accept_an_offer():
    store = f.make_store()
    buyer, neighbour = f.make_buyer(store), f.make_buyer(store)
    case = _open_case(store, buyer=buyer)
    services.transition_case(actor=f.staff(store), case_id=case.pk, action="counter_offer", payload={"amount": "30.00"})
    before = _state(case)

    with pytest.raises(NotFound):
        services.transition_case(actor=f.buyer_of(neighbour), case_id=case.pk, action="accept_offer")
    assert _state(case) == before

    moved = services.transition_case(actor=f.buyer_of(buyer), case_id=case.pk, action="accept_offer")
    assert (moved.status, moved.offer_amount) == ("refunding", 30)


def test_staff_of_another_store_cannot_find_the_case():
    store, other = f.make_store(), f.make_store()
    case = _open_case(store)
    before = _state(case)

    with pytest.raises(NotFound) as error:
        services.transition_case(actor=f.staff(other, "admin"), case_id=case.pk, action="approve")

    assert error.value.code == "not_found"
    assert _state(case) == before


# --- escalation needs a platform -----------------------------------------------------------------------

def test_an_independent_store_has_no_platform_to_escalate_to():
    store = f.make_store(platform_mode="none")
    buyer = f.make_buyer(store)
    case = _open_case(store, buyer=buyer)
    _move(store, case, REJECTED)
    before = _state(case)

    with pytest.raises(Conflict) as error:
        services.transition_case(actor=f.buyer_of(buyer), case_id=case.pk, action="escalate")

    assert error.value.code == "platform_not_available"
    # Nothing the buyer can do here needs escalation; the refusal must not offer it either.
    assert error.value.details == {"status": "rejected", "allowed_actions": []}
    assert _state(case) == before


def test_a_taobao_store_buyer_can_escalate_a_rejection():
    store = f.make_store(platform_mode="taobao")
    buyer = f.make_buyer(store)
    case = _open_case(store, buyer=buyer)
    _move(store, case, REJECTED)

    moved = services.transition_case(actor=f.buyer_of(buyer), case_id=case.pk, action="escalate")

    assert moved.status == "in_arbitration"
    entry = TimelineEntry.objects.filter(case=case).order_by("-id")[0]
    assert (entry.event, entry.from_status, entry.to_status, entry.actor_kind) == (
        "escalate", "rejected", "in_arbitration", "buyer")


# --- payloads ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("setup", "action", "payload", "code", "field"),
    [
        pytest.param([], "reject", {}, "field_required", "reason", id="reject-without-reason"),
        pytest.param([], "reject", {"reason": "   "}, "field_required", "reason", id="reject-with-blank-reason"),
        pytest.param([], "counter_offer", {"amount": "99.01"}, "amount_exceeds_paid", "amount",
                     id="counter-offer-above-paid"),
        pytest.param([], "counter_offer", {"amount": "-5"}, "invalid_amount", "amount", id="counter-offer-negative"),
        pytest.param([("approve", None, None)], "ship_return", {"carrier": "SF", "tracking_number": "SF 12#"},
                     "invalid_tracking_number", "tracking_number", id="ship-return-bad-tracking"),
        pytest.param([("approve", None, None)], "ship_return", {"tracking_number": "SF1"}, "field_required",
                     "carrier", id="ship-return-without-carrier"),
    ],
)
def test_a_bad_payload_is_refused_with_422_and_writes_nothing(setup, action, payload, code, field):
    store = f.make_store()
    buyer = f.make_buyer(store)
    case = _open_case(store, buyer=buyer)
    _move(store, case, *setup)
    actor = f.buyer_of(buyer) if action == "ship_return" else f.staff(store)
    before = _state(case)

    with pytest.raises(ValidationFailed) as error:
        services.transition_case(actor=actor, case_id=case.pk, action=action, payload=payload)

    assert (error.value.status, error.value.code, error.value.details.get("field")) == (422, code, field)
    assert _state(case) == before


def test_the_ceiling_of_a_counter_offer_is_what_was_paid_for_the_claimed_lines():
    store = f.make_store()
    case = _open_case(store, quantity=2)

    with pytest.raises(ValidationFailed) as error:
        services.transition_case(actor=f.staff(store), case_id=case.pk, action="counter_offer",
                                 payload={"amount": "198.01"})

    assert error.value.details == {"field": "amount", "maximum": "198.00"}


def test_an_action_with_outcomes_needs_one_named():
    store = f.make_store(platform_mode="taobao")
    case = _open_case(store)
    _move(store, case, REJECTED, ("escalate", None, None))
    before = _state(case)

    with pytest.raises(ValidationFailed) as error:
        services.transition_case(actor=system_actor(store.pk), case_id=case.pk, action="arbitrate")

    assert (error.value.code, error.value.details) == (
        "outcome_required", {"field": "outcome", "outcomes": ["refund", "reject", "return"]})
    assert _state(case) == before


# --- concurrency ---------------------------------------------------------------------------------------

@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs PostgreSQL: SQLite has one writer at a time and ignores SELECT ... FOR UPDATE, "
                           "so it cannot show two transactions racing for the row lock")
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_approvals_of_one_case_succeed_once():
    store = f.make_store()
    case = _open_case(store)
    agents = [f.staff(store), f.staff(store)]
    barrier = threading.Barrier(len(agents))
    results: list[Any] = [None] * len(agents)

    def approve(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = services.transition_case(actor=agents[index], case_id=case.pk, action="approve").status
        except DomainError as exc:
            results[index] = exc
        finally:
            # Each thread has its own connection; leaving it open would block the database flush after the test.
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(index,)) for index in range(len(agents))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(result for result in results if isinstance(result, str)) == ["awaiting_return"]
    refused = [result for result in results if isinstance(result, DomainError)]
    assert [(type(error), error.code) for error in refused] == [(Conflict, "action_not_allowed")]
    assert refused[0].details["status"] == "awaiting_return"
    assert TimelineEntry.objects.filter(case=case, event="approve").count() == 1
    assert Case.objects.get(pk=case.pk).status == "awaiting_return"


# --- defects once found in the tables, kept as regressions -------------------------------------------

def test_a_refund_that_was_paid_cannot_be_paid_again_after_reopening():
    store = f.make_store()
    case = _open_case(store, kind="refund_only")
    _move(store, case, ("approve", None, None), ("refund", None, None), ("close", None, None))

    with pytest.raises(Conflict):
        _move(store, case, ("reopen", None, None), ("approve", None, None), ("refund", None, None))

    assert TimelineEntry.objects.filter(case=case, event="refund").count() == 1


def test_a_repair_whose_device_was_shipped_is_no_longer_waiting_to_expire():
    store = f.make_store()
    buyer = f.make_buyer(store)
    case = _open_case(store, kind="repair", buyer=buyer)
    _move(store, case, ("approve", None, None))

    moved = services.transition_case(actor=f.buyer_of(buyer), case_id=case.pk, action="ship_return",
                                     payload={"carrier": "SF", "tracking_number": "SF1234567890"})

    assert (moved.status, moved.deadline_rule) == ("device_in_transit", "shop_confirm_timeout.auto_receive")


@pytest.mark.parametrize(("action", "outcome", "code"), [
    ("approve", "bogus", "invalid_outcome"),
    ("reject", "passed", "invalid_outcome"),
])
def test_an_outcome_given_to_an_action_that_takes_none_is_refused(action, outcome, code):
    store = f.make_store()
    case = _open_case(store, kind="return_refund")

    with pytest.raises(ValidationFailed) as error:
        services.transition_case(actor=system_actor(store.pk), case_id=case.pk, action=action, outcome=outcome,
                                 payload={"reason": "x"})

    assert (error.value.code, error.value.details) == (code, {"field": "outcome", "outcomes": []})
    assert Case.objects.get(pk=case.pk).status == "pending_review"
