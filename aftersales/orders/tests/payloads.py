"""Order payloads as a shop's system sends them, for the import tests."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from aftersales.stores.services import create_api_token


def order_payload(external_id: str = "T1001", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "external_id": external_id,
        "buyer": {"external_id": "BUYER-1", "name": "张伟", "email": "zw@example.com", "phone": "13800000001"},
        "placed_at": "2026-11-11T00:05:12+08:00",
        "currency": "CNY",
        "shipping_fee": "0.00",
        "free_shipping_threshold": "99.00",
        "channel": "online",
        "lines": [
            {"line_no": 1, "sku": "TSHIRT-M", "name": "T恤 M", "category": "apparel", "quantity": 2,
             "unit_price": "69.00", "discount_allocated": "10.00"},
            {"line_no": 2, "sku": "MILK-1L", "name": "牛奶", "category": "fresh_food", "quantity": 1,
             "unit_price": "58.00", "perishable": True, "near_expiry_disclosed": True,
             "nonreturnable_confirmation": "explicit"},
        ],
        "payments": [
            {"method": "alipay", "amount": "166.00", "fee": "1.00", "reference": "AP-1"},
            {"method": "coupon", "amount": "20.00"},
        ],
        "shipments": [
            {"carrier": "SF", "tracking_number": "SF001", "shipped_at": "2026-11-11T18:00:00+08:00",
             "signed_at": "2026-11-13T10:21:00+08:00"},
        ],
    }
    payload.update(overrides)
    return payload


def token_client(store: Any, scopes: list[str]) -> Client:
    _, raw = create_api_token(store=store, name="erp", scopes=scopes)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post_orders(client: Client, orders: list[Any]) -> Any:
    return client.post("/api/v1/orders/import", data=json.dumps({"orders": orders}), content_type="application/json")
