"""Stripe adapter skeleton: the request shapes of the Refunds API.

Not wired to the network: a deployment supplies the secret key and the webhook signing secret.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .base import RefundOrder, UnwiredGateway

# Currencies Stripe counts without a minor unit.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND"})


def minor_units(amount: Decimal, currency: str) -> int:
    return int(amount if currency.upper() in ZERO_DECIMAL else (amount * 100).to_integral_value())


class StripeGateway(UnwiredGateway):
    """Callbacks: Stripe-Signature t=...,v1=HMAC-SHA256(secret, f"{t}.{body}"), events refund.updated and
    charge.refund.updated. Status of a key: GET /v1/refunds?payment_intent=... matched on
    metadata[aftersales_key]. Daily records: GET /v1/balance_transactions?type=refund&created[gte]=...&created[lt]=..."""

    title = "Stripe"
    name = "stripe"

    def refund_request(self, order: RefundOrder) -> tuple[dict[str, str], dict[str, Any]]:
        # POST https://api.stripe.com/v1/refunds (form-encoded); the Idempotency-Key header makes a
        # retried request return the first refund instead of creating another.
        headers = {"Idempotency-Key": order.idempotency_key}
        form = {"payment_intent": order.payment_reference, "amount": minor_units(order.amount, order.currency),
                "reason": "requested_by_customer", "metadata[aftersales_key]": order.idempotency_key}
        return headers, form
