"""A gateway that behaves like the real ones, for development, demos and tests.

It keeps its own books (`SandboxGatewayRefund`), pays a key at most once, answers "pending" and
confirms by a signed callback later (after a delay, sometimes several times), fails some refunds,
and can time out after having taken the refund, which is the case that pays twice in naive code.

What happens to the next refunds is chosen by `script()` (tests), else at random with the rates in
settings.AFTERSALES_SANDBOX_GATEWAY (demos).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import secrets
from collections import deque
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from aftersales.core import clock

from ..models import SandboxGatewayRefund
from .base import (
    CallbackEvent,
    ChargeOrder,
    GatewayError,
    GatewayRecord,
    GatewayTimeout,
    InvalidSignature,
    RefundOrder,
    SubmitResult,
)

SIGNATURE_HEADER = "X-Sandbox-Signature"
# Outcomes a script may hold: "succeed", "fail" (callback says failed), "reject" (refused at once),
# "timeout" (taken, but the caller never hears back).
OUTCOMES = frozenset({"succeed", "fail", "reject", "timeout"})
_script: deque[str] = deque()


def script(*outcomes: str) -> None:
    """The outcomes of the next refunds, in order; afterwards they succeed (or follow the rates)."""
    unknown = set(outcomes) - OUTCOMES
    if unknown:
        raise ValueError(f"unknown sandbox outcomes {sorted(unknown)}")
    _script.clear()
    _script.extend(outcomes)


def _config() -> dict[str, float]:
    defaults = {"failure_rate": 0.0, "timeout_rate": 0.0, "duplicate_callbacks": 1, "callback_delay_seconds": 0}
    return {**defaults, **getattr(settings, "AFTERSALES_SANDBOX_GATEWAY", {})}


def _next_outcome() -> str:
    if _script:
        return _script.popleft()
    config = _config()
    roll = random.random()
    if roll < config["failure_rate"]:
        return "fail"
    if roll < config["failure_rate"] + config["timeout_rate"]:
        return "timeout"
    return "succeed"


def secret() -> bytes:
    return str(getattr(settings, "AFTERSALES_SANDBOX_GATEWAY_SECRET", "sandbox-secret")).encode()


def sign(body: bytes) -> str:
    return hmac.new(secret(), body, hashlib.sha256).hexdigest()


def callback_body(row: SandboxGatewayRefund) -> bytes:
    if row.kind == "charge":
        # A payment notification names the merchant's trade number, as real payment notifications do.
        return json.dumps({"out_trade_no": row.idempotency_key, "trade_no": row.reference, "status": row.status,
                           "amount": str(row.amount), "error": row.error}, sort_keys=True).encode()
    return json.dumps({"out_refund_no": row.idempotency_key, "refund_id": row.reference, "status": row.status,
                       "amount": str(row.amount), "error": row.error}, sort_keys=True).encode()


class SandboxGateway:
    name = "sandbox"

    def submit_refund(self, order: RefundOrder) -> SubmitResult:
        return self._submit("refund", order.store_id, order.idempotency_key, order.amount, order.currency,
                            order.payment_reference, "sandbox: insufficient merchant balance")

    def submit_charge(self, order: ChargeOrder) -> SubmitResult:
        return self._submit("charge", order.store_id, order.idempotency_key, order.amount, order.currency,
                            order.payment_reference, "sandbox: the buyer's payment was declined")

    def _submit(self, kind: str, store_id: int, key: str, amount: Decimal, currency: str, payment_reference: str,
                failure: str) -> SubmitResult:
        outcome = _next_outcome()
        if outcome == "reject":
            raise GatewayError("sandbox: payment closed")
        now = clock.now()
        config = _config()
        with transaction.atomic():
            # Keyed like a real provider: a second request with the same key gets the first answer.
            row, created = SandboxGatewayRefund.objects.get_or_create(
                idempotency_key=key,
                defaults={"store_id": store_id, "kind": kind, "payment_reference": payment_reference,
                          "reference": f"SBX{secrets.token_hex(8).upper()}", "amount": amount,
                          "currency": currency, "status": "pending", "created_at": now,
                          "callbacks_pending": int(config["duplicate_callbacks"]),
                          "callback_at": now + dt.timedelta(seconds=config["callback_delay_seconds"]),
                          "error": failure if outcome == "fail" else ""},
            )
        if created:
            # The money moves (or the refusal is decided) on the gateway's side now; the merchant learns
            # of it from the callback.
            row.status = "failed" if outcome == "fail" else "succeeded"
            row.settled_at = now
            row.save(update_fields=["status", "settled_at"])
            if outcome == "timeout":
                raise GatewayTimeout("sandbox: no answer in time")
        return SubmitResult(status="pending", reference=row.reference)

    def query_refund(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        row = SandboxGatewayRefund.objects.filter(store_id=store_id, kind="refund",
                                                  idempotency_key=idempotency_key).first()
        return None if row is None else _record(row)

    def query_charge(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        row = SandboxGatewayRefund.objects.filter(store_id=store_id, kind="charge",
                                                  idempotency_key=idempotency_key).first()
        return None if row is None else _record(row)

    def parse_callback(self, *, body: bytes, headers: dict[str, str]) -> CallbackEvent:
        given = headers.get(SIGNATURE_HEADER.lower(), "")
        if not given or not hmac.compare_digest(given, sign(body)):
            raise InvalidSignature("sandbox callback signature does not verify")
        try:
            data = json.loads(body)
            if "out_trade_no" in data:
                return CallbackEvent(idempotency_key=str(data["out_trade_no"]), reference=str(data["trade_no"]),
                                     status=str(data["status"]), amount=Decimal(str(data["amount"])),
                                     error=str(data.get("error") or ""), kind="charge")
            return CallbackEvent(idempotency_key=str(data["out_refund_no"]), reference=str(data["refund_id"]),
                                 status=str(data["status"]), amount=Decimal(str(data["amount"])),
                                 error=str(data.get("error") or ""))
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise InvalidSignature("sandbox callback body is malformed") from exc

    def daily_records(self, *, store_id: int, day: dt.date, tz: dt.tzinfo) -> list[GatewayRecord]:
        start, end = local_day_bounds(day, tz)
        rows = SandboxGatewayRefund.objects.filter(store_id=store_id, created_at__gte=start,
                                                   created_at__lt=end).order_by("id")
        return [_record(row) for row in rows]


def local_day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in a time zone, as aware instants (a day need not last 24 hours)."""
    return (dt.datetime.combine(day, dt.time.min, tzinfo=tz),
            dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz))


def _record(row: SandboxGatewayRefund) -> GatewayRecord:
    return GatewayRecord(idempotency_key=row.idempotency_key, reference=row.reference, amount=row.amount,
                         status=row.status, at=row.settled_at or row.created_at)


def due_callbacks(*, now: dt.datetime | None = None) -> list[tuple[bytes, dict[str, str]]]:
    """Takes the callbacks due by `now` off the sandbox's queue and returns them (body, headers), one per
    copy owed; the caller delivers them. A timed-out refund still gets its callbacks, late."""
    now = now or clock.now()
    out: list[tuple[bytes, dict[str, str]]] = []
    with transaction.atomic():
        rows = list(SandboxGatewayRefund.objects.select_for_update(skip_locked=True)
                    .filter(callbacks_pending__gt=0, callback_at__lte=now).exclude(status="pending").order_by("id"))
        for row in rows:
            body = callback_body(row)
            out.extend((body, {SIGNATURE_HEADER.lower(): sign(body)}) for _ in range(row.callbacks_pending))
            row.callbacks_pending = 0
            row.save(update_fields=["callbacks_pending"])
    return out
