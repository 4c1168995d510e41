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


def email_for(delivery: Delivery, event: OutboxEvent) -> EmailMultiAlternatives:
    language = language_of(delivery.language)
    context = _context(delivery, event)
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
    return message


def sms_for(delivery: Delivery, event: OutboxEvent) -> str:
    language = language_of(delivery.language)
    with translation.override(language):
        text = render_to_string(f"notifications/sms/{language}/{event.type.replace('.', '_')}.txt",
                                _context(delivery, event))
    return " ".join(text.split())
