"""`case.return_label_ready`: announced when a return slip is filed on a case, with the case events' shape."""

from __future__ import annotations

import pytest

from aftersales.cases import services as case_services
from aftersales.core import events
from aftersales.logistics.tests.helpers import approved_case, warehouse
from aftersales.testing import factories as f
from aftersales.tests import token_caller

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    got: list[tuple[str, dict]] = []

    def listener(event, payload):
        got.append((event, payload))

    events.subscribe("case.return_label_ready", listener)
    yield got
    events.unsubscribe("case.return_label_ready", listener)


def test_filing_the_slip_through_the_api_announces_it_with_the_attachment(heard, django_capture_on_commit_callbacks):
    store = f.make_store()
    case = approved_case(store)  # no return address yet: approving filed no slip
    warehouse(store)
    with django_capture_on_commit_callbacks(execute=True):
        filed = token_caller(store).post(f"/logistics/cases/{case.pk}/return-slip", {}, expect=201)
    assert heard == [("case.return_label_ready", {
        "store_id": store.pk, "case_id": case.pk, "number": case.number, "kind": "return_refund",
        "status": "awaiting_return", "case_number": case.number, "attachment_id": filed["attachment_id"],
        "buyer_id": case.buyer_id})]
    assert case.attachments.get(pk=filed["attachment_id"]).original_name == f"return-slip-{case.number}.pdf"


def test_approving_a_return_files_the_slip_once_and_announces_it(heard, django_capture_on_commit_callbacks):
    store = f.make_store()
    warehouse(store)
    order = f.make_order(store)
    agent = f.staff(store, "admin")
    case = case_services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="quality",
                                     lines=[case_services.LineRequest(order_line_id=order.lines.order_by("line_no")[0].pk,
                                                                      quantity=1)])
    with django_capture_on_commit_callbacks(execute=True):
        case_services.transition_case(actor=agent, case_id=case.pk, action="approve")
    [slip] = case.attachments.all()
    assert [(e, p["attachment_id"], p["status"]) for e, p in heard] == [
        ("case.return_label_ready", slip.pk, "awaiting_return")]
    # Another move into a waiting status (e.g. after arbitration) does not file a second slip.
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("case.transitioned", {"store_id": store.pk, "case_id": case.pk, "number": case.number,
                                             "kind": case.kind, "status": "awaiting_return"})
    assert (case.attachments.count(), len(heard)) == (1, 1)


def test_a_store_without_a_return_address_approves_without_a_slip(heard, django_capture_on_commit_callbacks):
    store = f.make_store()
    with django_capture_on_commit_callbacks(execute=True):
        case = approved_case(store)
    assert (case.status, case.attachments.count(), heard) == ("awaiting_return", 0, [])
