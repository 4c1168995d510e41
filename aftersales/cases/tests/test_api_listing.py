"""The case list: every filter, cursor pages that are disjoint and complete, and a constant query count."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aftersales.cases import services
from aftersales.cases.models import Case
from aftersales.testing import factories as f
from aftersales.tests import session_caller, token_caller

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 11, 0, 0, tzinfo=dt.UTC)


def _open(actor, store, *, kind="return_refund", buyer=None, at=START):
    with time_machine.travel(at, tick=False):
        if kind in ("complaint", "inquiry"):
            buyer = buyer or f.make_buyer(store)
            return services.create_case(actor=actor, kind=kind, buyer_id=buyer.pk, subject="物流太慢")
        order = f.make_order(store, buyer)
        line = order.lines.order_by("line_no")[0]
        return services.create_case(actor=actor, kind=kind, order_id=order.pk, reason_code="quality",
                                    lines=[services.LineRequest(order_line_id=line.pk, quantity=1)])


def _ids(page):
    return [item["id"] for item in page["items"]]


@pytest.fixture
def store_with_cases():
    """Seven cases an hour apart, of several kinds, buyers and assignees, some moved on."""
    store = f.make_store()
    agent_user = f.make_staff(store, "agent")
    agent = f.actor_for_user(agent_user, store)
    buyer = f.make_buyer(store)
    kinds = ["return_refund", "refund_only", "exchange", "complaint", "return_refund", "inquiry", "repair"]
    cases = [_open(agent, store, kind=kind, buyer=buyer if i % 2 else None, at=START + dt.timedelta(hours=i))
             for i, kind in enumerate(kinds)]
    services.assign_case(actor=agent, case_id=cases[0].pk, assignee_id=agent_user.pk)
    services.assign_case(actor=agent, case_id=cases[4].pk, assignee_id=agent_user.pk)
    services.transition_case(actor=agent, case_id=cases[4].pk, action="reject", payload={"reason": "worn"})
    return {"store": store, "cases": cases, "agent_user": agent_user, "buyer": buyer, "api": token_caller(store)}


def test_the_list_is_newest_first(store_with_cases):
    cases = store_with_cases["cases"]
    assert _ids(store_with_cases["api"].get("/cases")) == [c.pk for c in reversed(cases)]


@pytest.mark.parametrize(("params", "indexes"), [
    ({"status": "rejected"}, [4]),
    ({"status": "open"}, [5, 3]),
    ({"kind": "return_refund"}, [4, 0]),
    ({"kind": "refund_only", "status": "pending_review"}, [1]),
    ({"unassigned": "true"}, [6, 5, 3, 2, 1]),
    ({"unassigned": "false"}, [6, 5, 4, 3, 2, 1, 0]),
    ({"created_after": "2026-11-11T03:00:00Z"}, [6, 5, 4, 3]),  # inclusive
    ({"created_before": "2026-11-11T03:00:00Z"}, [2, 1, 0]),  # exclusive
    ({"created_after": "2026-11-11T09:00:00+08:00", "created_before": "2026-11-11T11:00:00+08:00"}, [2, 1]),
])
def test_filters(store_with_cases, params, indexes):
    cases = store_with_cases["cases"]
    assert _ids(store_with_cases["api"].get("/cases", params)) == [cases[i].pk for i in indexes]


def test_filter_by_assignee(store_with_cases):
    cases = store_with_cases["cases"]
    page = store_with_cases["api"].get("/cases", {"assignee_id": store_with_cases["agent_user"].pk})
    assert _ids(page) == [cases[4].pk, cases[0].pk]


def test_filter_by_buyer(store_with_cases):
    cases = store_with_cases["cases"]
    page = store_with_cases["api"].get("/cases", {"buyer_id": store_with_cases["buyer"].pk})
    assert _ids(page) == [cases[5].pk, cases[3].pk, cases[1].pk]


def test_filter_by_order(store_with_cases):
    case = store_with_cases["cases"][2]
    page = store_with_cases["api"].get("/cases", {"order_id": case.order_id})
    assert _ids(page) == [case.pk]


def test_pages_are_disjoint_and_complete_even_when_cases_share_a_moment():
    store = f.make_store()
    agent = f.staff(store)
    # Eleven cases in the same microsecond: only the id can order them, and the cursor must carry it.
    made = [_open(agent, store, at=START) for _ in range(11)]
    api = token_caller(store)

    seen: list[int] = []
    pages = 0
    cursor = None
    while True:
        page = api.get("/cases", {"limit": 4, **({"cursor": cursor} if cursor else {})})
        pages += 1
        seen.extend(_ids(page))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted((c.pk for c in made), reverse=True)


def test_a_case_opened_while_paging_does_not_shift_the_pages():
    store = f.make_store()
    agent = f.staff(store)
    made = [_open(agent, store, at=START + dt.timedelta(minutes=i)) for i in range(4)]
    api = token_caller(store)

    first = api.get("/cases", {"limit": 2})
    _open(agent, store, at=START + dt.timedelta(hours=1))
    second = api.get("/cases", {"limit": 2, "cursor": first["next_cursor"]})

    assert _ids(first) + _ids(second) == [c.pk for c in reversed(made)]
    assert second["next_cursor"] is None


def test_a_full_last_page_has_no_next_cursor():
    store = f.make_store()
    agent = f.staff(store)
    for i in range(3):
        _open(agent, store, at=START + dt.timedelta(minutes=i))
    page = token_caller(store).get("/cases", {"limit": 3})
    assert (len(page["items"]), page["next_cursor"]) == (3, None)


def _queries_for_a_page(api, size: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        page = api.get("/cases", {"limit": size})
    assert len(page["items"]) == size
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_page():
    store = f.make_store()
    agent = f.staff(store)
    for i in range(25):
        _open(agent, store, at=START + dt.timedelta(minutes=i))
    api = token_caller(store)
    api.get("/cases")  # the first call of a token also records when it was last used

    small, large = _queries_for_a_page(api, 5), _queries_for_a_page(api, 25)

    assert small == large
    assert large <= 3  # the token, the page (with its reason codes joined in), nothing per row


def test_a_buyer_signed_in_lists_only_their_own_cases():
    store = f.make_store()
    agent = f.staff(store)
    buyer = f.make_buyer(store, with_login=True)
    mine = _open(agent, store, buyer=buyer)
    _open(agent, store)
    assert _ids(session_caller(buyer.user).get("/cases")) == [mine.pk]
    assert Case.objects.count() == 2


def test_a_list_row_shows_exactly_the_fields_of_the_case_as_its_own_page_does(store_with_cases):
    # The list answers from plain values without the schema's validation, so this holds its shape to
    # the detail's: same fields, same order, same values, rendered the same way.
    api = store_with_cases["api"]
    for row in api.get("/cases")["items"]:
        detail = api.get(f"/cases/{row['id']}")
        assert list(row) == [name for name in detail if name in row]
        assert row == {name: detail[name] for name in row}
    rejected = api.get("/cases", {"status": "rejected"})["items"][0]
    assert rejected["reason"] == "quality" and rejected["assignee_id"] == store_with_cases["agent_user"].pk
