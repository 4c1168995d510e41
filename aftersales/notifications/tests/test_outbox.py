import pytest
from django.core import mail
from django.db import transaction

from aftersales.cases import services as case_services
from aftersales.notifications.models import Delivery, OutboxEvent
from aftersales.notifications.providers.sms import SandboxSmsProvider
from aftersales.notifications.services import event_types_for
from aftersales.stores.models import Buyer
from aftersales.testing import factories as f


def open_inquiry(store, buyer):
    return case_services.create_case(actor=f.buyer_of(buyer), kind="inquiry", subject="尺码问题", description="能换大一号吗")


def test_the_event_is_written_in_the_transaction_of_the_change(store):
    buyer = f.make_buyer(store)
    case = open_inquiry(store, buyer)
    assert list(OutboxEvent.objects.filter(store_id=store.pk).values_list("type", "case_id")) == [("case.created", case.pk)]


def test_a_rolled_back_change_leaves_no_event_and_sends_nothing(store, django_capture_on_commit_callbacks):
    buyer = f.make_buyer(store)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        open_inquiry(store, buyer)
        raise RuntimeError("the request failed after the case was written")
    assert (OutboxEvent.objects.count(), Delivery.objects.count(), len(mail.outbox)) == (0, 0, 0)


def test_a_committed_case_mails_the_buyer_in_chinese_through_smtp(store, smtp_server, django_capture_on_commit_callbacks):
    buyer = f.make_buyer(store)
    with django_capture_on_commit_callbacks(execute=True):
        case = open_inquiry(store, buyer)
    [message] = smtp_server.messages
    assert message["To"] == buyer.email
    assert message["Subject"] == f"您的售后申请 {case.number} 已收到"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Aftersales-Event-Id"] == str(OutboxEvent.objects.get().pk)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f"http://127.0.0.1:8000/portal/cases/{case.pk}/" in text
    assert f'href="http://127.0.0.1:8000/portal/cases/{case.pk}/"' in html
    assert message["Reply-To"].startswith(f"service+c{case.pk}.")
    assert Delivery.objects.get().status == "sent"


def test_an_english_speaking_buyer_gets_english(store, smtp_server, django_capture_on_commit_callbacks):
    buyer = f.make_buyer(store)
    Buyer.objects.filter(pk=buyer.pk).update(language="en")
    with django_capture_on_commit_callbacks(execute=True):
        case = open_inquiry(store, buyer)
    assert [m["Subject"] for m in smtp_server.messages] == [f"We have received your request {case.number}"]


def test_the_buyer_is_not_mailed_about_their_own_message(store, django_capture_on_commit_callbacks):
    buyer = f.make_buyer(store)
    case = open_inquiry(store, buyer)
    with django_capture_on_commit_callbacks(execute=True):
        case_services.post_message(actor=f.buyer_of(buyer), case_id=case.pk, body="还在吗")
    assert list(Delivery.objects.filter(event__type="case.message_posted").values_list("target", flat=True)) == []


def test_a_reply_from_the_shop_reaches_the_buyer_by_sms_with_the_opt_out(store, django_capture_on_commit_callbacks):
    buyer = f.make_buyer(store)
    Buyer.objects.filter(pk=buyer.pk).update(phone="+8613800000000")
    case = open_inquiry(store, buyer)
    with django_capture_on_commit_callbacks(execute=True):
        case_services.post_message(actor=f.staff(store), case_id=case.pk, body="可以换")
    [sms] = SandboxSmsProvider.sent
    assert sms.to == "+8613800000000"
    assert sms.body == (f"【示例旗舰店】售后申请{case.number}有新回复：http://127.0.0.1:8000/portal/cases/{case.pk}/ 回TD退订")


@pytest.mark.parametrize(("action", "expected"), [
    ("approve", ["case.decided"]), ("counter_offer", ["case.counter_offer"]), ("mark_received", ["case.received"]),
    ("record_inspection", ["case.inspected"]), ("refund", ["case.refunded"]), ("reship", ["case.reshipped"]),
    ("close", ["case.status_changed"]),
])
def test_each_move_is_told_as_its_event(action, expected):
    assert event_types_for("case.transitioned", {"action": action, "rule": ""}) == expected


def test_a_move_made_by_a_timeout_is_also_a_timeout_event():
    assert event_types_for("case.transitioned", {"action": "approve", "rule": "review.auto_approve"}) == [
        "case.decided", "case.timeout_fired"]


def test_sla_alerts_are_told():
    assert [event_types_for(e, {}) for e in ("sla.warning", "sla.breached", "case.refund_overdue")] == [
        ["sla.warning"], ["sla.breached"], ["case.timeout_fired"]]
