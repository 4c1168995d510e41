"""Set-based writes of validated orders: a few statements per chunk of orders, never one per line.

One plan serves both databases; only the transport of new rows differs. On PostgreSQL new rows go in
with COPY (psycopg 3), which is several times faster than INSERT for the lines, and the new orders'
ids are drawn from their sequence first, so that their lines, payments and shipments can be copied
right behind them without reading anything back; elsewhere (SQLite) `bulk_create` does the same job.
Updates and deletes are the same ORM calls on both.

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
from operator import attrgetter
from typing import Any

from django.db import DataError, IntegrityError, OperationalError, connection, transaction
from django.db.models import Field, Model
from django.db.models.expressions import RawSQL

from aftersales.core import clock
from aftersales.core.bulk_writes import update_rows
from aftersales.core.events import publish_on_commit
from aftersales.stores.models import Buyer, Store

from .models import Order, OrderLine, Payment, Shipment
from .records import LINE_FIELDS as LINE_VALUE_FIELDS
from .records import PAYMENT_FIELDS as PAYMENT_VALUE_FIELDS
from .records import SHIPMENT_FIELDS as SHIPMENT_VALUE_FIELDS
from .records import OrderRecord

ORDER_VALUE_FIELDS = ["buyer_id", "placed_at", "currency", "shipping_fee", "free_shipping_threshold", "total_paid",
                      "channel"]
ORDER_FIELDS = ["id", "store", "external_id", *ORDER_VALUE_FIELDS, "imported_at"]
LINE_FIELDS = ["store", "order", *LINE_VALUE_FIELDS]
PAYMENT_FIELDS = ["store", "order", *PAYMENT_VALUE_FIELDS]
SHIPMENT_FIELDS = ["store", "order", *SHIPMENT_VALUE_FIELDS]
DEADLOCK_DETECTED = "40P01"
BuyerDetails = tuple[str, str, str]  # name, email, phone
NO_DETAILS: BuyerDetails = ("", "", "")


@dataclass
class SaveResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    lines: int = 0
    # external_id -> (code, message) for orders the database refused after validation passed.
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)


def save_orders(*, store: Store, orders: Sequence[OrderRecord]) -> SaveResult:
    """Write validated orders (distinct external_ids) for one store, each one whole or not at all.

    The chunk is one transaction. If it fails on a constraint, the usual cause is a concurrent import
    that created one of these orders first: one retry then sees it and updates it (likewise when
    PostgreSQL broke a deadlock with another import by aborting this one). If it fails again, the
    orders are written one by one so that the single order the database refuses does not take the
    others with it.
    """
    if not orders:
        return SaveResult()
    use_copy = connection.vendor == "postgresql"
    for _attempt in range(2):
        try:
            with transaction.atomic():
                return _save(store, orders, use_copy)
        except (IntegrityError, DataError):
            continue
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
                raise
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


def _save(store: Store, orders: Sequence[OrderRecord], use_copy: bool) -> SaveResult:
    now = clock.now()
    buyer_ids = _upsert_buyers(store, orders, use_copy)
    # Locking the orders we are about to rewrite makes two imports of the same order take turns.
    existing: dict[str, int] = dict(
        Order.objects.filter(store=store, external_id__in=_among([o.external_id for o in orders], use_copy))
        .select_for_update().values_list("external_id", "id")
    )
    new = [o for o in orders if o.external_id not in existing]
    old = [o for o in orders if o.external_id in existing]

    order_ids = dict(existing)
    if use_copy:
        order_ids.update(zip((o.external_id for o in new), _reserve_ids(Order, len(new)), strict=True))
        _copy(Order, ORDER_FIELDS, [_order_row(store, o, buyer_ids, now, order_ids[o.external_id]) for o in new])
    elif new:
        _bulk_create(Order, ORDER_FIELDS[1:], [_order_row(store, o, buyer_ids, now)[1:] for o in new])
        order_ids.update(
            Order.objects.filter(store=store, external_id__in=[o.external_id for o in new])
            .values_list("external_id", "id")
        )
    if old:
        # One UPDATE joined to arrays on PostgreSQL: bulk_update's CASE per field and row took minutes to
        # compile for a re-sent file of 200,000 lines.
        update_rows(Order, [Order(pk=existing[o.external_id], **_order_values(store, o, buyer_ids)) for o in old],
                    ORDER_VALUE_FIELDS)

    store_id = store.pk
    new_lines = [(store_id, order_ids[o.external_id], *line) for o in new for line in o.lines]
    lines_written = len(new_lines)
    if old:
        lines_written += _replace_lines(store, old, existing, new_lines)
        old_ids = [existing[o.external_id] for o in old]
        Payment.objects.filter(store=store, order_id__in=old_ids).delete()
        Shipment.objects.filter(store=store, order_id__in=old_ids).delete()
        # Re-sent orders may carry facts that open cases were decided without (a signature, say).
        publish_on_commit("orders.updated", {"store_id": store_id, "order_ids": old_ids})
    insert = _copy if use_copy else _bulk_create
    insert(OrderLine, LINE_FIELDS, new_lines)
    insert(Payment, PAYMENT_FIELDS, [(store_id, order_ids[o.external_id], *p) for o in orders for p in o.payments])
    insert(Shipment, SHIPMENT_FIELDS, [(store_id, order_ids[o.external_id], *s) for o in orders for s in o.shipments])
    return SaveResult(created=[o.external_id for o in new], updated=[o.external_id for o in old], lines=lines_written)


def _order_values(store: Store, order: OrderRecord, buyer_ids: dict[str, int]) -> dict[str, Any]:
    return {"buyer_id": buyer_ids[order.buyer[0]], "placed_at": order.placed_at,
            "currency": order.currency or store.currency, "shipping_fee": order.shipping_fee,
            "free_shipping_threshold": order.free_shipping_threshold, "total_paid": order.total_paid(),
            "channel": order.channel}


def _order_row(store: Store, order: OrderRecord, buyer_ids: dict[str, int], now: dt.datetime,
               order_id: int | None = None) -> tuple[Any, ...]:
    return (order_id, store.pk, order.external_id, buyer_ids[order.buyer[0]], order.placed_at,
            order.currency or store.currency, order.shipping_fee, order.free_shipping_threshold, order.total_paid(),
            order.channel, now)


def _replace_lines(store: Store, old: Sequence[OrderRecord], existing: dict[str, int],
                   new_lines: list[tuple[Any, ...]]) -> int:
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
            key = (order_id, line[0])
            sent.add(key)
            if key in stored:
                updates.append(OrderLine(pk=stored[key], **dict(zip(LINE_VALUE_FIELDS, line, strict=True))))
            else:
                new_lines.append((store.pk, order_id, *line))
    gone = [pk for key, pk in stored.items() if key not in sent and pk not in referenced]
    if gone:
        OrderLine.objects.filter(store=store, pk__in=gone).delete()
    if updates:
        update_rows(OrderLine, updates, LINE_VALUE_FIELDS)
    return len(updates)


def _upsert_buyers(store: Store, orders: Sequence[OrderRecord], postgres: bool) -> dict[str, int]:
    """The buyers of these orders, created when new. Like stores.services.upsert_buyer, but for a
    whole chunk in three statements: a non-empty name, e-mail or phone from the feed replaces ours."""
    wanted: dict[str, BuyerDetails] = {}
    for key, *details in (order.buyer for order in orders):
        # A later order's details, where given, as if each order came alone.
        wanted[key] = merged_details(details, wanted.get(key, NO_DETAILS))
    stored = _stored_details(store, list(wanted), postgres)
    # Sorted, so that two transactions inserting the same new buyers (two writers of one import) lock
    # them in the same order: the second waits for the first instead of deadlocking with it.
    missing = sorted(key for key in wanted if key not in stored)
    if missing:
        # ignore_conflicts: a buyer created meanwhile by another import is simply read back below.
        Buyer.objects.bulk_create(
            [Buyer(store=store, external_id=key, name=wanted[key][0], email=wanted[key][1], phone=wanted[key][2])
             for key in missing],
            batch_size=1000, ignore_conflicts=True,
        )
        stored.update(_stored_details(store, missing, postgres))
    _write_details(stored, wanted)
    return {key: pk for key, (pk, *_) in stored.items()}


def restate_buyers(store: Store, details: dict[str, BuyerDetails]) -> None:
    """Gives these buyers (external_id -> name, e-mail, phone) the details sent, where not empty; for
    imports that wrote them in another order than the file's."""
    _write_details(_stored_details(store, list(details), connection.vendor == "postgresql"), details)


def merged_details(new: Sequence[str], old: Sequence[str]) -> BuyerDetails:
    """A buyer's name, e-mail and phone once `new` arrives: each non-empty value replaces the old one."""
    name, email, phone = (a or b for a, b in zip(new, old, strict=True))
    return name, email, phone


def _stored_details(store: Store, keys: list[str], postgres: bool) -> dict[str, tuple[int, str, str, str]]:
    rows = Buyer.objects.filter(store=store, external_id__in=_among(keys, postgres)).values_list(
        "external_id", "pk", "name", "email", "phone")
    return {key: (pk, name, email, phone) for key, pk, name, email, phone in rows}


def _write_details(stored: dict[str, tuple[int, str, str, str]], details: dict[str, BuyerDetails]) -> None:
    """Writes each buyer's details merged into what is stored, for the buyers whose details change."""
    changed = []
    for key, (pk, *current) in stored.items():
        if key in details:
            merged = merged_details(details[key], current)
            if merged != tuple(current):
                changed.append(Buyer(pk=pk, name=merged[0], email=merged[1], phone=merged[2]))
    if changed:
        changed.sort(key=attrgetter("pk"))  # the same lock order in every writer
        Buyer.objects.bulk_update(changed, ["name", "email", "phone"], batch_size=500)


def _among(values: list[str], postgres: bool) -> Any:
    """The right side of `__in` for thousands of values. On PostgreSQL one array parameter: a statement
    with thousands of placeholders costs psycopg more to rewrite than the database to run."""
    return RawSQL("SELECT unnest(%s::varchar[])", [values]) if postgres else values


def _reserve_ids(model: type[Model], count: int) -> list[int]:
    """`count` fresh primary keys from the table's own sequence (PostgreSQL), so rows can be copied
    with their ids and their children right behind them. Other sessions draw from the same sequence,
    so the ids are unique but not necessarily consecutive."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, count])
        return [row[0] for row in cursor.fetchall()]


def _columns(model: type[Model], fields: list[str]) -> list[Field[Any, Any]]:
    concrete = [model._meta.get_field(name) for name in fields]
    return [f for f in concrete if isinstance(f, Field)]


def _copy(model: type[Model], fields: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
    rows = list(rows)
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _columns(model, fields) if f.column)
    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"  # names from our models, never input
    ) as copy:
        for row in rows:
            copy.write_row(row)


def _bulk_create(model: type[Model], fields: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
    attnames = [f.attname for f in _columns(model, fields)]
    objects = [model(**dict(zip(attnames, row, strict=True))) for row in rows]
    if objects:
        model._default_manager.bulk_create(objects, batch_size=500)
