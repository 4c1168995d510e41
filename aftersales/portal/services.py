"""Guest access: a one-time code proves the person holds the order's phone or e-mail.

The code goes to the buyer's phone by SMS or to their e-mail, through the notifications services.
Only a keyed hash is stored, it expires, and a few wrong guesses kill it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from aftersales.core import clock
from aftersales.core.errors import Conflict, ValidationFailed
from aftersales.notifications import services as notification_services
from aftersales.orders.models import Order

from .models import GuestCode

logger = logging.getLogger(__name__)
MAX_CODES_PER_HOUR = 5


@dataclass(frozen=True)
class IssuedCode:
    guest_code_id: int
    code: str
    channel: str = ""  # "sms", "email", or "" when no channel took it


def _digest(order_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"guest:{order_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _normalise_contact(contact: str) -> str:
    return contact.strip().lower().replace(" ", "").replace("-", "")


def issue_guest_code(*, order_number: str, contact: str) -> IssuedCode | None:
    """A code for the one order with this number whose buyer has this phone or e-mail, or None.

    The guest has not told us their store, so this is the one lookup that starts from the order number
    across stores; it answers only when the number and the contact both match exactly one order.
    """
    number, wanted = order_number.strip(), _normalise_contact(contact)
    if not number or not wanted:
        raise ValidationFailed("give the order number and the phone or e-mail", field="order_number",
                               code="field_required")
    candidates = [
        order for order in Order.objects.filter(external_id=number)
        .select_related("buyer")[:20]
        if wanted in {_normalise_contact(order.buyer.email), _normalise_contact(order.buyer.phone)} - {""}
    ]
    if len(candidates) != 1:
        return None
    order = candidates[0]
    now = clock.now()
    # Five tries a code would mean nothing if codes could be asked for without end.
    recent = GuestCode.objects.filter(store_id=order.store_id, order=order, created_at__gte=now - dt.timedelta(hours=1))
    if recent.count() >= MAX_CODES_PER_HOUR:
        raise Conflict("too_many_codes", "too many codes were asked for this order; try again in an hour")
    code = f"{secrets.randbelow(1_000_000):06d}"
    guest_code = GuestCode.objects.create(
        store_id=order.store_id, order=order, code_hash=_digest(order.pk, code), created_at=now,
        expires_at=now + _ttl(),
    )
    # Sent after the code row exists, so a code that reached the guest can always be verified.
    channel = notification_services.send_guest_code(
        store_id=order.store_id, buyer_id=order.buyer_id, contact=contact, code=code,
        minutes=int(_ttl().total_seconds() // 60))
    logger.info("guest access code for order %s (store %s) sent by %s", order.external_id, order.store_id,
                channel or "no channel")
    return IssuedCode(guest_code_id=guest_code.pk, code=code, channel=channel)


def _ttl() -> dt.timedelta:
    return dt.timedelta(seconds=settings.AFTERSALES_GUEST_CODE_TTL_SECONDS)


def verify_guest_code(*, guest_code_id: int, code: str) -> Order:
    """The order the code opens. A wrong guess is counted even though the call fails, so the count
    is committed before the error is raised."""
    with transaction.atomic():
        guest_code = GuestCode.objects.select_for_update().filter(pk=guest_code_id).first()
        if guest_code is None or guest_code.used_at is not None:
            raise Conflict("code_invalid", "this code is no longer valid; ask for a new one")
        if guest_code.expires_at <= clock.now():
            raise Conflict("code_expired", "this code has expired; ask for a new one")
        if guest_code.attempts >= settings.AFTERSALES_GUEST_CODE_MAX_ATTEMPTS:
            raise Conflict("code_locked", "too many wrong codes; ask for a new one")
        matches = hmac.compare_digest(guest_code.code_hash, _digest(guest_code.order_id, code.strip()))
        if matches:
            guest_code.used_at = clock.now()
            guest_code.save(update_fields=["used_at"])
            return Order.objects.select_related("buyer").get(pk=guest_code.order_id, store_id=guest_code.store_id)
        guest_code.attempts += 1
        guest_code.save(update_fields=["attempts"])
    raise ValidationFailed("the code is not right", field="code", code="code_wrong",
                           details={"attempts_left": settings.AFTERSALES_GUEST_CODE_MAX_ATTEMPTS - guest_code.attempts})
