"""Complaints (投诉) and inquiries (咨询) filed from the portal, with or without an order."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from PIL import Image

from aftersales.cases import services
from aftersales.cases.models import Attachment, Case
from aftersales.testing.factories import make_buyer, make_order, make_store, staff

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def shop():
    store = make_store()
    buyer = make_buyer(store, with_login=True)
    order = make_order(store, buyer)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    return store, buyer, order, client


def test_a_complaint_without_an_order_is_filed_open_for_the_signed_in_buyer(shop):
    store, buyer, _order, client = shop
    response = client.post("/portal/contact/", {"kind": "complaint", "subject": "客服态度差", "description": "电话没人接"})
    case = Case.objects.get(store=store)
    assert response["Location"] == f"/portal/cases/{case.pk}/"
    assert (case.kind, case.status, case.subject, case.description, case.buyer_id, case.order_id, case.channel) == (
        "complaint", "open", "客服态度差", "电话没人接", buyer.pk, None, "web")


def test_an_inquiry_about_an_order_with_a_photo_hangs_on_that_order(shop):
    store, _buyer, order, client = shop
    photo = io.BytesIO(png_bytes())
    photo.name = "label.png"
    client.post("/portal/contact/", {"kind": "inquiry", "subject": "发票", "order": str(order.pk), "photos": [photo]})
    case = Case.objects.get(store=store)
    assert (case.kind, case.order_id) == ("inquiry", order.pk)
    assert list(Attachment.objects.filter(case=case).values_list("original_name", flat=True)) == ["label.png"]


def test_a_buyer_of_another_store_cannot_file_against_this_stores_order(shop):
    _store, _buyer, order, _client = shop
    elsewhere = make_buyer(make_store(), with_login=True)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(elsewhere.user)  # type: ignore[arg-type]
    response = client.post("/portal/contact/", {"kind": "complaint", "subject": "x", "order": str(order.pk)})
    assert response.status_code == 404
    assert Case.objects.count() == 0


def test_an_empty_subject_is_a_form_error_and_writes_nothing(shop):
    _store, _buyer, _order, client = shop
    response = client.post("/portal/contact/", {"kind": "complaint", "subject": "   ", "description": "d"})
    assert response.status_code == 422
    assert response.context["error"] == "Give a subject."
    assert Case.objects.count() == 0


def test_the_orders_page_links_to_the_contact_form(shop):
    _store, _buyer, _order, client = shop
    assert 'href="/portal/contact/"' in client.get("/portal/").content.decode()


def test_the_progress_page_shows_the_conversation_steps_with_the_wait_in_place_of_in_progress(shop):
    store, _buyer, _order, client = shop
    client.post("/portal/contact/", {"kind": "complaint", "subject": "s"})
    case = Case.objects.get(store=store)
    agent = staff(store, "supervisor")
    for action in ("acknowledge", "start_progress", "wait_on_customer"):
        services.transition_case(actor=agent, case_id=case.pk, action=action)
    steps = client.get(f"/portal/cases/{case.pk}/").context["steps"]
    assert [(s["status"], s["state"]) for s in steps] == [
        ("open", "done"), ("acknowledged", "done"), ("waiting_on_customer", "now"), ("resolved", "todo"),
        ("closed", "todo")]


def test_a_buyer_reply_while_the_shop_waits_hands_the_case_back(shop):
    store, _buyer, _order, client = shop
    client.post("/portal/contact/", {"kind": "inquiry", "subject": "s"})
    case = Case.objects.get(store=store)
    agent = staff(store, "supervisor")
    for action in ("acknowledge", "start_progress", "wait_on_customer"):
        services.transition_case(actor=agent, case_id=case.pk, action=action)
    client.post(f"/portal/cases/{case.pk}/message/", {"body": "订单号是 123"})
    case.refresh_from_db()
    assert case.status == "in_progress"


def test_the_form_in_chinese_preselects_the_order_it_was_opened_from(shop):
    _store, buyer, order, _client = shop
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    client.force_login(buyer.user)
    page = client.get(f"/portal/contact/?order={order.pk}").content.decode()
    assert "<h1>联系商家</h1>" in page
    assert f'<option value="{order.pk}" selected>' in page
