"""A token call to the API answers the same through the token API's short middleware chain as through
the whole chain: status, headers and body. Every other request takes the whole chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from aftersales.cases import services as case_services
from aftersales.core.handlers import AftersalesWSGIHandler, TokenApiWSGIHandler, is_token_api_call
from aftersales.stores.services import create_api_token
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # Outside a test the handlers close the database connection between requests; here it holds the
    # test's transaction (Django's own test client disconnects the same receivers).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _call(handler, request):
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, sorted(headers)

    body = b"".join(handler(request.environ, start_response))
    return seen["status"], seen["headers"], body


def test_token_calls_answer_alike_through_both_chains():
    store = f.make_store()
    orders = [f.make_order(store) for _ in range(3)]
    line = orders[2].lines.order_by("line_no").first()
    assert line is not None
    case = case_services.create_case(actor=f.staff(store), kind="return_refund", order_id=orders[2].pk,
                                     reason_code="quality", lines=[case_services.LineRequest(line.pk, 1)])
    _, raw = create_api_token(store=store, name="parity", scopes=["cases:write", "orders:read"])
    auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    factory = RequestFactory()
    full, short = WSGIHandler(), TokenApiWSGIHandler()
    reads = [
        lambda: factory.get("/api/v1/reason-codes", **auth),
        lambda: factory.get("/api/v1/cases", {"limit": 5}, **auth),
        lambda: factory.get("/api/v1/cases", {"colour": "red"}, **auth),  # 422, unknown parameter
        lambda: factory.get("/api/v1/cases/999999", **auth),  # 404 in the error shape
        lambda: factory.get("/api/v1/no-such-route", **auth),
        lambda: factory.get("/api/v1/cases", HTTP_AUTHORIZATION="Bearer wrong"),  # 401
    ]
    for build in reads:
        assert _call(short, build()) == _call(full, build())
    assert _call(short, factory.get(f"/api/v1/cases/{case.pk}", **auth)) == \
        _call(full, factory.get(f"/api/v1/cases/{case.pk}", **auth))

    def create(order, handler):
        line = order.lines.order_by("line_no").first()
        assert line is not None
        body = {"kind": "return_refund", "order_id": order.pk, "reason": "size",
                "lines": [{"order_line_id": line.pk, "quantity": 1}]}
        status, headers, answer = _call(handler, factory.post("/api/v1/cases", json.dumps(body),
                                                              content_type="application/json", **auth))
        return status, [name for name, _ in headers], json.loads(answer)

    one, other = create(orders[0], short), create(orders[1], full)
    assert one[0] == other[0] == "201 Created"
    assert one[1] == other[1]
    assert set(one[2]) == set(other[2]) and one[2]["status"] == other[2]["status"]


def test_only_token_calls_to_the_api_take_the_short_chain():
    factory = RequestFactory()
    assert is_token_api_call(factory.get("/api/v1/cases", HTTP_AUTHORIZATION="Bearer x").environ)
    assert is_token_api_call(factory.get("/api/v1/cases", HTTP_AUTHORIZATION="bearer x").environ)
    assert not is_token_api_call(factory.get("/api/v1/cases").environ)  # a browser's session call
    assert not is_token_api_call(factory.get("/console/", HTTP_AUTHORIZATION="Bearer x").environ)
    assert not is_token_api_call(factory.get("/api/v1/cases", HTTP_AUTHORIZATION="Basic eA==").environ)
    handler = AftersalesWSGIHandler()
    names = [type(m).__name__ for m in _chain(handler.token_api)]
    assert "SessionMiddleware" not in names and "CsrfViewMiddleware" not in names
    assert "IdempotencyMiddleware" in names and "LocaleMiddleware" in names and "SecurityMiddleware" in names
    full = [type(m).__name__ for m in _chain(handler)]
    assert "SessionMiddleware" in full and "CsrfViewMiddleware" in full


def _chain(handler):
    """The middleware instances of a handler's chain, outermost first."""
    found = []
    node = handler._middleware_chain
    while node is not None:
        instance = getattr(node, "__wrapped__", None) or node
        inner = getattr(instance, "get_response", None)
        if inner is None:
            break
        found.append(instance)
        node = inner
    return found
