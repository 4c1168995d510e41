"""What a delivery says: e-mail (plain text and HTML) and SMS, in the recipient's language, and the
reply address that brings an answer back to its case."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

if TYPE_CHECKING:
    from .models import Delivery, OutboxEvent

LANGUAGES = ("zh-hans", "en")
SMS_EVENTS = frozenset({"case.created", "case.decided", "case.counter_offer", "case.return_label_ready",
                        "case.refunded", "case.reshipped", "case.message_posted"})
# Buyer e-mails about sending the goods back, which carry the return slip when the case has one.
SLIP_STATUSES = frozenset({"awaiting_return", "awaiting_device"})
SLIP_EVENTS = frozenset({"case.decided", "case.timeout_fired", "case.return_label_ready"})
# Our own mail carries this header; seeing it on incoming mail means our mail came back to us.
EVENT_HEADER = "X-Aftersales-Event-Id"


def language_of(code: str | None) -> str:
    return "en" if (code or "").lower().startswith("en") else "zh-hans"


def reply_token(store_id: int, case_id: int) -> str:
    """`<case id>.<mac>`: unguessable, so mail to it may be trusted to belong to that case, and
    stateless, so no table of tokens is needed."""
    mac = hmac.new(settings.SECRET_KEY.encode(), f"reply:{store_id}:{case_id}".encode(), hashlib.sha256)
    return f"c{case_id}.{mac.hexdigest()[:20]}"


_TOKEN = re.compile(r"^c(\d{1,18})\.([0-9a-f]{20})$")


def case_from_token(store_id: int, token: str) -> int | None:
    match = _TOKEN.match(token.lower())
    if match is None:
        return None
    case_id = int(match.group(1))
    return case_id if hmac.compare_digest(reply_token(store_id, case_id), token.lower()) else None


def service_address(store_id: int) -> str:
    from .models import ServiceMailbox

    address = ServiceMailbox.objects.filter(store_id=store_id).values_list("address", flat=True).first()
    return address or settings.AFTERSALES_SERVICE_ADDRESS


def reply_address(store_id: int, case_id: int) -> str:
    local, _, domain = service_address(store_id).partition("@")
    return f"{local}+{reply_token(store_id, case_id)}@{domain}"


def public_url(path: str) -> str:
    return settings.AFTERSALES_PUBLIC_URL.rstrip("/") + path


def _context(delivery: Delivery, event: OutboxEvent) -> dict[str, Any]:
    from aftersales.cases.models import Case, Message
    from aftersales.stores.models import Store

    store = Store.objects.get(pk=event.store_id)
    case = (Case.objects.select_related("buyer").filter(store_id=event.store_id, pk=event.case_id).first()
            if event.case_id is not None else None)
    message = None
    if event.type == "case.message_posted" and event.payload.get("message_id"):
        message = (Message.objects.filter(store_id=event.store_id, pk=event.payload["message_id"], visibility="public")
                   .values_list("body", flat=True).first())
    staff = delivery.user_id is not None
    link = ""
    if case is not None:
        link = public_url(reverse("console:case" if staff else "portal:case", args=[case.pk]))
    return {"store": store, "case": case, "event": event, "payload": event.payload, "message": message,
            "link": link, "buyer": case.buyer if case is not None else None, "staff": staff}


def _split(rendered: str) -> tuple[str, str]:
    """Our text templates start with the subject line, then a blank line, then the body."""
    subject, _, body = rendered.strip().partition("\n")
    return " ".join(subject.split()), body.strip() + "\n"


def return_slip(event: OutboxEvent) -> tuple[str, bytes, str] | None:
    """The return slip (file name, content, type) a buyer e-mail about this event should carry, or None.

    The slip is the attachment named by the case's latest case.return_label_ready event: the logistics app
    announces each slip it files, so the outbox already knows which attachment is the slip without a
    convention on file names. Read through the attachment's storage, wherever that keeps files."""
    from aftersales.cases.models import Attachment

    from .models import OutboxEvent

    if event.case_id is None or event.type not in SLIP_EVENTS:
        return None
    if event.type == "case.return_label_ready":
        attachment_id = event.payload.get("attachment_id")
    elif event.payload.get("status") in SLIP_STATUSES:
        announced = (OutboxEvent.objects.filter(store_id=event.store_id, case_id=event.case_id,
                                                type="case.return_label_ready")
                     .order_by("-created_at").values_list("payload", flat=True).first())
        attachment_id = (announced or {}).get("attachment_id")
    else:
        return None
    if not attachment_id:
        return None
    attachment = Attachment.objects.filter(store_id=event.store_id, case_id=event.case_id, pk=attachment_id).first()
    if attachment is None:
        return None
    with attachment.file.open("rb") as handle:
        content = handle.read()
    return attachment.original_name, content, attachment.content_type


def email_for(delivery: Delivery, event: OutboxEvent) -> EmailMultiAlternatives:
    language = language_of(delivery.language)
    context = _context(delivery, event)
    slip = None if context["staff"] else return_slip(event)
    context["slip_name"] = slip[0] if slip else ""
    name = "staff" if context["staff"] else event.type.replace(".", "_")
    with translation.override(language):
        subject, body = _split(render_to_string(f"notifications/email/{language}/{name}.txt", context))
        html = render_to_string(f"notifications/email/{language}/base.html",
                                {**context, "subject": subject, "paragraphs": [p for p in body.split("\n\n") if p]})
    headers = {
        EVENT_HEADER: str(event.pk),
        # RFC 3834: this mail is automatic, and auto-responders should not answer it.
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "All",
    }
    reply_to = [reply_address(event.store_id, event.case_id)] if event.case_id else []
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                                     to=[delivery.target], reply_to=reply_to, headers=headers)
    message.attach_alternative(html, "text/html")
    if slip is not None:
        message.attach(*slip)
    return message


def sms_for(delivery: Delivery, event: OutboxEvent) -> str:
    language = language_of(delivery.language)
    with translation.override(language):
        text = render_to_string(f"notifications/sms/{language}/{event.type.replace('.', '_')}.txt",
                                _context(delivery, event))
    return " ".join(text.split())


def guest_code_email(language: str, context: dict[str, Any], *, to: str) -> EmailMultiAlternatives:
    """The one-time code a guest asked for, in plain text and HTML; no reply address: nobody reads it."""
    with translation.override(language):
        subject, body = _split(render_to_string(f"notifications/email/{language}/guest_code.txt", context))
        html = render_to_string(f"notifications/email/{language}/base.html",
                                {**context, "subject": subject, "paragraphs": [p for p in body.split("\n\n") if p]})
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to],
                                     headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"})
    message.attach_alternative(html, "text/html")
    return message


def guest_code_sms(language: str, context: dict[str, Any]) -> str:
    with translation.override(language):
        text = render_to_string(f"notifications/sms/{language}/guest_code.txt", context)
    return " ".join(text.split())
