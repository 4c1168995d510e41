"""The port every payment gateway implements.

Real providers share a shape: a refund is requested with a key the merchant chooses (Alipay
`out_request_no`, WeChat Pay `out_refund_no`, Stripe's `Idempotency-Key`), the provider pays a key at
most once, answers "accepted" at once and confirms later by a signed callback, can be asked for the
status of a key, and publishes a daily bill.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class GatewayError(Exception):
    """The gateway refused the request outright (bad account, closed payment): the attempt failed."""


class GatewayTimeout(Exception):
    """No answer in time: the refund may or may not have been made. Never resend without asking."""


@dataclass(frozen=True)
class RefundOrder:
    store_id: int
    idempotency_key: str
    amount: Decimal
    currency: str
    payment_reference: str
    reason: str


@dataclass(frozen=True)
class ChargeOrder:
    """Taking money from the buyer (a dearer replacement's difference), keyed like a refund: Alipay and
    WeChat Pay `out_trade_no`, Stripe's `Idempotency-Key`."""

    store_id: int
    idempotency_key: str
    amount: Decimal
    currency: str
    # The original payment's reference, for gateways that charge the account the buyer paid with.
    payment_reference: str
    description: str


@dataclass(frozen=True)
class SubmitResult:
    # "pending" (confirmation will come by callback), "succeeded" or "failed".
    status: str
    reference: str
    error: str = ""


@dataclass(frozen=True)
class GatewayRecord:
    """One refund as the gateway sees it (a status answer or a bill row)."""

    idempotency_key: str
    reference: str
    amount: Decimal
    status: str
    at: dt.datetime


@dataclass(frozen=True)
class CallbackEvent:
    idempotency_key: str
    reference: str
    status: str  # "succeeded" or "failed"
    amount: Decimal
    error: str = ""
    kind: str = "refund"  # or "charge"


class PaymentGateway(Protocol):
    name: str

    def submit_refund(self, order: RefundOrder) -> SubmitResult:
        """Ask for a refund. Raises GatewayTimeout when the outcome is unknown, GatewayError on refusal."""
        ...

    def query_refund(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        """What the gateway knows of this key; None when it never received it."""
        ...

    def submit_charge(self, order: ChargeOrder) -> SubmitResult:
        """Take money from the buyer; confirmed later by callback like a refund. Same errors."""
        ...

    def query_charge(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        ...

    def parse_callback(self, *, body: bytes, headers: dict[str, str]) -> CallbackEvent:
        """Check the signature and read the event; raises InvalidSignature when it does not verify."""
        ...

    def daily_records(self, *, store_id: int, day: dt.date, tz: dt.tzinfo) -> list[GatewayRecord]:
        """The gateway's bill (refunds and charges) for one day in the store's time zone, for
        reconciliation."""
        ...


class InvalidSignature(Exception):
    pass


class UnwiredGateway:
    """A real provider's adapter that shows its request shapes but has no transport yet: every call of
    the port says so, rather than pretending to move money. A deployment subclasses it with the
    provider's credentials, signing and HTTP client."""

    name = ""
    title = ""

    def _unwired(self) -> NotImplementedError:
        return NotImplementedError(f"configure {self.title} credentials and a transport to use this adapter")

    def submit_refund(self, order: RefundOrder) -> SubmitResult:
        raise self._unwired()

    def query_refund(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        raise self._unwired()

    def submit_charge(self, order: ChargeOrder) -> SubmitResult:
        raise self._unwired()

    def query_charge(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        raise self._unwired()

    def parse_callback(self, *, body: bytes, headers: dict[str, str]) -> CallbackEvent:
        raise self._unwired()

    def daily_records(self, *, store_id: int, day: dt.date, tz: dt.tzinfo) -> list[GatewayRecord]:
        raise self._unwired()
