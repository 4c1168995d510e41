"""Alipay (支付宝) adapter skeleton: the request shapes of the open platform's refund API.

Not wired to the network: a deployment supplies the app id, its private key and Alipay's public key,
signs with RSA2 and sends the form to https://openapi.alipay.com/gateway.do.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .base import RefundOrder, UnwiredGateway


class AlipayGateway(UnwiredGateway):
    """Callbacks: a posted form (notify_id, out_biz_no, refund_fee, gmt_refund, sign) verified with
    Alipay's RSA2 public key over the sorted key=value pairs without sign and sign_type. Daily bill:
    alipay.data.dataservice.bill.downloadurl.query with bill_type=trade, bill_date=YYYY-MM-DD."""

    title = "Alipay"
    name = "alipay"

    def refund_request(self, order: RefundOrder, *, app_id: str) -> dict[str, Any]:
        # alipay.trade.refund is synchronous for the money, but `out_request_no` makes a repeat safe:
        # Alipay answers a repeated number with the first result instead of refunding again.
        return {
            "app_id": app_id, "method": "alipay.trade.refund", "format": "JSON", "charset": "utf-8",
            "sign_type": "RSA2", "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"), "version": "1.0",
            "biz_content": json.dumps({
                "trade_no": order.payment_reference, "refund_amount": str(order.amount),
                "out_request_no": order.idempotency_key, "refund_reason": order.reason[:256],
            }, ensure_ascii=False),
        }

    def query_request(self, *, payment_reference: str, idempotency_key: str, app_id: str) -> dict[str, Any]:
        return {"app_id": app_id, "method": "alipay.trade.fastpay.refund.query", "sign_type": "RSA2",
                "biz_content": json.dumps({"trade_no": payment_reference, "out_request_no": idempotency_key})}
