"""The OpenAPI document is served, and says what the API really does: every action, every status, the
error shape on every case route, the token, and the Idempotency-Key on the writes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from aftersales.cases.states import Action, Kind, Status
from aftersales.testing import factories as f
from aftersales.tests import token_caller

pytestmark = pytest.mark.django_db


@pytest.fixture
def spec() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    return response.json()


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)


def test_the_docs_page_is_served_without_signing_in():
    response = Client().get("/api/docs")
    assert response.status_code == 200
    assert b"/api/openapi.json" in response.content


def test_every_action_of_the_tables_is_in_the_action_enum(spec):
    operation = spec["paths"]["/api/v1/cases/{case_id}/actions/{action}"]["post"]
    actions = {value for name, value in vars(Action).items() if name.isupper()}
    assert set(_parameter(operation, "action")["schema"]["enum"]) == actions
    assert len(actions) == 31


def test_every_status_and_kind_is_in_the_list_filters(spec):
    operation = spec["paths"]["/api/v1/cases"]["get"]
    assert set(_parameter(operation, "status")["schema"]["anyOf"][0]["enum"]) == set(Status.LABELS)
    assert set(_parameter(operation, "kind")["schema"]["anyOf"][0]["enum"]) == set(Kind.ALL)
    assert _parameter(operation, "limit")["schema"] | {"title": None} == {
        "default": 25, "minimum": 1, "maximum": 100, "type": "integer", "title": None}


def test_the_error_shape_is_a_schema(spec):
    schema = spec["components"]["schemas"]["ErrorOut"]
    assert schema["required"] == ["code", "message", "details"]
    assert {name: prop["type"] for name, prop in schema["properties"].items()} == {
        "code": "string", "message": "string", "details": "object"}


def test_every_case_route_documents_the_error_shape_for_each_failure(spec):
    case_operations = [(path, method, operation) for path, item in spec["paths"].items()
                       if path.startswith("/api/v1/cases") for method, operation in item.items()]
    assert len(case_operations) >= 12  # the case routes, and those other apps hang under a case
    for path, method, operation in case_operations:
        for status in ("401", "403", "404", "409", "422"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)


def test_every_case_write_documents_the_idempotency_key(spec):
    posts = [(path, item["post"]) for path, item in spec["paths"].items()
             if path.startswith("/api/v1/cases") and "post" in item]
    assert len(posts) >= 7
    for path, operation in posts:
        header = _parameter(operation, "Idempotency-Key")
        assert (header["in"], header["required"]) == ("header", False), path


def test_the_bearer_token_is_the_documented_security(spec):
    assert spec["components"]["securitySchemes"] == {"ActorAuth": {"type": "http", "scheme": "bearer"}}
    assert spec["paths"]["/api/v1/cases"]["get"]["security"] == [{"ActorAuth": []}]


def test_a_real_conflict_has_the_documented_shape(spec):
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)
    case = api.post("/cases", {"kind": "refund_only", "order_id": order.pk, "reason": "price_drop",
                               "lines": [{"order_line_id": order.lines.order_by("line_no")[0].pk, "quantity": 1}]},
                    expect=201)

    answer = api.act(case["id"], "reship", expect=409)

    documented = spec["components"]["schemas"]["ErrorOut"]
    assert set(answer) == set(documented["required"])
    assert set(answer["details"]) == set(documented["properties"]["details"]["examples"][0])


@pytest.mark.django_db
def test_an_unknown_api_path_answers_with_the_error_shape(client):
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "no such API endpoint",
                               "details": {"path": "/api/v1/no-such-thing"}}
