"""The return slip travels with the buyer's e-mails about sending the goods back; a guest's one-time code
reaches the buyer's own mailbox. Both through a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import pytest

from aftersales.cases import services as case_services
from aftersales.cases.models import Attachment, Case
from aftersales.core import events
from aftersales.logistics import services as logistics_services
from aftersales.logistics.tests.helpers import approved_case, warehouse
from aftersales.notifications.models import BuyerPreference, Delivery
from aftersales.notifications.providers.sms import SandboxSmsProvider
from aftersales.portal import services as portal_services
from aftersales.stores.models import Buyer
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db


def _pdf_parts(message):
    return [(part.get_content_type(), part.get_filename(), part.get_content()) for part in message.iter_attachments()]


def test_the_slip_announced_for_a_case_is_mailed_to_the_buyer_as_a_pdf(store, smtp_server,
                                                                      django_capture_on_commit_callbacks):
    case = approved_case(store)  # no return address yet: no slip, and the approval mail carried none
    warehouse(store)
    Buyer.objects.filter(pk=case.buyer_id).update(language="en")
    with django_capture_on_commit_callbacks(execute=True):
        attachment_id = logistics_services.attach_return_slip(actor=f.staff(store, "admin"), case_id=case.pk)
    slip = Attachment.objects.get(pk=attachment_id)
    [message] = smtp_server.messages
    assert message["Subject"] == f"Request {case.number}: your return label is ready"
    assert (f"Please print it and stick it on the parcel. It is attached to this e-mail "
            f"(return-slip-{case.number}.pdf).") in message.get_body(preferencelist=("plain",)).get_content()
    [(content_type, filename, content)] = _pdf_parts(message)
    assert (content_type, filename) == ("application/pdf", f"return-slip-{case.number}.pdf")
    assert content == slip.file.open("rb").read()
    assert content.startswith(b"%PDF-")


def test_the_buyer_who_chose_sms_also_gets_a_text(store, smtp_server, django_capture_on_commit_callbacks):
    case = approved_case(store)
    warehouse(store)
    Buyer.objects.filter(pk=case.buyer_id).update(phone="+8613700000000")
    with django_capture_on_commit_callbacks(execute=True):
        logistics_services.attach_return_slip(actor=f.staff(store, "admin"), case_id=case.pk)
    assert [m.body for m in SandboxSmsProvider.sent] == [
        f"【示例旗舰店】售后申请{case.number}退货面单已生成：http://127.0.0.1:8000/portal/cases/{case.pk}/ 回TD退订"]
    assert len(smtp_server.messages) == 1


def test_a_buyer_who_turned_sms_off_gets_only_the_mail(store, smtp_server, django_capture_on_commit_callbacks):
    case = approved_case(store)
    warehouse(store)
    Buyer.objects.filter(pk=case.buyer_id).update(phone="+8613700000001")
    BuyerPreference.objects.create(store=store, buyer_id=case.buyer_id, sms=False, updated_at=case.created_at)
    with django_capture_on_commit_callbacks(execute=True):
        logistics_services.attach_return_slip(actor=f.staff(store, "admin"), case_id=case.pk)
    assert (SandboxSmsProvider.sent, len(smtp_server.messages)) == ([], 1)


def test_a_later_decision_to_send_the_goods_carries_the_slip_the_case_has(store, smtp_server,
                                                                         django_capture_on_commit_callbacks):
    case = approved_case(store)
    warehouse(store)
    with django_capture_on_commit_callbacks(execute=True):
        attachment_id = logistics_services.attach_return_slip(actor=f.staff(store, "admin"), case_id=case.pk)
    smtp_server.messages.clear()
    # As an arbitration that sends the goods back again would announce it.
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("case.transitioned", {"store_id": store.pk, "case_id": case.pk, "number": case.number,
                                             "kind": case.kind, "status": "awaiting_return", "action": "arbitrate",
                                             "from_status": "in_arbitration", "actor_kind": "staff", "rule": ""})
    [message] = smtp_server.messages
    assert message["Subject"] == f"售后申请 {case.number} 已有处理结果"
    assert f"退货面单已附在本邮件中（return-slip-{case.number}.pdf）" in message.get_body(
        preferencelist=("plain",)).get_content()
    [(content_type, _name, content)] = _pdf_parts(message)
    assert (content_type, content) == ("application/pdf", Attachment.objects.get(pk=attachment_id).file.open("rb").read())


def test_mail_about_other_things_carries_no_slip(store, smtp_server, django_capture_on_commit_callbacks):
    case = approved_case(store)
    warehouse(store)
    with django_capture_on_commit_callbacks(execute=True):
        logistics_services.attach_return_slip(actor=f.staff(store, "admin"), case_id=case.pk)
    smtp_server.messages.clear()
    with django_capture_on_commit_callbacks(execute=True):
        case_services.post_message(actor=f.staff(store), case_id=case.pk, body="面单已发，请查收")
    [message] = smtp_server.messages
    assert _pdf_parts(message) == []


def test_another_stores_slip_is_never_attached(store, smtp_server, django_capture_on_commit_callbacks):
    other_store = f.make_store()
    warehouse(other_store)
    theirs = approved_case(other_store)
    foreign_slip = logistics_services.attach_return_slip(actor=f.staff(other_store, "admin"), case_id=theirs.pk)
    case = approved_case(store)
    smtp_server.messages.clear()
    # An event naming an attachment of another store's case (a bug upstream) sends the mail without it.
    with django_capture_on_commit_callbacks(execute=True):
        events.publish("case.return_label_ready", {"store_id": store.pk, "case_id": case.pk, "number": case.number,
                                                   "kind": case.kind, "status": "awaiting_return",
                                                   "case_number": case.number, "attachment_id": foreign_slip,
                                                   "buyer_id": case.buyer_id})
    [message] = smtp_server.messages
    assert _pdf_parts(message) == []
    assert Delivery.objects.filter(store=store, event__type="case.return_label_ready").get().status == "sent"


def test_a_guest_code_reaches_the_buyers_mailbox_through_smtp(store, smtp_server):
    order = f.make_order(store)
    issued = portal_services.issue_guest_code(order_number=order.external_id, contact=order.buyer.email.upper())
    assert issued is not None
    [message] = smtp_server.messages
    assert (message["To"], message["Subject"]) == (order.buyer.email, f"您的售后验证码：{issued.code}")
    assert f"验证码为 {issued.code}，10 分钟内有效" in message.get_body(preferencelist=("plain",)).get_content()
    assert Case.objects.count() == 0
