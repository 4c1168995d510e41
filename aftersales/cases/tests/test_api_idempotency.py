"""Idempotency-Key on the POSTs that create something or move money: retried, they act once."""

from __future__ import annotations

import io
import json
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from PIL import Image

from aftersales.cases.models import Attachment, Case, Message, TimelineEntry
from aftersales.core.models import IdempotencyRecord
from aftersales.testing import factories as f
from aftersales.tests import ApiCaller, token_caller

pytestmark = pytest.mark.django_db


def _create_body(order, quantity=1):
    return {"kind": "return_refund", "order_id": order.pk, "reason": "quality",
            "lines": [{"order_line_id": order.lines.order_by("line_no")[0].pk, "quantity": quantity}]}


@pytest.fixture
def shop():
    store = f.make_store()
    return {"store": store, "order": f.make_order(store), "api": token_caller(store)}


def test_a_retried_create_answers_the_same_and_opens_one_case(shop):
    api, body = shop["api"], _create_body(shop["order"])

    first = api.request("POST", "/cases", body, expect=201, headers={"Idempotency-Key": "create-1"})
    again = api.request("POST", "/cases", body, expect=201, headers={"Idempotency-Key": "create-1"})

    assert again.content == first.content
    assert (first.get("Idempotent-Replayed"), again["Idempotent-Replayed"]) == (None, "true")
    assert Case.objects.count() == 1
    assert TimelineEntry.objects.count() == 2


def test_the_same_request_encoded_differently_is_still_the_same_request(shop):
    api, body = shop["api"], _create_body(shop["order"])
    api.request("POST", "/cases", body, expect=201, headers={"Idempotency-Key": "k"})

    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    response = api.client.post("/api/v1/cases", data=reordered, content_type="application/json",
                               headers={**api.headers, "Idempotency-Key": "k"})

    assert (response.status_code, response["Idempotent-Replayed"]) == (201, "true")
    assert Case.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(shop):
    api = shop["api"]
    api.post("/cases", _create_body(shop["order"], 1), key="k", expect=201)
    rows = (Case.objects.count(), TimelineEntry.objects.count())

    refused = api.post("/cases", _create_body(shop["order"], 2), key="k", expect=422)

    assert refused == {"code": "idempotency_key_reused",
                       "message": "this Idempotency-Key was used with a different request",
                       "details": {"header": "Idempotency-Key"}}
    assert (Case.objects.count(), TimelineEntry.objects.count()) == rows


def test_the_same_key_on_another_route_is_refused(shop):
    api = shop["api"]
    cid = api.post("/cases", _create_body(shop["order"]), key="k", expect=201)["id"]
    assert api.post(f"/cases/{cid}/messages", {"body": "hello"}, key="k", expect=422)["code"] == "idempotency_key_reused"
    assert Message.objects.count() == 0


def test_a_retried_refund_pays_once(shop):
    api = shop["api"]
    cid = api.post("/cases", _create_body(shop["order"]), expect=201)["id"]
    api.act(cid, "counter_offer", amount="20.00")
    api.act(cid, "accept_offer")

    first = api.post(f"/cases/{cid}/actions/refund", {}, key="refund-1")
    again = api.request("POST", f"/cases/{cid}/actions/refund", {}, expect=200,
                        headers={"Idempotency-Key": "refund-1"})

    assert again.json() == first
    assert again["Idempotent-Replayed"] == "true"
    assert (first["status"], first["refund_amount"]) == ("refunded", "20.00")
    assert TimelineEntry.objects.filter(case_id=cid, event="refund").count() == 1
    # Without the key, the table still refuses a second refund: the case is no longer refunding.
    assert api.act(cid, "refund", expect=409)["code"] == "action_not_allowed"


def test_a_retried_message_is_posted_once(shop):
    api = shop["api"]
    cid = api.post("/cases", _create_body(shop["order"]), expect=201)["id"]
    first = api.post(f"/cases/{cid}/messages", {"body": "已收到"}, key="m1", expect=201)
    assert api.post(f"/cases/{cid}/messages", {"body": "已收到"}, key="m1", expect=201) == first
    assert Message.objects.count() == 1


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 3), (9, 9, 9)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_retried_upload_is_stored_once_though_the_multipart_boundary_changes(shop):
    api = shop["api"]
    cid = api.post("/cases", _create_body(shop["order"]), expect=201)["id"]
    content = _png()
    answers = []
    for boundary in ("first-boundary", "second-boundary"):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        response = api.client.post(f"/api/v1/cases/{cid}/attachments", data=body,
                                   content_type=f"multipart/form-data; boundary={boundary}",
                                   headers={**api.headers, "Idempotency-Key": "upload-1"})
        assert response.status_code == 201, response.content
        answers.append(response)

    assert answers[1].content == answers[0].content
    assert answers[1]["Idempotent-Replayed"] == "true"
    assert Attachment.objects.count() == 1


def test_a_different_file_under_the_same_key_is_refused(shop):
    api = shop["api"]
    cid = api.post("/cases", _create_body(shop["order"]), expect=201)["id"]
    api.request("POST", f"/cases/{cid}/attachments", expect=201, headers={"Idempotency-Key": "u"},
                data={"file": SimpleUploadedFile("a.png", _png())})
    other = io.BytesIO()
    Image.new("RGB", (5, 5), (1, 2, 3)).save(other, "PNG")
    refused = api.request("POST", f"/cases/{cid}/attachments", expect=422, headers={"Idempotency-Key": "u"},
                          data={"file": SimpleUploadedFile("a.png", other.getvalue())})
    assert refused.json()["code"] == "idempotency_key_reused"
    assert Attachment.objects.count() == 1


def test_a_refused_request_does_not_use_up_its_key(shop):
    api = shop["api"]
    assert api.post("/cases", _create_body(shop["order"], 5), key="k", expect=422)["code"] == "quantity_exceeds_available"
    assert api.post("/cases", _create_body(shop["order"], 1), key="k", expect=201)["status"] == "pending_review"
    assert Case.objects.count() == 1


def test_keys_belong_to_their_caller(shop):
    other_token = token_caller(shop["store"])
    body = _create_body(shop["order"])
    shop["api"].post("/cases", body, key="k", expect=201)

    # Another caller's "k" is another key: this one is not a replay, and here it asks for a second unit.
    second = other_token.request("POST", "/cases", _create_body(shop["order"], 1), expect=201,
                                 headers={"Idempotency-Key": "k"})
    assert second.get("Idempotent-Replayed") is None
    assert Case.objects.count() == 2


def test_a_forged_token_with_a_real_prefix_cannot_read_a_stored_answer(shop):
    api = shop["api"]
    body = _create_body(shop["order"])
    api.post("/cases", body, key="k", expect=201)
    prefix = api.headers["Authorization"].split("_")[1]

    forged = ApiCaller(Client(), Authorization=f"Bearer as_{prefix}_guessed-secret")
    assert forged.post("/cases", body, key="k", expect=401)["code"] == "not_authenticated"


def test_a_key_longer_than_200_characters_is_refused(shop):
    refused = shop["api"].post("/cases", _create_body(shop["order"]), key="k" * 201, expect=400)
    assert refused["code"] == "invalid_idempotency_key"
    assert Case.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_eight_simultaneous_creates_with_one_key_open_one_case():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time (and the test database is in memory): nothing to race")
    store = f.make_store()
    order = f.make_order(store)
    api = token_caller(store)
    # The whole line: a duplicate that did the work instead of waiting for the first would be refused
    # for want of quantity rather than answered with the first's case.
    body = json.dumps(_create_body(order, quantity=2))
    barrier = threading.Barrier(8)
    results: list[tuple[int, str | None, bytes]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            response = client.post("/api/v1/cases", data=body, content_type="application/json",
                                   headers={**api.headers, "Idempotency-Key": "double-11"})
            results.append((response.status_code, response.get("Idempotent-Replayed"), response.content))
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted((status, replayed or "") for status, replayed, _ in results) == [(201, "")] + [(201, "true")] * 7
    assert len({content for _, _, content in results}) == 1
    assert Case.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_a_person_working_in_two_stores_has_separate_keys_in_each():
    first, second = f.make_store(), f.make_store()
    user = f.make_staff(first, "agent")
    f.store_services.add_member(store=second, user=user, role="agent")
    client = Client()
    client.force_login(user)

    for store in (first, second):
        order = f.make_order(store)
        caller = ApiCaller(client, **{"X-Store": store.slug})
        answer = caller.request("POST", "/cases", _create_body(order), expect=201, headers={"Idempotency-Key": "k"})
        assert answer.get("Idempotent-Replayed") is None
        assert answer.json()["number"] == "AS-000001"
    assert sorted(Case.objects.values_list("store_id", flat=True)) == [first.pk, second.pk]
