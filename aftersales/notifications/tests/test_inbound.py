from django.core import mail

from aftersales.cases import services as case_services
from aftersales.cases.models import Attachment, Case, Message
from aftersales.notifications import inbound, rendering, services
from aftersales.notifications.models import InboundMail
from aftersales.testing import factories as f


def raw(*, to, sender, subject="Re: 您的售后申请", body="好的，我明天寄出。\n\n> 原来的邮件", extra="", message_id="<m1@mail.example>"):
    return (f"From: 张三 <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n{extra}"
            f"Content-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n\r\n{body}\r\n").encode()


def setup_case(store):
    services.set_service_mailbox(actor=f.staff(store, "admin"), address="help@shop.example")
    buyer = f.make_buyer(store)
    case = case_services.create_case(actor=f.buyer_of(buyer), kind="inquiry", subject="尺码", description="问题")
    return buyer, case


def test_a_reply_to_the_token_address_lands_on_its_case(store):
    _buyer, case = setup_case(store)
    record = inbound.handle_inbound(raw=raw(to=rendering.reply_address(store.pk, case.pk), sender="someone@else.example"))
    assert (record.outcome, record.case_id) == ("message", case.pk)
    assert list(Message.objects.filter(case=case).values_list("body", "author_kind")) == [("好的，我明天寄出。", "buyer")]


def test_the_case_number_in_the_subject_matches_only_from_the_buyer(store):
    buyer, case = setup_case(store)
    own = inbound.handle_inbound(raw=raw(to="help@shop.example", sender=buyer.email, subject=f"Re: {case.number} 进度"))
    other = inbound.handle_inbound(raw=raw(to="help@shop.example", sender="stranger@x.example",
                                           subject=f"Re: {case.number}", message_id="<m2@x>"))
    assert (own.outcome, own.case_id) == ("message", case.pk)
    assert other.outcome == "new_case" and other.case_id != case.pk


def test_mail_without_a_case_opens_an_inquiry_by_email(store):
    setup_case(store)
    record = inbound.handle_inbound(raw=raw(to="help@shop.example", sender="new@buyer.example", subject="发票怎么开"))
    case = Case.objects.get(store=store, number__isnull=False, pk=record.case_id or 0)
    assert (case.kind, case.channel, case.subject, case.buyer.email) == ("inquiry", "email", "发票怎么开", "new@buyer.example")


def test_an_auto_reply_is_recorded_and_not_answered(store, django_capture_on_commit_callbacks):
    _buyer, _case = setup_case(store)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        record = inbound.handle_inbound(raw=raw(to="help@shop.example", sender="away@buyer.example",
                                                subject="自动回复: 您的售后申请", extra="Auto-Submitted: auto-replied\r\n"))
    assert (record.outcome, record.detail) == ("auto_reply", {"reason": "auto-submitted"})
    assert (Case.objects.filter(store=store).count(), len(mail.outbox)) == (1, 0)


def test_headers_that_mark_an_auto_reply_are_recognised():
    for extra in ("X-Autoreply: yes\r\n", "Precedence: bulk\r\n", "Return-Path: <>\r\n"):
        assert inbound.parse(raw(to="a@b.example", sender="c@d.example", extra=extra)).auto_reason is not None
    assert inbound.parse(raw(to="a@b.example", sender="c@d.example", extra="Auto-Submitted: no\r\n")).auto_reason is None


def test_a_responder_without_headers_is_stopped_by_its_rate(store, settings, django_capture_on_commit_callbacks):
    setup_case(store)
    settings.AFTERSALES_INBOUND_LOOP_LIMIT = 3
    outcomes = []
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            outcomes.append(inbound.handle_inbound(raw=raw(to="help@shop.example", sender="bot@loop.example",
                                                           subject=f"Thanks {n}", message_id=f"<loop{n}@x>")).outcome)
    assert outcomes == ["new_case", "new_case", "new_case", "loop", "loop"]
    assert len(mail.outbox) == 3  # one acknowledgement per accepted inquiry, none for the loop


def test_our_own_mail_coming_back_is_a_loop(store):
    setup_case(store)
    record = inbound.handle_inbound(raw=raw(to="help@shop.example", sender="x@y.example",
                                            extra=f"{rendering.EVENT_HEADER}: 123\r\n"))
    assert record.outcome == "loop"


def test_the_same_message_twice_is_handled_once(store):
    buyer, case = setup_case(store)
    message = raw(to=rendering.reply_address(store.pk, case.pk), sender=buyer.email)
    inbound.handle_inbound(raw=message)
    inbound.handle_inbound(raw=message)
    assert (Message.objects.filter(case=case).count(), InboundMail.objects.count()) == (1, 1)


def test_attachments_are_checked_like_uploads(store):
    buyer, case = setup_case(store)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    import base64
    body = ("Content-Type: multipart/mixed; boundary=XX\r\nMIME-Version: 1.0\r\n\r\n--XX\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n附件是发票\r\n--XX\r\n"
            "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=invoice.pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(pdf).decode()}\r\n--XX\r\n"
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=run.exe\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(b'MZ-not-allowed').decode()}\r\n--XX--\r\n")
    message = (f"From: <{buyer.email}>\r\nTo: {rendering.reply_address(store.pk, case.pk)}\r\nSubject: 发票\r\n"
               f"Message-ID: <att@x>\r\n{body}").encode()
    record = inbound.handle_inbound(raw=message)
    assert list(Attachment.objects.filter(case=case).values_list("original_name", flat=True)) == ["invoice.pdf"]
    assert record.detail == {"rejected_attachments": [{"filename": "run.exe", "code": "file_type_not_allowed"}]}


def test_a_forged_token_does_not_match(store):
    _, case = setup_case(store)
    assert rendering.case_from_token(store.pk, f"c{case.pk}.00000000000000000000") is None
    assert rendering.case_from_token(store.pk, rendering.reply_token(store.pk, case.pk)) == case.pk
