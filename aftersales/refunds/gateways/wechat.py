"""WeChat Pay (微信支付) API v3 adapter skeleton: the request shapes of domestic refunds.

Not wired to the network: a deployment supplies the merchant id, its API v3 key and certificate serial,
signs each request (WECHATPAY2-SHA256-RSA2048) and decrypts callbacks with AEAD_AES_256_GCM.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .base import CallbackEvent, ChargeOrder, GatewayRecord, RefundOrder, SubmitResult

REFUNDS_URL = "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds"


def fen(amount: Decimal) -> int:
    # WeChat Pay counts in fen (分), as integers.
    return int((amount * 100).to_integral_value())


class WechatPayGateway:
    name = "wechat"

    def refund_request(self, order: RefundOrder, *, paid_total: Decimal, notify_url: str) -> dict[str, Any]:
        # POST REFUNDS_URL; `out_refund_no` is the idempotency key: WeChat refunds one number once.
        return {
            "transaction_id": order.payment_reference, "out_refund_no": order.idempotency_key,
            "reason": order.reason[:80], "notify_url": notify_url,
            "amount": {"refund": fen(order.amount), "total": fen(paid_total), "currency": order.currency},
        }

    def query_url(self, idempotency_key: str) -> str:
        return f"{REFUNDS_URL}/{idempotency_key}"

    def submit_refund(self, order: RefundOrder) -> SubmitResult:
        raise NotImplementedError("configure WeChat Pay credentials and a transport to use this adapter")

    def query_refund(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        raise NotImplementedError

    def submit_charge(self, order: ChargeOrder) -> SubmitResult:
        raise NotImplementedError("configure credentials and a transport to use this adapter")

    def query_charge(self, *, store_id: int, idempotency_key: str) -> GatewayRecord | None:
        raise NotImplementedError

    def parse_callback(self, *, body: bytes, headers: dict[str, str]) -> CallbackEvent:
        # Headers Wechatpay-Timestamp, Wechatpay-Nonce, Wechatpay-Signature, Wechatpay-Serial; the
        # resource is encrypted and carries refund_status SUCCESS / CLOSED / ABNORMAL.
        raise NotImplementedError

    def daily_records(self, *, store_id: int, day: dt.date, tz: dt.tzinfo) -> list[GatewayRecord]:
        # GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=REFUND, then download the file.
        raise NotImplementedError
