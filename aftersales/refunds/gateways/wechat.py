"""WeChat Pay (微信支付) API v3 adapter skeleton: the request shapes of domestic refunds.

Not wired to the network: a deployment supplies the merchant id, its API v3 key and certificate serial,
signs each request (WECHATPAY2-SHA256-RSA2048) and decrypts callbacks with AEAD_AES_256_GCM.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .base import RefundOrder, UnwiredGateway

REFUNDS_URL = "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds"


def fen(amount: Decimal) -> int:
    # WeChat Pay counts in fen (分), as integers.
    return int((amount * 100).to_integral_value())


class WechatPayGateway(UnwiredGateway):
    """Callbacks: headers Wechatpay-Timestamp, -Nonce, -Signature and -Serial; the resource is encrypted
    and carries refund_status SUCCESS / CLOSED / ABNORMAL. Daily bill: GET
    /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=REFUND, then download the file."""

    title = "WeChat Pay"
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
