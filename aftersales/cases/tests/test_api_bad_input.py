"""Bad input through the API: a 4xx with its documented code, and nothing written at all."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from aftersales.cases.models import Attachment, Case, CaseLine, Message, TimelineEntry
from aftersales.core.models import IdempotencyRecord
from aftersales.testing import factories as f
from aftersales.tests import token_caller

pytestmark = pytest.mark.django_db


def _written() -> dict[str, Any]:
    """Everything a case request could write, and the state of every case."""
    return {
        "rows": [m.objects.count() for m in (Case, CaseLine, TimelineEntry, Message, Attachment, IdempotencyRecord)],
        "cases": list(Case.objects.order_by("id").values_list("id", "status", "refund_amount", "offer_amount",
                                                              "updated_at")),
    }


@pytest.fixture
def shop():
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)
    line = order.lines.order_by("line_no")[0]  # two T-shirts at 99.00
    case = api.post("/cases", {"kind": "return_refund", "order_id": order.pk, "reason": "quality",
                               "lines": [{"order_line_id": line.pk, "quantity": 1}]}, expect=201)
    return {"api": api, "order": order, "line": line, "case_id": case["id"]}


def _create_body(shop, **overrides):
    return {"kind": "return_refund", "order_id": shop["order"].pk, "reason": "quality",
            "lines": [{"order_line_id": shop["line"].pk, "quantity": 1}], **overrides}


def _fields(error):
    return [(e["field"], e["type"]) for e in error["details"]["errors"]]


def _refused(shop, method, path, body=None, *, status, code, **kwargs):
    before = _written()
    # With an Idempotency-Key too: a refusal must not be remembered as the key's answer either.
    response = shop["api"].request(method, path, body, expect=status, headers={"Idempotency-Key": "bad-input"},
                                   **kwargs)
    payload = response.json()
    assert payload["code"] == code, payload
    assert set(payload) == {"code", "message", "details"}
    assert _written() == before
    return payload


@pytest.mark.parametrize(("overrides", "fields"), [
    ({"colour": "red"}, [("colour", "extra_forbidden")]),
    ({"lines": [{"order_line_id": 1, "quantity": 1, "sku": "x"}]}, [("lines.0.sku", "extra_forbidden")]),
    ({"order_id": "the big one"}, [("order_id", "int_parsing")]),
    ({"kind": "swap"}, [("kind", "literal_error")]),
    ({"lines": "all of them"}, [("lines", "list_type")]),
    ({"requested_amount": "-5.00"}, [("requested_amount", "greater_than_equal")]),
    ({"priority": 9}, [("priority", "less_than_equal")]),
])
def test_a_malformed_create_is_refused_field_by_field(shop, overrides, fields):
    error = _refused(shop, "POST", "/cases", _create_body(shop, **overrides), status=422, code="validation_error")
    assert _fields(error) == fields


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_below_one_is_refused(shop, quantity):
    body = _create_body(shop, lines=[{"order_line_id": shop["line"].pk, "quantity": quantity}])
    error = _refused(shop, "POST", "/cases", body, status=422, code="validation_error")
    assert _fields(error) == [("lines.0.quantity", "greater_than_equal")]


def test_more_than_is_left_on_the_line_is_refused(shop):
    body = _create_body(shop, lines=[{"order_line_id": shop["line"].pk, "quantity": 2}])
    error = _refused(shop, "POST", "/cases", body, status=422, code="quantity_exceeds_available")
    # One of the two is already claimed by the case the fixture opened.
    assert error["details"] == {"field": "lines[0].quantity", "available": 1, "requested": 2}


def test_a_line_of_another_order_is_refused(shop):
    other = f.make_order(shop["order"].store)
    body = _create_body(shop, lines=[{"order_line_id": other.lines.order_by("line_no")[0].pk, "quantity": 1}])
    _refused(shop, "POST", "/cases", body, status=422, code="line_not_in_order")


def test_a_body_that_is_not_json_is_refused(shop):
    before = _written()
    response = shop["api"].client.post("/api/v1/cases", data="{kind: return", content_type="application/json",
                                       headers=shop["api"].headers)
    assert (response.status_code, response.json()["code"]) == (400, "malformed_request")
    assert _written() == before


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"amount": "-1.00"}, 422, "invalid_amount"),
    ({"amount": "99.01"}, 422, "amount_exceeds_paid"),
    ({"amount": "1.005"}, 422, "validation_error"),
    ({"amount": "lots"}, 422, "validation_error"),
    ({"ammount": "10.00"}, 422, "validation_error"),
    ({}, 422, "field_required"),
])
def test_a_bad_counter_offer_changes_nothing(shop, body, status, code):
    _refused(shop, "POST", f"/cases/{shop['case_id']}/actions/counter_offer", body, status=status, code=code)


def test_a_refund_above_what_was_paid_is_refused(shop):
    api, cid = shop["api"], shop["case_id"]
    api.act(cid, "counter_offer", amount="10.00")
    api.act(cid, "accept_offer")

    error = _refused(shop, "POST", f"/cases/{cid}/actions/refund", {"amount": "150.00"}, status=422,
                     code="amount_exceeds_paid")
    assert error["details"] == {"field": "amount", "maximum": "99.00"}


def test_an_unknown_action_is_refused(shop):
    error = _refused(shop, "POST", f"/cases/{shop['case_id']}/actions/teleport", {}, status=422,
                     code="validation_error")
    assert _fields(error) == [("action", "literal_error")]


def test_an_outcome_that_is_not_one_of_the_actions_is_refused(shop):
    api, cid = shop["api"], shop["case_id"]
    for action in ("approve", "mark_received", "start_inspection"):
        api.act(cid, action)
    error = _refused(shop, "POST", f"/cases/{cid}/actions/record_inspection", {"outcome": "so-so"}, status=422,
                     code="invalid_outcome")
    assert error["details"] == {"field": "outcome", "outcomes": ["failed", "passed"]}


@pytest.mark.parametrize(("path", "body", "fields"), [
    ("messages", {"body": ""}, [("body", "string_too_short")]),
    ("messages", {"body": "hi", "visibility": "secret"}, [("visibility", "literal_error")]),
    ("rating", {"rating": 6}, [("rating", "less_than_equal")]),
    ("priority", {"priority": "high"}, [("priority", "int_parsing")]),
    ("assign", {}, [("assignee_id", "missing")]),
])
def test_bad_bodies_on_the_other_case_routes(shop, path, body, fields):
    error = _refused(shop, "POST", f"/cases/{shop['case_id']}/{path}", body, status=422, code="validation_error")
    assert _fields(error) == fields


def test_a_case_id_that_is_not_a_number_is_refused(shop):
    error = _refused(shop, "GET", "/cases/abc", status=422, code="validation_error")
    assert _fields(error) == [("case_id", "int_parsing")]


# --- uploads ---------------------------------------------------------------------------------------------

def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(shop, name, content, *, status, code=None):
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    before = _written()
    response = shop["api"].request("POST", f"/cases/{shop['case_id']}/attachments", data={"file": upload},
                                   expect=status)
    if code is not None:
        assert response.json()["code"] == code
        assert _written() == before
    return response.json()


def _stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_png_signature_in_front_of_a_script_is_corrupt(shop, settings):
    script = b"\x89PNG\r\n\x1a\n" + b"<script>fetch('/api/v1/cases').then(r => r.text())</script>" * 4
    _upload(shop, "photo.png", script, status=422, code="file_corrupt")
    assert _stored_files(settings) == []


def test_a_text_file_named_jpg_is_not_an_allowed_type(shop, settings):
    error = _upload(shop, "photo.jpg", "这不是图片 / this is not a picture\n".encode(), status=422,
                    code="file_type_not_allowed")
    assert error["details"]["allowed"] == ["image/jpeg", "image/png", "image/webp", "application/pdf"]
    assert _stored_files(settings) == []


def test_a_file_over_the_limit_is_too_large(shop, settings):
    content = _png()
    settings.AFTERSALES_MAX_ATTACHMENT_BYTES = len(content) - 1
    error = _upload(shop, "photo.png", content, status=422, code="file_too_large")
    assert error["details"] == {"field": "file", "max_bytes": len(content) - 1, "size": len(content)}
    assert _stored_files(settings) == []


def test_a_real_png_is_kept_under_our_own_name(shop, settings):
    content = _png()
    stored = _upload(shop, "../../etc/passwd.png", content, status=201)
    # Django keeps only the last part of a client's file name; the stored name is the content's hash.
    assert (stored["content_type"], stored["size"], stored["original_name"]) == ("image/png", len(content),
                                                                                  "passwd.png")
    name = str(Attachment.objects.get().file.name)
    assert _stored_files(settings) == [name]
    assert name.endswith(f"{stored['sha256'][:32]}.png")


def test_an_upload_without_a_file_is_refused(shop):
    before = _written()
    response = shop["api"].request("POST", f"/cases/{shop['case_id']}/attachments", data={}, expect=422)
    assert _fields(response.json()) == [("file", "missing")]
    assert _written() == before


# --- the list ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "code", "field"), [
    ({"cursor": "not-a-cursor"}, "invalid_cursor", "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"2026-11-01T10:00:00|5").decode()}, "invalid_cursor", "cursor"),  # no zone
    ({"limit": 101}, "invalid_limit", "limit"),
    ({"limit": 0}, "invalid_limit", "limit"),
    ({"stauts": "refunded"}, "unknown_parameter", "stauts"),
    ({"unassigned": "true", "assignee_id": 3}, "conflicting_filters", "unassigned"),
])
def test_bad_list_parameters_are_refused(shop, params, code, field):
    response = shop["api"].request("GET", "/cases", params, expect=422)
    assert (response.json()["code"], response.json()["details"].get("field")) == (code, field)


@pytest.mark.parametrize(("params", "fields"), [
    ({"status": "lost"}, [("status", "literal_error")]),
    ({"created_after": "2026-11-01T10:00:00"}, [("created_after", "timezone_aware")]),
    ({"limit": "many"}, [("limit", "int_parsing")]),
])
def test_list_parameters_of_the_wrong_shape_are_refused(shop, params, fields):
    response = shop["api"].request("GET", "/cases", params, expect=422)
    assert _fields(response.json()) == fields
