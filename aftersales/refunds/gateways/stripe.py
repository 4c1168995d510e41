"""Stripe adapter skeleton: the request shapes of the Refunds API.

Not wired to the network: a deployment supplies the secret key and the webhook signing secret.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .base import CallbackEvent, ChargeOrder, GatewayRecord, RefundOrder, SubmitResult

# Currencies Stripe counts without a minor unit.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND"})


def minor_units(amount: Decimal, currency: str) -> int:
    return int(amount if currency.upper() in ZERO_DECIMAL else (amount * 100).to_integral_value())


class StripeGateway:
    name = "stripe"

    def refund_request(self, order: RefundOrder) -> tuple[dict[str, str], dict[str, Any]]:
        # POST https://api.stripe.com/v1/refunds (form-encoded); the Idempotency-Key header makes a
        # retried request return the first refund instead of creating another.
        headers = {"Idempotency-Key": order.idempotency_key}
        form = {"payment_intent": order.payment_reference, "amount": minor_units(order.amount, order.currency),
                "reason": "requested_by_customer", "metadata[aftersales_key]": order.idempotency_key}
        return headers, form

    def submit_refund(self, order: RefundOrder) -> SubmitResult:
        raise NotImplementedError("configure a Stripe key and a transport to use this adapter")

    def query_refund(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        # GET /v1/refunds?payment_intent=... and match metadata[aftersales_key].
        raise NotImplementedError

    def submit_charge(self, order: ChargeOrder) -> SubmitResult:
        raise NotImplementedError("configure credentials and a transport to use this adapter")

    def query_charge(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        raise NotImplementedError

    def parse_callback(self, *, body: bytes, headers: dict[str, str]) -> CallbackEvent:
        # Stripe-Signature: t=...,v1=HMAC-SHA256(secret, f"{t}.{body}"); events refund.updated / charge.refund.updated.
        raise NotImplementedError

    def daily_records(self, *, store_id: int, day: dt.date, tz: dt.tzinfo) -> list[GatewayRecord]:
        # GET /v1/balance_transactions?type=refund&created[gte]=...&created[lt]=...
        raise NotImplementedError
