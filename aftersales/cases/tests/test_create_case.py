from decimal import Decimal

import pytest

from aftersales.cases import services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


def _line(order, index=0, quantity=1):
    line = order.lines.order_by("line_no")[index]
    return services.LineRequest(order_line_id=line.pk, quantity=quantity)


def test_buyer_opens_a_return_that_goes_straight_to_review():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)

    case = services.create_case(actor=f.buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[_line(order, 0, 2)], reason_code="no_reason")

    assert case.status == "pending_review"
    assert case.number == "AS-000001"
    assert case.deadline_rule == "shop_review_timeout.auto_approve"
    assert case.deadline_at is not None
    assert (case.deadline_at - case.created_at).total_seconds() == 48 * 3600
    events = list(TimelineEntry.objects.filter(case=case).order_by("id").values_list("event", "from_status", "to_status"))
    assert events == [("created", "", "submitted"), ("submit", "submitted", "pending_review")]


def test_case_numbers_count_per_store():
    store_a, store_b = f.make_store(), f.make_store(case_number_prefix="BB")
    for store in (store_a, store_a, store_b):
        order = f.make_order(store)
        services.create_case(actor=f.staff(store), kind="return_refund", order_id=order.pk, lines=[_line(order)],
                             reason_code="quality")
    assert sorted(Case.objects.values_list("number", flat=True)) == ["AS-000001", "AS-000002", "BB-000001"]


def test_quantity_may_not_exceed_what_is_left_on_the_line():
    store = f.make_store()
    order = f.make_order(store)
    agent = f.staff(store)
    services.create_case(actor=agent, kind="return_refund", order_id=order.pk, lines=[_line(order, 0, 1)],
                         reason_code="size")

    with pytest.raises(ValidationFailed) as error:
        services.create_case(actor=agent, kind="exchange", order_id=order.pk, lines=[_line(order, 0, 2)],
                             reason_code="size")

    assert error.value.code == "quantity_exceeds_available"
    assert error.value.details == {"field": "lines[0].quantity", "available": 1, "requested": 2}
    assert Case.objects.count() == 1


def test_a_cancelled_case_frees_its_quantity():
    store = f.make_store()
    buyer = f.make_buyer(store)
    order = f.make_order(store, buyer)
    first = services.create_case(actor=f.buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                 lines=[_line(order, 0, 2)], reason_code="size")
    services.transition_case(actor=f.buyer_of(buyer), case_id=first.pk, action="cancel")

    second = services.create_case(actor=f.buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                  lines=[_line(order, 0, 2)], reason_code="size")

    assert second.status == "pending_review"


def test_a_buyer_cannot_open_a_case_on_someone_elses_order():
    store = f.make_store()
    order = f.make_order(store)
    stranger = f.make_buyer(store)

    with pytest.raises(NotFound):
        services.create_case(actor=f.buyer_of(stranger), kind="return_refund", order_id=order.pk,
                             lines=[_line(order)], reason_code="quality")
    assert Case.objects.count() == 0


def test_staff_of_another_store_cannot_see_the_order():
    store, other = f.make_store(), f.make_store()
    order = f.make_order(store)

    with pytest.raises(NotFound):
        services.create_case(actor=f.staff(other), kind="return_refund", order_id=order.pk, lines=[_line(order)],
                             reason_code="quality")


def test_warehouse_staff_may_not_open_cases():
    store = f.make_store()
    order = f.make_order(store)

    with pytest.raises(PermissionDenied):
        services.create_case(actor=f.staff(store, "warehouse"), kind="return_refund", order_id=order.pk,
                             lines=[_line(order)], reason_code="quality")


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"kind": "teleport"}, "invalid_kind", "kind"),
        ({"kind": "return_refund", "reason_code": None}, "reason_required", "reason"),
        ({"kind": "return_refund", "reason_code": "bored"}, "invalid_reason", "reason"),
        ({"kind": "return_refund", "lines": []}, "lines_required", "lines"),
        ({"kind": "return_refund", "requested_amount": Decimal("-1")}, "invalid_amount", "requested_amount"),
        ({"kind": "complaint"}, "lines_not_allowed", "lines"),
    ],
)
def test_bad_requests_are_refused_with_a_code_and_write_nothing(kwargs, code, field):
    store = f.make_store()
    order = f.make_order(store)
    arguments = {"actor": f.staff(store), "kind": "return_refund", "order_id": order.pk, "lines": [_line(order)],
                 "reason_code": "quality", **kwargs}

    with pytest.raises(ValidationFailed) as error:
        services.create_case(**arguments)

    assert (error.value.code, error.value.details.get("field")) == (code, field)
    assert Case.objects.count() == 0
    assert TimelineEntry.objects.count() == 0


def test_a_complaint_without_an_order_opens_for_the_buyer():
    store = f.make_store()
    buyer = f.make_buyer(store)

    case = services.create_case(actor=f.buyer_of(buyer), kind="complaint", subject="客服态度", description="...")

    assert (case.status, case.buyer_id, case.deadline_rule) == ("open", buyer.pk, "first_response.due")


def test_the_timeline_cannot_be_rewritten():
    store = f.make_store()
    buyer = f.make_buyer(store)
    case = services.create_case(actor=f.buyer_of(buyer), kind="inquiry", subject="发票")
    entry = TimelineEntry.objects.get(case=case)

    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        TimelineEntry.objects.filter(case=case).update(event="x")
    with pytest.raises(TypeError):
        TimelineEntry.objects.filter(case=case).delete()
