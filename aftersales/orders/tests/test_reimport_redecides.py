import datetime as dt

import pytest
import time_machine

from aftersales.cases.models import Case, TimelineEntry
from aftersales.cases.services import LineRequest, create_case
from aftersales.orders.models import Order
from aftersales.testing import factories as f

from .payloads import order_payload, post_orders, token_client

pytestmark = pytest.mark.django_db
REQUESTED_AT = dt.datetime(2026, 11, 14, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_resending_an_order_with_its_signature_re_decides_the_open_case(django_capture_on_commit_callbacks):
    store = f.make_store()
    client = token_client(store, ["orders:write"])
    unsigned = order_payload("T1")
    unsigned["shipments"][0].pop("signed_at")
    post_orders(client, [unsigned])
    order = Order.objects.get(store=store, external_id="T1")
    with time_machine.travel(REQUESTED_AT, tick=False):
        case = create_case(actor=f.staff(store), kind="return_refund", order_id=order.pk, reason_code="quality",
                           lines=[LineRequest(order_line_id=order.lines.get(line_no=1).pk, quantity=1)])
    assert case.decision["error"]["field"] == "order.signed_at"

    with django_capture_on_commit_callbacks(execute=True):
        response = post_orders(client, [order_payload("T1")])

    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    decision = Case.objects.get(pk=case.pk).decision
    assert (decision["requested_open"], decision["refund"]["amount"]) == (True, "64.00")
    assert TimelineEntry.objects.filter(case=case, event="decision_updated").count() == 1
