"""No route of the API lets one store see or touch another's data.

The routes are read from the URL patterns themselves, not listed by hand: a route added tomorrow is
checked tomorrow. A path parameter this test cannot fill with another store's object fails the test
until someone teaches it that parameter (add the object to `_objects_of`), so a new kind of object
cannot slip through unchecked.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from aftersales.api import api
from aftersales.cases import services as case_services
from aftersales.cases.models import ReasonCode
from aftersales.stores.models import Store
from aftersales.testing import factories as f
from aftersales.tests import ApiCaller, session_caller, token_caller

pytestmark = pytest.mark.django_db

# Parameters that name no object: a fixed value is enough, the object id beside them is what is tested.
NOT_OBJECT_IDS = {"action": "approve"}
DOCUMENTATION_ROUTES = {"openapi-json", "openapi-view", "api-root"}
SECRET = "BSEC"  # in every text of store B's objects; it must never appear in an answer to store A


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class World:
    store: Store
    ids: dict[str, Any]  # path or query parameter name -> the id of an object of this store
    buyer: Any
    admin: Any


def _world(marker: str, *, prefix: str) -> World:
    store = f.make_store(case_number_prefix=prefix, name=f"{marker} store")
    buyer = f.make_buyer(store, with_login=True)
    buyer.name = f"{marker} buyer"
    buyer.save(update_fields=["name"])
    order = f.make_order(store, buyer)
    order.external_id = f"{marker}-order"
    order.save(update_fields=["external_id"])
    admin = f.make_staff(store, "admin")
    ReasonCode.objects.create(store=store, code=f"{marker.lower()}-reason", category="quality",
                              label_zh=f"{marker} 原因", label_en=f"{marker} reason")
    actor = f.actor_for_user(admin, store)
    case = case_services.create_case(
        actor=actor, kind="return_refund", order_id=order.pk, reason_code="quality", subject=f"{marker} subject",
        lines=[case_services.LineRequest(order_line_id=order.lines.order_by("line_no")[0].pk, quantity=1)],
    )
    case_services.assign_case(actor=actor, case_id=case.pk, assignee_id=admin.pk)
    message = case_services.post_message(actor=actor, case_id=case.pk, body=f"{marker} message")
    attachment = case_services.add_attachment(actor=actor, case_id=case.pk, content=png(), filename=f"{marker}.png")
    ids = {"case_id": case.pk, "order_id": order.pk, "buyer_id": buyer.pk, "assignee_id": admin.pk,
           "message_id": message.pk, "attachment_id": attachment.pk,
           # The shop's own ids, as the orders mirror is searched by them.
           "external_id": order.external_id, "buyer_external_id": buyer.external_id}
    return World(store=store, ids=ids, buyer=buyer, admin=admin)


@pytest.fixture
def worlds() -> tuple[World, World]:
    return _world("AMARK", prefix="AA"), _world(SECRET, prefix=SECRET)


CALLERS = ["token", "staff", "buyer"]


def _caller(kind: str, world: World) -> ApiCaller:
    if kind == "token":
        return token_caller(world.store, ["cases:write", "refunds:write", "orders:read", "orders:write",
                                          "policy:evaluate"])
    if kind == "staff":
        return session_caller(world.admin)
    return session_caller(world.buyer.user)


# --- the routes, as Django knows them ------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    template: str  # "/api/v1/cases/<case_id>"
    params: tuple[str, ...]

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.template)

    def fill(self, values: dict[str, Any]) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), self.template)


def api_routes() -> list[Route]:
    patterns, _, _ = api.urls
    seen: dict[str, Route] = {}
    for pattern in patterns:
        if getattr(pattern, "name", None) in DOCUMENTATION_ROUTES:
            continue
        template = f"/api/{pattern.pattern}"
        seen.setdefault(template, Route(template, tuple(pattern.pattern.converters)))
    return list(seen.values())


def methods_of(caller: ApiCaller, route: Route, values: dict[str, Any]) -> list[str]:
    # A method no route serves is answered 405 with the ones it does serve, before any authentication.
    response = caller.client.generic("TRACE", route.fill(values))
    assert response.status_code == 405, route
    return sorted(m.strip() for m in response["Allow"].split(","))


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The smallest value the schema accepts, so a request passes validation and reaches the handler."""
    schema = _resolve(schema, spec)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, spec).get("type") != "null"]
            return example(options[0], spec)
    if "allOf" in schema:
        return example(schema["allOf"][0], spec)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return {name: example(prop, spec) for name, prop in schema.get("properties", {}).items()
                if name in schema.get("required", [])}
    if kind == "array":
        return [example(schema["items"], spec) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-01T10:00:00+08:00"
        return "x" * max(1, schema.get("minLength", 1))
    raise AssertionError(f"no example for schema {schema}: extend example()")


def send(caller: ApiCaller, route: Route, method: str, values: dict[str, Any], spec: dict[str, Any]) -> Any:
    url = route.fill(values)
    operation = spec["paths"][route.openapi_path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        form = _resolve(content["multipart/form-data"]["schema"], spec)
        data: dict[str, Any] = {}
        for name, prop in form.get("properties", {}).items():
            prop = _resolve(prop, spec)
            if prop.get("format") == "binary":
                data[name] = SimpleUploadedFile("evidence.png", png(), content_type="image/png")
            elif name in form.get("required", []):
                data[name] = example(prop, spec)
        return caller.request(method, url, data=data)
    body = example(content["application/json"]["schema"], spec) if "application/json" in content else None
    return caller.request(method, url, body)


# --- the tests -------------------------------------------------------------------------------------------

def test_every_path_parameter_of_every_route_is_known_here(worlds):
    _, theirs = worlds
    routes = api_routes()
    unknown = {(r.template, p) for r in routes for p in r.params if p not in theirs.ids and p not in NOT_OBJECT_IDS}
    assert unknown == set(), "teach _world() to build an object for these parameters"
    with_ids = [r.template for r in routes if any(p in theirs.ids for p in r.params)]
    assert "/api/v1/cases/<case_id>" in with_ids
    assert "/api/v1/orders/<order_id>" in with_ids


@pytest.mark.parametrize("caller_kind", CALLERS)
def test_another_stores_object_is_404_on_every_route_and_method(worlds, caller_kind):
    ours, theirs = worlds
    caller = _caller(caller_kind, ours)
    spec = api.get_openapi_schema()
    checked = []
    for route in api_routes():
        if not any(p in theirs.ids for p in route.params):
            continue
        for method in methods_of(caller, route, {**NOT_OBJECT_IDS, **ours.ids}):
            response = send(caller, route, method, {**NOT_OBJECT_IDS, **theirs.ids}, spec)
            assert (response.status_code, response.json()["code"]) == (404, "not_found"), (method, route.template)
            assert SECRET not in response.content.decode()
            # The same call on our own object is not a 404, so the 404 above is the store boundary speaking.
            own = send(caller, route, method, {**NOT_OBJECT_IDS, **ours.ids}, spec)
            assert own.status_code != 404, (method, route.template, own.content[:500])
            # Nor does anything reached through our own object bring theirs along (a case's attachments...).
            assert SECRET not in own.content.decode(), (method, route.template)
            checked.append(f"{method} {route.template}")
    assert len(checked) >= 11, checked  # ten case routes and the order


@pytest.mark.parametrize("caller_kind", CALLERS)
def test_lists_never_include_another_stores_rows(worlds, caller_kind):
    ours, theirs = worlds
    caller = _caller(caller_kind, ours)
    spec = api.get_openapi_schema()
    lists = [r for r in api_routes() if not r.params and "get" in spec["paths"][r.openapi_path]]
    assert {r.template for r in lists} >= {"/api/v1/cases", "/api/v1/orders", "/api/v1/reason-codes"}
    for route in lists:
        plain = caller.request("GET", route.template, {}, expect=200)
        assert SECRET not in plain.content.decode(), route.template
        # Filtering by another store's ids finds nothing of theirs either.
        for parameter in spec["paths"][route.openapi_path]["get"].get("parameters", []):
            name = parameter["name"]
            if not name.endswith("_id"):
                continue
            assert name in theirs.ids, f"{route.template}?{name}: teach _world() to build one"
            filtered = caller.request("GET", route.template, {name: theirs.ids[name]}, expect=200)
            assert SECRET not in filtered.content.decode(), (route.template, name)
            assert filtered.json()["items"] == [], (route.template, name)


def test_our_own_rows_are_listed(worlds):
    ours, _ = worlds
    caller = _caller("token", ours)
    cases = caller.get("/cases")["items"]
    assert [(c["id"], c["subject"]) for c in cases] == [(ours.ids["case_id"], "AMARK subject")]
    orders = caller.get("/orders")["items"]
    assert [o["id"] for o in orders] == [ours.ids["order_id"]]
    assert "amark-reason" in [r["code"] for r in caller.get("/reason-codes")]
