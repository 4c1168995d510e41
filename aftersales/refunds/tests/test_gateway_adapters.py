"""The real providers' adapters carry request shapes only: every call of the port refuses, naming the
provider, instead of moving (or pretending to move) money."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aftersales.refunds.gateways import RefundOrder, get_gateway
from aftersales.refunds.gateways.base import ChargeOrder
from aftersales.refunds.gateways.stripe import StripeGateway
from aftersales.refunds.gateways.wechat import WechatPayGateway

ORDER = RefundOrder(store_id=1, idempotency_key="rf1-2-1", amount=Decimal("12.34"), currency="CNY",
                    payment_reference="pay-1", reason="AS-000001 refund step 1")


@pytest.mark.parametrize(("name", "title"), [("alipay", "Alipay"), ("wechat", "WeChat Pay"), ("stripe", "Stripe")])
def test_every_call_of_an_unwired_adapter_refuses_and_names_the_provider(name, title):
    gateway = get_gateway(name)
    calls = [
        lambda: gateway.submit_refund(ORDER),
        lambda: gateway.query_refund(store_id=1, idempotency_key="k"),
        lambda: gateway.submit_charge(ChargeOrder(store_id=1, idempotency_key="ch1-2-1", amount=Decimal("5.00"),
                                                  currency="CNY", payment_reference="pay-1", description="difference")),
        lambda: gateway.query_charge(store_id=1, idempotency_key="k"),
        lambda: gateway.parse_callback(body=b"{}", headers={}),
        lambda: gateway.daily_records(store_id=1, day=dt.date(2026, 11, 11), tz=dt.UTC),
    ]
    for call in calls:
        with pytest.raises(NotImplementedError, match=f"configure {title} credentials"):
            call()


def test_request_shapes_carry_the_idempotency_key_and_the_amount_in_minor_units():
    headers, form = StripeGateway().refund_request(ORDER)
    assert headers == {"Idempotency-Key": "rf1-2-1"}
    assert form["amount"] == 1234 and form["payment_intent"] == "pay-1"
    body = WechatPayGateway().refund_request(ORDER, paid_total=Decimal("20.00"), notify_url="https://shop.example/n")
    assert body["out_refund_no"] == "rf1-2-1"
    assert body["amount"] == {"refund": 1234, "total": 2000, "currency": "CNY"}
