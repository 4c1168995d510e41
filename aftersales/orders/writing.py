"""Set-based writes of validated orders: a few statements per chunk of orders, never one per line.

One plan serves both databases; only the transport of new rows differs. On PostgreSQL new rows go in
with COPY (psycopg 3), which is several times faster than INSERT for the lines; elsewhere (SQLite)
`bulk_create` does the same job. Updates and deletes are the same ORM calls on both.

What a re-sent order does to what is already stored (the shop's system is the source of truth, but a
case must never lose the line it is about):
- the order's own fields are overwritten;
- lines are matched on `line_no`: a line that is sent again is updated in place (its id, and so every
  case that points at it, stays); a new `line_no` is inserted; a line that is no longer sent is
  deleted, unless a case references it, in which case it is kept as it was;
- payments and shipments are replaced wholesale: the feed gives them no stable key and nothing
  references them yet (if refunds ever point at payments, match them on reference here instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Field, Model

from aftersales.core import clock
from aftersales.stores.models import Buyer, Store

from .models import Order, OrderLine, Payment, Shipment
from .schemas import LineIn, OrderIn

ORDER_VALUE_FIELDS = ["buyer_id", "placed_at", "currency", "shipping_fee", "free_shipping_threshold", "total_paid",
                      "channel"]
ORDER_FIELDS = ["store", "external_id", *ORDER_VALUE_FIELDS, "imported_at"]
LINE_VALUE_FIELDS = list(LineIn.model_fields)
LINE_FIELDS = ["store", "order", *LINE_VALUE_FIELDS]
_line_values = attrgetter(*LINE_VALUE_FIELDS)
PAYMENT_FIELDS = ["store", "order", "method", "amount", "fee", "fee_paid_by_buyer", "reference"]
SHIPMENT_FIELDS = ["store", "order", "carrier", "tracking_number", "shipped_at", "signed_at"]


@dataclass
class SaveResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    lines: int = 0
    # external_id -> (code, message) for orders the database refused after validation passed.
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)


def save_orders(*, store: Store, orders: Sequence[OrderIn], use_copy: bool | None = None) -> SaveResult:
    """Write validated orders (distinct external_ids) for one store, each one whole or not at all.

    The chunk is one transaction. If it fails on a constraint, the usual cause is a concurrent import
    that created one of these orders first: one retry then sees it and updates it. If it fails again,
    the orders are written one by one so that the single order the database refuses does not take
    the others with it.
    """
    if not orders:
        return SaveResult()
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    for _attempt in range(2):
        try:
            with transaction.atomic():
                return _save(store, orders, use_copy)
        except (IntegrityError, DataError):
            continue
    result = SaveResult()
    for order in orders:
        try:
            with transaction.atomic():
                one = _save(store, [order], use_copy)
        except (IntegrityError, DataError) as exc:
            result.failed[order.external_id] = ("rejected_by_database", str(exc).splitlines()[0][:200])
            continue
        result.created += one.created
        result.updated += one.updated
        result.lines += one.lines
    return result


def _save(store: Store, orders: Sequence[OrderIn], use_copy: bool) -> SaveResult:
    now = clock.now()
    buyer_ids = _upsert_buyers(store, orders)
    external_ids = [o.external_id for o in orders]
    # Locking the orders we are about to rewrite makes two imports of the same order take turns.
    existing = dict(
        Order.objects.filter(store=store, external_id__in=external_ids).select_for_update()
        .values_list("external_id", "id")
    )
    new = [o for o in orders if o.external_id not in existing]
    old = [o for o in orders if o.external_id in existing]

    _insert(Order, ORDER_FIELDS, [_order_row(store, o, buyer_ids, now) for o in new], use_copy)
    order_ids = dict(existing)
    if new:
        order_ids.update(
            Order.objects.filter(store=store, external_id__in=[o.external_id for o in new])
            .values_list("external_id", "id")
        )
    if old:
        Order.objects.bulk_update(
            [Order(pk=existing[o.external_id], **_order_values(store, o, buyer_ids)) for o in old],
            ORDER_VALUE_FIELDS, batch_size=500,
        )

    new_lines = [_line_row(store.pk, order_ids[o.external_id], line) for o in new for line in o.lines]
    lines_written = len(new_lines)
    if old:
        lines_written += _replace_lines(store, old, existing, new_lines)
        old_ids = [existing[o.external_id] for o in old]
        Payment.objects.filter(store=store, order_id__in=old_ids).delete()
        Shipment.objects.filter(store=store, order_id__in=old_ids).delete()
    _insert(OrderLine, LINE_FIELDS, new_lines, use_copy)
    _insert(Payment, PAYMENT_FIELDS, [
        (store.pk, order_ids[o.external_id], p.method, p.amount, p.fee, p.fee_paid_by_buyer, p.reference)
        for o in orders for p in o.payments
    ], use_copy)
    _insert(Shipment, SHIPMENT_FIELDS, [
        (store.pk, order_ids[o.external_id], s.carrier, s.tracking_number, s.shipped_at, s.signed_at)
        for o in orders for s in o.shipments
    ], use_copy)
    return SaveResult(created=[o.external_id for o in new], updated=[o.external_id for o in old], lines=lines_written)


def _order_values(store: Store, order: OrderIn, buyer_ids: dict[str, int]) -> dict[str, Any]:
    # What the buyer paid is what the payments say, coupons and points included, since the refund
    # split works from the same payments; an order sent without payments is taken at its lines'
    # paid amounts plus shipping.
    if order.payments:
        total_paid = sum((p.amount for p in order.payments), Decimal("0"))
    else:
        total_paid = order.shipping_fee + sum(
            (line.unit_price * line.quantity - line.discount_allocated for line in order.lines), Decimal("0")
        )
    return {"buyer_id": buyer_ids[order.buyer.external_id], "placed_at": order.placed_at,
            "currency": order.currency or store.currency, "shipping_fee": order.shipping_fee,
            "free_shipping_threshold": order.free_shipping_threshold, "total_paid": total_paid,
            "channel": order.channel}


def _order_row(store: Store, order: OrderIn, buyer_ids: dict[str, int], now: dt.datetime) -> tuple[Any, ...]:
    values = _order_values(store, order, buyer_ids)
    return (store.pk, order.external_id, *(values[name] for name in ORDER_VALUE_FIELDS), now)


def _line_row(store_id: int, order_id: int, line: LineIn) -> tuple[Any, ...]:
    return (store_id, order_id, *_line_values(line))


def _replace_lines(store: Store, old: Sequence[OrderIn], existing: dict[str, int], new_lines: list[tuple[Any, ...]]) -> int:
    """Matches re-sent lines on line_no. Returns how many lines were written; appends inserts to new_lines."""
    old_ids = [existing[o.external_id] for o in old]
    stored = {
        (order_id, line_no): pk
        for pk, order_id, line_no in OrderLine.objects.filter(store=store, order_id__in=old_ids)
        .values_list("pk", "order_id", "line_no")
    }
    referenced = set(
        OrderLine.objects.filter(store=store, order_id__in=old_ids, case_lines__isnull=False).values_list("pk", flat=True)
    )
    updates: list[OrderLine] = []
    sent: set[tuple[int, int]] = set()
    for order in old:
        order_id = existing[order.external_id]
        for line in order.lines:
            key = (order_id, line.line_no)
            sent.add(key)
            if key in stored:
                updates.append(OrderLine(pk=stored[key], **line.__dict__))
            else:
                new_lines.append(_line_row(store.pk, order_id, line))
    gone = [pk for key, pk in stored.items() if key not in sent and pk not in referenced]
    if gone:
        OrderLine.objects.filter(store=store, pk__in=gone).delete()
    if updates:
        OrderLine.objects.bulk_update(updates, LINE_VALUE_FIELDS, batch_size=500)
    return len(updates)


def _upsert_buyers(store: Store, orders: Sequence[OrderIn]) -> dict[str, int]:
    """The buyers of these orders, created when new. Like stores.services.upsert_buyer, but for a
    whole chunk in three statements: a non-empty name, e-mail or phone from the feed replaces ours."""
    wanted = {o.buyer.external_id: o.buyer for o in orders}
    stored = {
        row[0]: row[1:]
        for row in Buyer.objects.filter(store=store, external_id__in=list(wanted))
        .values_list("external_id", "pk", "name", "email", "phone")
    }
    missing = [b for key, b in wanted.items() if key not in stored]
    if missing:
        # ignore_conflicts: a buyer created meanwhile by another import is simply read back below.
        Buyer.objects.bulk_create(
            [Buyer(store=store, external_id=b.external_id, name=b.name, email=b.email, phone=b.phone) for b in missing],
            batch_size=1000, ignore_conflicts=True,
        )
        stored.update(
            (row[0], row[1:]) for row in Buyer.objects.filter(store=store, external_id__in=[b.external_id for b in missing])
            .values_list("external_id", "pk", "name", "email", "phone")
        )
    changed = []
    for key, buyer in wanted.items():
        pk, name, email, phone = stored[key]
        merged = (buyer.name or name, buyer.email or email, buyer.phone or phone)
        if merged != (name, email, phone):
            changed.append(Buyer(pk=pk, name=merged[0], email=merged[1], phone=merged[2]))
    if changed:
        Buyer.objects.bulk_update(changed, ["name", "email", "phone"], batch_size=500)
    return {key: row[0] for key, row in stored.items()}


def _insert(model: type[Model], fields: list[str], rows: Iterable[tuple[Any, ...]], use_copy: bool) -> None:
    rows = list(rows)
    if not rows:
        return
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    if use_copy:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in concrete if isinstance(f, Field) and f.column)
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"  # names from our models, never input
        ) as copy:
            for row in rows:
                copy.write_row(row)
        return
    attnames = [f.attname for f in concrete if isinstance(f, Field)]
    model._default_manager.bulk_create(
        [model(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=500
    )
