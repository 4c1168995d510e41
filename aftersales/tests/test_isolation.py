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
from aftersales.cases.models import Case, ReasonCode
from aftersales.logistics import services as logistics_services
from aftersales.logistics.tests.helpers import warehouse
from aftersales.notifications import services as notification_services
from aftersales.notifications.models import Delivery, OutboxEvent
from aftersales.orders.models import Order
from aftersales.refunds import services as refund_services
from aftersales.refunds.tests.helpers import charged_exchange, refunding_case
from aftersales.repairs import services as repair_services
from aftersales.stores.models import Store
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f
from aftersales.tests import ApiCaller, session_caller, token_caller
from aftersales.warehouse import services as warehouse_services

pytestmark = pytest.mark.django_db

# Parameters that name no object: a fixed value is enough, the object id beside them is what is tested.
# Carrier webhooks are named by store slug and answer to a per-store signature, not to a token or a
# session: their store boundary is the signature, tested with the logistics app.
# The refund gateways' callbacks likewise answer to the gateway's signature.
NOT_OBJECT_IDS = {"action": "approve", "store_slug": "no-such-store", "gateway": "sandbox"}
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
           "message_id": message.pk, "attachment_id": attachment.pk, **_goods_objects(store, buyer, actor, marker),
           # The shop's own ids, as the orders mirror is searched by them.
           "external_id": order.external_id, "buyer_external_id": buyer.external_id}
    return World(store=store, ids=ids, buyer=buyer, admin=admin)


def _goods_objects(store: Store, buyer: Any, actor: Any, marker: str) -> dict[str, Any]:
    """A return on its way (a shipment) and a device in repair (a repair order), both the buyer's own."""
    depot = warehouse(store, name=f"{marker} warehouse")
    digits = "1" if marker == SECRET else "2"

    def approved(kind: str) -> Any:
        order = f.make_order(store, buyer)
        case = case_services.create_case(
            actor=actor, kind=kind, order_id=order.pk, reason_code="quality",
            lines=[case_services.LineRequest(order_line_id=order.lines.order_by("line_no")[1].pk, quantity=1)])
        return case_services.transition_case(actor=actor, case_id=case.pk, action="approve")

    returning = approved("return_refund")
    shipment = logistics_services.ship_return(actor=f.buyer_of(buyer), case_id=returning.pk, carrier="SF",
                                              tracking_number=f"SF{digits * 13}")
    repair = approved("repair")
    warehouse_services.receive(actor=actor, code=repair.number)
    centre = repair_services.create_service_centre(actor=actor, name=f"{marker} centre", kind="own")
    repair_order = repair_services.open_repair_order(actor=actor, case_id=repair.pk, service_centre_id=centre.pk,
                                                     fault_code="no_power")
    refund = refund_services.request_refund(actor=system_actor(store.pk),
                                            case_id=refunding_case(store, buyer=buyer).pk)
    item = refund.items.order_by("pk").first()
    assert item is not None
    return {"shipment_id": shipment.pk, "repair_order_id": repair_order.pk, "refund_id": refund.pk,
            "item_id": item.pk, "charge_id": charged_exchange(store, buyer).pk, "warehouse_id": depot.pk, "sku": returning.lines.get().order_line.sku, **_webhook_objects(store, actor)}


def _webhook_objects(store: Store, actor: Any) -> dict[str, Any]:
    """A webhook endpoint and one delivery to it of an event this store's cases produced."""
    endpoint = notification_services.create_endpoint(actor=actor, url="http://127.0.0.1:9/hook")
    for event in OutboxEvent.objects.filter(store_id=store.pk, dispatched_at__isnull=True):
        notification_services.dispatch_event(event_id=event.pk)
    delivery = Delivery.objects.filter(store_id=store.pk, endpoint=endpoint).first()
    assert delivery is not None
    return {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk}


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
    form_type = next((t for t in ("multipart/form-data", "application/x-www-form-urlencoded") if t in content), None)
    if form_type is not None:
        # Form fields go as a multipart body either way: Django parses both into the same form data.
        form = _resolve(content[form_type]["schema"], spec)
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
    calls = [(route, method) for route in api_routes() if any(p in theirs.ids for p in route.params)
             for method in methods_of(caller, route, {**NOT_OBJECT_IDS, **ours.ids})]
    # Every DELETE after everything else: it removes our own object, which other routes still need.
    for route, method in sorted(calls, key=lambda call: call[1] == "DELETE"):
        response = send(caller, route, method, {**NOT_OBJECT_IDS, **theirs.ids}, spec)
        where = (method, route.template, response.content[:300])
        # Another store's object answers exactly as an object that does not exist at all.
        missing = send(caller, route, method, {**NOT_OBJECT_IDS, **dict.fromkeys(theirs.ids, 987654321)}, spec)
        assert (response.status_code, response.json()) == (missing.status_code, missing.json()), where
        assert response.status_code in (403, 404), where
        assert SECRET.encode() not in response.content
        own = send(caller, route, method, {**NOT_OBJECT_IDS, **ours.ids}, spec)
        if response.status_code == 403:
            # The caller may not use this route at all (a buyer and the webhook settings): the role
            # answers, before any store's object is looked at.
            assert own.status_code == 403, where
        else:
            # Our own object does not stop at the same door, so the 404 is the store boundary
            # speaking. (Ours may lack what the route shows, e.g. no inspection yet: then it is a
            # 404 about that, not about the object the path names.)
            assert own.status_code != 404 or own.json()["message"] != response.json()["message"], (
                method, route.template, own.content[:500])
        # Nor does anything reached through our own object bring theirs along (a case's attachments...).
        assert SECRET.encode() not in own.content, (method, route.template)
        checked.append(f"{method} {route.template}")
    assert len(checked) >= 40, checked  # cases, orders, SLA, logistics, warehouse, repairs, webhooks


@pytest.mark.parametrize("caller_kind", CALLERS)
def test_lists_never_include_another_stores_rows(worlds, caller_kind):
    ours, theirs = worlds
    caller = _caller(caller_kind, ours)
    spec = api.get_openapi_schema()
    lists = [r for r in api_routes() if not r.params and "get" in spec["paths"][r.openapi_path]]
    assert {r.template for r in lists} >= {"/api/v1/cases", "/api/v1/orders", "/api/v1/reason-codes"}
    for route in lists:
        parameters = spec["paths"][route.openapi_path]["get"].get("parameters", [])
        required = {p["name"]: example(p["schema"], spec) for p in parameters if p.get("required")}
        if "until" in required:  # a period needs its end after its start
            required["until"] = "2027-01-01T00:00:00+08:00"
        plain = caller.request("GET", route.template, required)
        if plain.status_code == 403:  # not for this caller's role at all (a buyer and the SLA report): nothing shown
            assert plain.json()["code"] == "permission_denied", route.template
            continue
        assert plain.status_code == 200, (route.template, plain.content[:300])
        assert SECRET not in plain.content.decode(), route.template
        # Filtering by another store's ids finds nothing of theirs either.
        for parameter in spec["paths"][route.openapi_path]["get"].get("parameters", []):
            name = parameter["name"]
            if not name.endswith("_id"):
                continue
            assert name in theirs.ids, f"{route.template}?{name}: teach _world() to build one"
            filtered = caller.request("GET", route.template, {**required, name: theirs.ids[name]}, expect=200)
            assert SECRET not in filtered.content.decode(), (route.template, name)
            assert filtered.json()["items"] == [], (route.template, name)


def test_our_own_rows_are_listed(worlds):
    ours, _ = worlds
    caller = _caller("token", ours)
    cases = caller.get("/cases")["items"]
    assert sorted(c["id"] for c in cases) == sorted(Case.objects.filter(store=ours.store).values_list("pk", flat=True))
    assert (ours.ids["case_id"], "AMARK subject") in [(c["id"], c["subject"]) for c in cases]
    orders = caller.get("/orders")["items"]
    assert sorted(o["id"] for o in orders) == sorted(Order.objects.filter(store=ours.store).values_list("pk", flat=True))
    assert ours.ids["order_id"] in [o["id"] for o in orders]
    assert "amark-reason" in [r["code"] for r in caller.get("/reason-codes")]
