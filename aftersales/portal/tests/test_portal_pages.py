"""The buyer portal through Django's test client, and guest access by one-time code."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from django.core import mail
from django.test import Client
from PIL import Image

from aftersales.cases import services
from aftersales.cases.models import Attachment, Case
from aftersales.cases.services import LineRequest, install_default_reason_codes
from aftersales.core import clock
from aftersales.core.errors import DomainError
from aftersales.notifications import services as notification_services
from aftersales.notifications.providers.sms import SandboxSmsProvider
from aftersales.portal import services as portal_services
from aftersales.portal.models import GuestCode
from aftersales.stores.models import Buyer
from aftersales.testing.factories import SIGNED_AT, buyer_of, make_buyer, make_order, make_store

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def buyer_client():
    store = make_store()
    install_default_reason_codes(store=store)
    buyer = make_buyer(store, with_login=True)
    order = make_order(store, buyer)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    return store, buyer, order, client


def test_order_page_says_per_line_what_can_be_asked_for(buyer_client):
    _store, _buyer, order, client = buyer_client
    response = client.get(f"/portal/orders/{order.pk}/")
    rows = response.context["rows"]
    assert [row["line"].sku for row in rows] == ["TSHIRT-M", "PHONE-1"]
    assert all("requested_open" in row["quality"] for row in rows)


def test_filing_a_request_with_a_photo_creates_the_case_and_its_attachment(buyer_client):
    _store, _buyer, order, client = buyer_client
    line = order.lines.order_by("line_no").first()
    photo = io.BytesIO(png_bytes())
    photo.name = "broken.png"
    response = client.post(f"/portal/orders/{order.pk}/request/", {
        "kind": "return_refund", f"qty_{line.pk}": "1", "reason": "quality", "description": "seam torn",
        "photos": [photo],
    })
    case = Case.objects.get(order=order)
    assert response["Location"] == f"/portal/cases/{case.pk}/"
    assert (case.kind, case.description) == ("return_refund", "seam torn")
    assert list(Attachment.objects.filter(case=case).values_list("content_type", flat=True)) == ["image/png"]


def test_a_photo_that_is_not_an_image_files_nothing(buyer_client):
    _store, _buyer, order, client = buyer_client
    line = order.lines.order_by("line_no").first()
    fake = io.BytesIO(b"#!/bin/sh\necho hi\n")
    fake.name = "photo.png"
    response = client.post(f"/portal/orders/{order.pk}/request/", {
        "kind": "return_refund", f"qty_{line.pk}": "1", "reason": "quality", "photos": [fake],
    })
    assert response.status_code == 422
    assert Case.objects.filter(order=order).count() == 0


def test_preview_shows_the_refund_for_the_chosen_lines(buyer_client, time_machine):
    time_machine.move_to(SIGNED_AT + dt.timedelta(days=2))
    _store, _buyer, order, client = buyer_client
    line = order.lines.order_by("line_no").first()
    response = client.post(f"/portal/orders/{order.pk}/preview/",
                           {"kind": "return_refund", f"qty_{line.pk}": "1", "reason": "quality"})
    assert response.context["decision"]["refund"]["amount"] == "99.00"


def test_buyer_accepts_a_counter_offer_from_the_progress_page(buyer_client):
    store, buyer, order, client = buyer_client
    line = order.lines.order_by("line_no").first()
    case = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code="quality")
    from aftersales.testing.factories import staff

    services.transition_case(actor=staff(store), case_id=case.pk, action="counter_offer", payload={"amount": "30.00"})
    page = client.get(f"/portal/cases/{case.pk}/")
    assert {a["action"] for a in page.context["actions"]} == {"accept_offer", "decline_offer", "cancel"}
    client.post(f"/portal/cases/{case.pk}/act/", {"action": "accept_offer"})
    case.refresh_from_db()
    assert (case.status, case.offer_amount) == ("refunding", 30)


def test_a_buyer_never_sees_another_buyers_order(buyer_client):
    store, _buyer, _order, client = buyer_client
    someone_else = make_order(store)
    assert client.get(f"/portal/orders/{someone_else.pk}/").status_code == 404


def test_a_buyer_of_another_store_is_refused_the_order(buyer_client):
    _store, _buyer, order, _client = buyer_client
    stranger = make_buyer(make_store(), with_login=True)
    client = Client()
    client.force_login(stranger.user)  # type: ignore[arg-type]
    assert client.get(f"/portal/orders/{order.pk}/").status_code == 404


def test_the_page_language_follows_the_browser():
    store = make_store()
    buyer = make_buyer(store, with_login=True)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    assert "我的订单" in client.get("/portal/").content.decode()
    client = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    client.force_login(buyer.user)  # type: ignore[arg-type]
    assert "My orders" in client.get("/portal/").content.decode()


# --- guest access ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _sandbox_sms():
    SandboxSmsProvider.clear()
    yield
    SandboxSmsProvider.clear()


def _guest_order():
    store = make_store()
    buyer = make_buyer(store)
    return make_order(store, buyer)


def test_a_guest_code_is_mailed_to_the_buyer_and_only_its_hash_is_stored(caplog):
    order = _guest_order()
    with caplog.at_level(logging.INFO, logger="aftersales.portal.services"):
        issued = portal_services.issue_guest_code(order_number=order.external_id, contact=order.buyer.email)
    assert issued is not None
    assert issued.channel == "email"
    [message] = mail.outbox
    assert message.to == [order.buyer.email]
    assert message.subject == f"您的售后验证码：{issued.code}"
    assert f"验证码为 {issued.code}，10 分钟内有效" in message.body
    assert issued.code not in caplog.text
    assert issued.code not in GuestCode.objects.get(pk=issued.guest_code_id).code_hash


def test_a_guest_who_gave_the_phone_gets_the_code_by_sms():
    order = _guest_order()
    Buyer.objects.filter(pk=order.buyer_id).update(phone="+8613900001111", language="en")
    issued = portal_services.issue_guest_code(order_number=order.external_id, contact="+86 139-0000-1111")
    assert issued is not None
    assert issued.channel == "sms"
    assert [(m.to, m.body) for m in SandboxSmsProvider.sent] == [
        ("+8613900001111", f"{order.store.name}: your after-sales code is {issued.code}, valid for 10 minutes. "
                           "Do not share it.")]
    assert mail.outbox == []


def test_a_phone_that_opted_out_of_sms_gets_the_code_by_email():
    order = _guest_order()
    Buyer.objects.filter(pk=order.buyer_id).update(phone="+8613900002222")
    notification_services.sms_opt_out(store_id=order.store_id, phone="+8613900002222")
    issued = portal_services.issue_guest_code(order_number=order.external_id, contact="+8613900002222")
    assert issued is not None
    assert (issued.channel, SandboxSmsProvider.sent, [m.to[0] for m in mail.outbox]) == (
        "email", [], [order.buyer.email])


def test_no_code_when_the_contact_does_not_match():
    order = _guest_order()
    assert portal_services.issue_guest_code(order_number=order.external_id, contact="nobody@example.com") is None


def test_a_guest_code_dies_after_five_wrong_guesses():
    order = _guest_order()
    issued = portal_services.issue_guest_code(order_number=order.external_id, contact=order.buyer.email)
    assert issued is not None
    wrong = "000000" if issued.code != "000000" else "111111"
    codes = []
    for _ in range(6):
        try:
            portal_services.verify_guest_code(guest_code_id=issued.guest_code_id, code=wrong)
        except DomainError as error:
            codes.append(error.code)
    assert codes == ["code_wrong"] * 5 + ["code_locked"]
    with pytest.raises(DomainError) as caught:
        portal_services.verify_guest_code(guest_code_id=issued.guest_code_id, code=issued.code)
    assert caught.value.code == "code_locked"


def test_an_expired_guest_code_is_refused(time_machine):
    order = _guest_order()
    issued = portal_services.issue_guest_code(order_number=order.external_id, contact=order.buyer.email)
    assert issued is not None
    time_machine.move_to(clock.now() + dt.timedelta(minutes=11))
    with pytest.raises(DomainError) as caught:
        portal_services.verify_guest_code(guest_code_id=issued.guest_code_id, code=issued.code)
    assert caught.value.code == "code_expired"


def test_a_guest_reaches_the_order_and_only_that_order(settings):
    settings.AFTERSALES_SHOW_GUEST_CODES = True
    order = _guest_order()
    other = make_order(order.store, order.buyer)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.post("/portal/guest/", {"order_number": order.external_id, "contact": order.buyer.email})
    code = client.get("/portal/guest/code/").context["demo_code"]
    response = client.post("/portal/guest/code/", {"code": code})
    assert response["Location"] == f"/portal/orders/{order.pk}/"
    assert client.get(f"/portal/orders/{order.pk}/").status_code == 200
    assert client.get(f"/portal/orders/{other.pk}/").status_code == 404


def test_no_more_than_five_codes_an_hour_for_one_order():
    order = _guest_order()
    for _ in range(5):
        assert portal_services.issue_guest_code(order_number=order.external_id, contact=order.buyer.email) is not None
    with pytest.raises(DomainError) as caught:
        portal_services.issue_guest_code(order_number=order.external_id, contact=order.buyer.email)
    assert caught.value.code == "too_many_codes"
    assert GuestCode.objects.filter(order=order).count() == 5


def test_sending_the_goods_back_records_the_parcel_and_moves_the_case(buyer_client):
    from aftersales.logistics import services as logistics_services
    from aftersales.logistics.models import CaseShipment
    from aftersales.testing.factories import staff

    store, buyer, order, client = buyer_client
    logistics_services.create_warehouse(actor=staff(store, "admin"), code="main", name="主仓", contact_name="王",
                                        phone="021-55550000", province="上海市", city="上海市", address="1 号",
                                        is_default=True)
    line = order.lines.order_by("line_no")[0]
    case = services.create_case(actor=buyer_of(buyer), kind="return_refund", order_id=order.pk,
                                lines=[LineRequest(line.pk, 1)], reason_code="quality")
    services.transition_case(actor=staff(store), case_id=case.pk, action="approve")
    assert "上海市上海市1 号" in client.get(f"/portal/cases/{case.pk}/").content.decode()
    client.post(f"/portal/cases/{case.pk}/return/",
                {"method": "self_ship", "carrier": "SF", "tracking_number": "SF1234567890123"})
    case.refresh_from_db()
    assert (case.status, case.return_tracking_number) == ("return_in_transit", "SF1234567890123")
    assert list(CaseShipment.objects.filter(case=case).values_list("method", "tracking_number")) == [
        ("self_ship", "SF1234567890123")]
