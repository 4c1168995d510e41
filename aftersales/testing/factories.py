"""Build realistic stores, people and orders for tests, always through the services where one exists."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model

from aftersales.orders.models import Order, OrderLine, Payment, Shipment
from aftersales.stores import services as store_services
from aftersales.stores.models import Buyer, Membership, Store
from aftersales.stores.permissions import Actor, buyer_actor, staff_actor

_seq = itertools.count(1)
SIGNED_AT = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


def make_store(**attributes: Any) -> Store:
    n = next(_seq)
    attributes.setdefault("name", f"Store {n}")
    attributes.setdefault("slug", f"store-{n}")
    return store_services.create_store(**attributes)


def make_staff(store: Store, role: str = "agent", username: str | None = None) -> Any:
    username = username or f"{role}-{next(_seq)}"
    return store_services.create_staff_user(store=store, username=username, password="pw-for-tests-only", role=role)


def staff(store: Store, role: str = "agent") -> Actor:
    user = make_staff(store, role)
    return staff_actor(store_id=store.pk, user_id=user.pk, role=role, label=user.username)


def actor_for_user(user: Any, store: Store) -> Actor:
    membership = Membership.objects.get(user=user, store=store)
    return staff_actor(store_id=store.pk, user_id=user.pk, role=membership.role, label=user.username)


def make_buyer(store: Store, *, with_login: bool = False) -> Buyer:
    n = next(_seq)
    buyer = store_services.upsert_buyer(store=store, external_id=f"B{n}", name=f"买家{n}", email=f"b{n}@example.com")
    if with_login:
        buyer.user = get_user_model().objects.create_user(username=f"buyer-{n}", password="pw-for-tests-only")
        buyer.save(update_fields=["user"])
    return buyer


def buyer_of(buyer: Buyer) -> Actor:
    return buyer_actor(store_id=buyer.store_id, buyer_id=buyer.pk, label=buyer.name, user_id=buyer.user_id)


def make_order(
    store: Store,
    buyer: Buyer | None = None,
    *,
    lines: list[dict[str, Any]] | None = None,
    signed_at: dt.datetime | None = SIGNED_AT,
) -> Order:
    buyer = buyer or make_buyer(store)
    n = next(_seq)
    order = Order.objects.create(store=store, buyer=buyer, external_id=f"O{n}", placed_at=SIGNED_AT - dt.timedelta(days=2))
    specs = lines or [
        {"sku": "TSHIRT-M", "name": "T恤 M", "quantity": 2, "unit_price": Decimal("99.00"), "category": "apparel"},
        {"sku": "PHONE-1", "name": "手机", "quantity": 1, "unit_price": Decimal("2999.00"), "category": "electronics"},
    ]
    total = Decimal("0")
    for index, spec in enumerate(specs, start=1):
        line = OrderLine.objects.create(store=store, order=order, line_no=index, **spec)
        total += line.unit_price * line.quantity - line.discount_allocated
    order.total_paid = total
    order.save(update_fields=["total_paid"])
    Payment.objects.create(store=store, order=order, method="alipay", amount=total)
    if signed_at is not None:
        Shipment.objects.create(store=store, order=order, carrier="SF", tracking_number=f"SF{n:010d}",
                                shipped_at=signed_at - dt.timedelta(days=1), signed_at=signed_at)
    return order
