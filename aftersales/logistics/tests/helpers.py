"""Scenarios shared by the logistics, warehouse and repairs tests, built through the services."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from django.test import Client
from PIL import Image

from aftersales.cases import services as case_services
from aftersales.cases.models import Case
from aftersales.logistics import services
from aftersales.logistics.models import Warehouse
from aftersales.stores.models import Store
from aftersales.testing import factories as f


def png(color: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, "PNG")
    return buffer.getvalue()


def warehouse(store: Store, **overrides: Any) -> Warehouse:
    admin = f.staff(store, "admin")
    fields = {"code": "SH1", "name": "上海退货仓", "contact_name": "王仓管", "phone": "021-5555-0101",
              "province": "上海市", "city": "上海市", "address": "浦东新区申江路 100 号", "postcode": "201203",
              "is_default": True, **overrides}
    return services.create_warehouse(actor=admin, **fields)


def approved_case(store: Store, kind: str = "return_refund", *, line_index: int = 0, reason: str = "quality") -> Case:
    """A case of `kind` on a fresh order, approved so the goods (or device) are expected."""
    agent = f.staff(store, "admin")
    order = f.make_order(store)
    line = order.lines.order_by("line_no")[line_index]
    case = case_services.create_case(actor=agent, kind=kind, order_id=order.pk, reason_code=reason,
                                     lines=[case_services.LineRequest(order_line_id=line.pk, quantity=1)])
    if case.status == "pending_review":
        case = case_services.transition_case(actor=agent, case_id=case.pk, action="approve")
    return case


def aggregator_body(store: Store, *, company: str, number: str, state: str, events: list[tuple[str, str, str]],
                    secret: str | None = None) -> dict[str, str]:
    """A push in the aggregator format: events are (time, status word, context), newest first."""
    param = json.dumps({"status": "polling", "message": "", "lastResult": {
        "message": "ok", "state": state, "ischeck": "1" if state == "3" else "0", "com": company, "nu": number,
        "data": [{"time": t, "ftime": t, "status": s, "context": c, "areaName": "上海"} for t, s, c in events]}},
        ensure_ascii=False)
    secret = secret if secret is not None else services.settings_for(store.pk).webhook_secret
    sign = hashlib.md5((param + secret).encode()).hexdigest().upper()
    return {"param": param, "sign": sign}


def post_aggregator(store: Store, body: dict[str, str], *, expect: int = 200) -> dict[str, Any]:
    response = Client().post(f"/api/v1/logistics/webhooks/{store.slug}/aggregator", body)
    assert response.status_code == expect, response.content
    return response.json()


def post_generic(store: Store, payload: dict[str, Any], *, expect: int = 200, secret: str | None = None,
                 raw: bytes | None = None) -> dict[str, Any]:
    body = raw if raw is not None else json.dumps(payload).encode()
    secret = secret if secret is not None else services.settings_for(store.pk).webhook_secret
    response = Client().post(f"/api/v1/logistics/webhooks/{store.slug}/generic", body,
                             content_type="application/json",
                             headers={"X-Signature": services.generic_signature(body, secret)})
    assert response.status_code == expect, response.content
    return response.json()
