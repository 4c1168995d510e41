"""A token call to the API answers the same through the token API's short middleware chain as through
the whole chain: status, headers and body. Every other request takes the whole chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
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


@pytest.mark.parametrize(("headers", "language"), [
    ({}, "zh-hans"),
    ({"HTTP_ACCEPT_LANGUAGE": "en"}, "en"),
    ({"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}, "en"),
    ({"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}, "zh-hans"),
    ({"HTTP_ACCEPT_LANGUAGE": "fr-FR, de;q=0.8"}, "zh-hans"),  # neither offered: the default
    ({"HTTP_ACCEPT_LANGUAGE": "fr, en;q=0.3"}, "en"),
    ({"HTTP_ACCEPT_LANGUAGE": "*"}, "zh-hans"),
    ({"HTTP_ACCEPT_LANGUAGE": "en", "HTTP_COOKIE": "django_language=zh-hans"}, "zh-hans"),  # the cookie first
    ({"HTTP_COOKIE": "django_language=xx"}, "zh-hans"),  # a cookie for no language offered is ignored
])
def test_token_calls_get_the_language_they_ask_for_as_through_djangos_middleware(headers, language):
    """The short chain's ApiLocaleMiddleware against Django's LocaleMiddleware in the whole chain: the same
    status, headers (Content-Language, Vary) and body, in the language asked for, for an answer and for
    an error whose message is translated."""
    store = f.make_store()
    _, raw = create_api_token(store=store, name="languages", scopes=["cases:write"])
    factory = RequestFactory()
    full, short = WSGIHandler(), TokenApiWSGIHandler()
    for path in ("/api/v1/reason-codes", "/api/v1/cases/999999", "/api/v1/cases?colour=red"):
        answers = [_call(handler, factory.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}", **headers))
                   for handler in (short, full)]
        assert answers[0] == answers[1]
        assert ("Content-Language", language) in answers[0][1]
        assert any(name == "Vary" and "Accept-Language" in value for name, value in answers[0][1])


def test_no_url_carries_a_language_prefix():
    """ApiLocaleMiddleware stands in for Django's LocaleMiddleware only while no URL pattern is
    language-prefixed (i18n_patterns): with one, Django's middleware redirects and varies differently."""
    assert is_language_prefix_patterns_used(settings.ROOT_URLCONF) == (False, False)


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
    assert names == ["SecurityMiddleware", "ApiLocaleMiddleware", "CommonMiddleware", "XFrameOptionsMiddleware",
                     "IdempotencyMiddleware"]
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
