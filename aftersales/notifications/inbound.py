"""Mail to a store's service address: parsed, matched to the case it answers (a reply token in the
address, or the case number in the subject from the case's own buyer), or opened as a new inquiry.
Auto-replies and mail loops are recorded and left unanswered.

Mail arrives by the inbound-mail webhook (a provider posts the raw RFC 822 message) or by
`fetch_imap`, which reads unseen messages from a mailbox with imaplib.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import imaplib
import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

from django.conf import settings
from django.db import transaction
from django.utils.html import strip_tags

from aftersales.cases import services as case_services
from aftersales.cases.evidence import check_upload
from aftersales.cases.models import Case
from aftersales.core import clock
from aftersales.core.errors import DomainError, ValidationFailed
from aftersales.stores import services as store_services
from aftersales.stores.models import Buyer, Store
from aftersales.stores.permissions import buyer_actor

from . import rendering
from .models import InboundMail, InboundOutcome, ServiceMailbox

logger = logging.getLogger(__name__)

_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)? ?reply|autoreply|out of (the )?office|自动回复|自動回覆|休假)", re.I)
_SYSTEM_SENDERS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply"})
_CASE_NUMBER = re.compile(r"\b([A-Z][A-Z0-9]{0,7}-\d{6,})\b")
_QUOTE_START = re.compile(r"^(On .+ wrote:|在.+写道[:：]?|-{2,} ?(Original Message|原始邮件) ?-{2,}|发件人[:：]|From: )",
                          re.I)
MAX_BODY = 10_000


@dataclass
class ParsedMail:
    message_id: str
    from_address: str
    from_name: str
    recipients: list[str]
    subject: str
    text: str
    attachments: list[tuple[str, bytes]] = field(default_factory=list)
    auto_reason: str | None = None
    ours: bool = False  # carries our own event header: our mail came back


def _addresses(message: EmailMessage, *names: str) -> list[str]:
    values = [str(v) for name in names for v in message.get_all(name, [])]
    return [address.lower() for _, address in email.utils.getaddresses(values) if address]


def auto_reply_reason(message: EmailMessage) -> str | None:
    """Why this mail was written by a machine, or None. RFC 3834's Auto-Submitted first, then the
    headers common responders set instead, then the bounce shapes."""
    auto_submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto-submitted"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if message.get(header) is not None:
            return "x-autoreply"
    if str(message.get("Precedence", "")).strip().lower() in _AUTO_PRECEDENCE:
        return "precedence"
    if str(message.get("Return-Path", "")).strip() == "<>":
        return "null-sender"
    if message.get_content_type() == "multipart/report":
        return "delivery-report"
    senders = _addresses(message, "From")
    if senders and senders[0].split("@")[0] in _SYSTEM_SENDERS:
        return "system-sender"
    if _AUTO_SUBJECT.match(str(message.get("Subject", ""))):
        return "subject"
    return None


def _reply_text(text: str) -> str:
    """The new part of a reply: stops at the quoted original."""
    kept = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_START.match(line.strip()):
            break
        if line.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()[:MAX_BODY]


def parse(raw: bytes) -> ParsedMail:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body_part = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body_part is not None:
        content = body_part.get_content()
        text = strip_tags(content) if body_part.get_content_type() == "text/html" else content
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            attachments.append((part.get_filename() or "attachment", payload))
    froms = email.utils.getaddresses([str(message.get("From", ""))])
    name, address = froms[0] if froms else ("", "")
    message_id = str(message.get("Message-ID", "")).strip()
    if not message_id:
        # Without one, the content itself identifies the mail, so a re-posted copy is still a duplicate.
        message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    return ParsedMail(
        message_id=message_id[:250], from_address=address.lower(), from_name=name,
        recipients=_addresses(message, "Delivered-To", "X-Original-To", "To", "Cc"),
        subject=" ".join(str(message.get("Subject", "")).split())[:250], text=_reply_text(text),
        attachments=attachments, auto_reason=auto_reply_reason(message),
        ours=message.get(rendering.EVENT_HEADER) is not None,
    )


def _mailbox_for(addresses: list[str]) -> tuple[ServiceMailbox, str] | None:
    """The store's mailbox this mail was sent to, and the +token part of the address if any."""
    for address in addresses:
        local, _, domain = address.partition("@")
        base, _, token = local.partition("+")
        mailbox = ServiceMailbox.objects.filter(address=f"{base}@{domain}").first()
        if mailbox is not None:
            return mailbox, token
    return None


def _find_case(store_id: int, token: str, parsed: ParsedMail) -> Case | None:
    if token:
        case_id = rendering.case_from_token(store_id, token)
        if case_id is not None:
            return Case.objects.filter(store_id=store_id, pk=case_id).first()
    # By the case number only from the case's own buyer: a number is guessable, a token is not.
    for number in _CASE_NUMBER.findall(parsed.subject):
        case = Case.objects.select_related("buyer").filter(store_id=store_id, number=number).first()
        if case is not None and case.buyer.email.lower() == parsed.from_address:
            return case
    return None


def _is_loop(store_id: int, parsed: ParsedMail, now: dt.datetime) -> bool:
    if parsed.ours:
        return True
    if ServiceMailbox.objects.filter(address=parsed.from_address).exists():
        return True
    # A responder that sets none of the headers shows itself by its rate.
    window = now - dt.timedelta(seconds=settings.AFTERSALES_INBOUND_LOOP_WINDOW_SECONDS)
    recent = InboundMail.objects.filter(store_id=store_id, from_address=parsed.from_address, received_at__gte=window)
    return recent.count() >= settings.AFTERSALES_INBOUND_LOOP_LIMIT


def handle_inbound(*, raw: bytes, recipient: str | None = None) -> InboundMail:
    """Takes one raw message; returns what became of it. Idempotent by Message-ID per store."""
    parsed = parse(raw)
    found = _mailbox_for(([recipient.lower()] if recipient else []) + parsed.recipients)
    if found is None:
        raise ValidationFailed("the mail is not addressed to any store's service address", field="recipient",
                               code="unknown_mailbox")
    mailbox, token = found
    store_id = mailbox.store_id
    now = clock.now()
    with transaction.atomic():
        existing = InboundMail.objects.filter(store_id=store_id, message_id=parsed.message_id).first()
        if existing is not None:
            return existing
        record = InboundMail(store_id=store_id, message_id=parsed.message_id, from_address=parsed.from_address[:254],
                             subject=parsed.subject, received_at=now)
        if not parsed.from_address:
            record.outcome, record.detail = InboundOutcome.REJECTED, {"reason": "no sender"}
        elif parsed.auto_reason:
            record.outcome, record.detail = InboundOutcome.AUTO_REPLY, {"reason": parsed.auto_reason}
        elif _is_loop(store_id, parsed, now):
            record.outcome, record.detail = InboundOutcome.LOOP, {}
        else:
            _accept(record, store_id, token, parsed)
        record.save()
    logger.info("inbound mail %s from %s: %s", parsed.message_id, parsed.from_address, record.outcome)
    return record


def _accept(record: InboundMail, store_id: int, token: str, parsed: ParsedMail) -> None:
    case = _find_case(store_id, token, parsed)
    if case is not None:
        buyer = Buyer.objects.get(store_id=store_id, pk=case.buyer_id)
    else:
        buyer = (Buyer.objects.filter(store_id=store_id, email__iexact=parsed.from_address).order_by("pk").first()
                 or store_services.upsert_buyer(store=Store.objects.get(pk=store_id),
                                                external_id=f"email:{parsed.from_address}"[:100],
                                                name=parsed.from_name[:120], email=parsed.from_address))
    actor = buyer_actor(store_id=store_id, buyer_id=buyer.pk, label=buyer.name or buyer.email)
    body = parsed.text or parsed.subject or "(no text)"
    try:
        with transaction.atomic():
            if case is not None:
                case_services.post_message(actor=actor, case_id=case.pk, body=body)
                record.outcome = InboundOutcome.MESSAGE
            else:
                case = case_services.create_case(actor=actor, kind="inquiry", subject=parsed.subject or body[:80],
                                                 description=body, channel="email")
                record.outcome = InboundOutcome.NEW_CASE
    except DomainError as exc:
        record.outcome, record.detail = InboundOutcome.REJECTED, {"code": exc.code, "message": exc.message}
        return
    record.case = case
    rejected = []
    for filename, content in parsed.attachments:
        try:
            check_upload(content)  # refused files are named in the record, never stored
            case_services.add_attachment(actor=actor, case_id=case.pk, content=content, filename=filename)
        except ValidationFailed as exc:
            rejected.append({"filename": filename[:200], "code": exc.code})
    if rejected:
        record.detail = {"rejected_attachments": rejected}


def fetch_imap(*, host: str, username: str, password: str, port: int = 993, use_ssl: bool = True,
               mailbox: str = "INBOX", limit: int = 100) -> int:
    """Handles up to `limit` unseen messages; each is marked seen only once handled, so a crash
    half-way leaves the rest for the next run (and a message handled twice is a duplicate by its id)."""
    client: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port) if use_ssl else imaplib.IMAP4(host, port)
    handled = 0
    try:
        client.login(username, password)
        client.select(mailbox)
        _, data = client.uid("search", "UNSEEN")
        for uid in (data[0] or b"").split()[:limit]:
            _, parts = client.uid("fetch", uid.decode(), "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if raw is None:
                continue
            try:
                handle_inbound(raw=raw)
            except DomainError:
                logger.exception("inbound mail: message %s refused", uid)
            client.uid("store", uid.decode(), "+FLAGS", r"(\Seen)")
            handled += 1
    finally:
        try:
            client.logout()
        except Exception:
            logger.debug("imap logout failed", exc_info=True)
    return handled
