# ruff: noqa: S608 (only the models' own table and column names are put into SQL text; values are parameters)
"""What opening a case about an order reads before anything is written: the order, with its store, the
store's policy and the buyer; every line of the order with what live cases already claim of it; and, on
PostgreSQL, everything else the new case needs.

Two requests for the same order must not both claim its last unit; requests on different orders never
wait for each other. Two ways to that, both used by `services.create_case`:

- Locked (everywhere): the order row is locked, and the claims are read after the lock is held (a later
  statement, so a fresh snapshot), never in the statement that waits for it. On PostgreSQL that is two
  statements: the order with its store, policy and buyer, locked; then, in one row, its lines and what
  is claimed of them, payments and shipments, the reason code, the store's timeout settings and SLA
  policies, and the ids the new rows will carry (case number, case id, case line ids).
- Unlocked (PostgreSQL, tried first): all of that in one statement with no lock, together with the
  version of the order's row (its xmin). The write that follows, one statement
  (`core.bulk_writes.insert_together`), goes ahead only if the order row is still that version and
  makes a new one (`core.bulk_writes.RowVersion`); on a conflict nothing is written and the case is
  opened the locked way. The locked way makes a new version too, so an unlocked read taken before it
  cannot write after it. Opening a case then costs two round trips and no transaction of its own.

Opening a case was 15 statements, each with its SQL built by the ORM; most of a create's time went
there. Elsewhere (SQLite) the plain ORM reads below do the locked job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from aftersales.core.bulk_writes import server_cursor
from aftersales.core.errors import NotFound
from aftersales.core.rows import columns_of, from_json, from_row, loads, width_of
from aftersales.core.sequences import postgres_sequence
from aftersales.orders.models import Order, OrderLine, Payment, Shipment
from aftersales.policies.models import StorePolicy
from aftersales.sla.models import SlaPolicy, TimeoutSetting
from aftersales.sla.selectors import overrides_from
from aftersales.stores.models import Buyer, Store
from aftersales.stores.permissions import Actor

from .models import Case, CaseLine, ReasonCode
from .states import Status


@dataclass(frozen=True)
class DrawnIds:
    """Ids the new case's rows will carry, drawn from their sequences before anything is written, so that
    every row can name its case and all of them go in one statement."""

    case_serial: int  # the number after the store's prefix
    case_id: int
    case_line_ids: list[int]


@dataclass
class OrderClaim:
    order: Order  # its store (with the store's policy) and buyer attached
    lines: Mapping[int, OrderLine]  # every line of the order by id, in line order
    claimed: Mapping[int, int]  # line id -> quantity live cases already claim (cancelled and expired free theirs)
    reason: ReasonCode | None = None  # the active reason code asked for, if any
    # Read here only on PostgreSQL (None: whoever needs them reads them).
    payments: list[Payment] | None = None
    shipments: list[Shipment] | None = None
    timeouts: tuple[str, dict[str, int | None]] | None = None
    sla_policies: list[SlaPolicy] | None = None
    ids: DrawnIds | None = None  # PostgreSQL only
    # The version of the order's row as read without the lock (PostgreSQL's xmin). Every case written on
    # PostgreSQL makes a new one (core.bulk_writes.RowVersion), so that a write decided on an older
    # unlocked read of the claims fails.
    version: str | None = None


def read(actor: Actor, order_id: int, *, reason_code: str | None, line_count: int, locked: bool = True) -> OrderClaim:
    """The order (locked) and what a new case on it needs. NotFound for an order of another store, or
    of another buyer when a buyer asks.

    `locked=False` (PostgreSQL only) takes no lock and reads everything in one statement, with the
    version of the order's row (`OrderClaim.version`), which the write must check and renew
    (`core.bulk_writes.RowVersion`): the order may have changed since, and the caller then reads again
    with the lock. A write after the locked read renews the version too, unchecked: that new version is
    what tells a concurrent unlocked reader that its claims are stale."""
    if connection.vendor == "postgresql":
        claim = _read_on_postgres(actor, order_id, reason_code, line_count, locked=locked)
    else:
        assert locked, "only PostgreSQL reads a claim without the lock"
        claim = _read_with_orm(actor, order_id, reason_code)
    if actor.is_buyer and claim.order.buyer_id != actor.buyer_id:
        raise NotFound("order")
    return claim


# ------------------------------------------------------------------------------------------ portable


def _read_with_orm(actor: Actor, order_id: int, reason_code: str | None) -> OrderClaim:
    order = (Order.objects.select_for_update(of=("self",)).select_related("store", "store__policy", "buyer")
             .filter(store_id=actor.store_id, pk=order_id).first())
    if order is None:
        raise NotFound("order")
    claimed = (
        CaseLine.objects.filter(order_line=OuterRef("pk"))
        .exclude(case__status__in=Status.VOID)
        .values("order_line")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    rows = (OrderLine.objects.filter(store_id=order.store_id, order=order)
            .annotate(claimed=Coalesce(Subquery(claimed), 0)).order_by("line_no"))
    lines = {line.pk: line for line in rows}
    reason = active_reason(actor.store_id, reason_code) if reason_code else None
    return OrderClaim(order=order, lines=lines, claimed={pk: line.claimed for pk, line in lines.items()}, reason=reason)


def active_reason(store_id: int, code: str) -> ReasonCode | None:
    return ReasonCode.objects.filter(store_id=store_id, code=code, active=True).first()


# ---------------------------------------------------------------------------------------- PostgreSQL


@cache
def _statements() -> dict[str, str]:
    # Built once per process from the models' own columns, and prepared once per connection (below), so a
    # busy process sends only the statements' names and values.
    def ids(model: type[object]) -> str:
        return f"pg_get_serial_sequence('{model._meta.db_table}', 'id')"  # type: ignore[attr-defined]

    # Everything else in one row, each part as JSON (numerics read back exactly, see core.rows.loads): one
    # statement costs the driver and the server far less than seven small ones.
    rest = (
        "(SELECT COALESCE(json_agg(row_to_json(l) ORDER BY l.line_no), '[]')::text "
        "FROM orders_orderline l WHERE l.store_id = %s AND l.order_id = %s), "
        "(SELECT COALESCE(json_object_agg(x.line_id, x.total), '{}')::text FROM (SELECT cl.order_line_id AS "
        "line_id, sum(cl.quantity) AS total FROM orders_orderline l JOIN cases_caseline cl ON cl.order_line_id = l.id "
        "JOIN cases_case c ON c.id = cl.case_id WHERE l.order_id = %s AND c.status <> ALL(%s) "
        "GROUP BY cl.order_line_id) x), "
        "(SELECT COALESCE(json_agg(row_to_json(x) ORDER BY x.id), '[]')::text FROM orders_payment x "
        "WHERE x.store_id = %s AND x.order_id = %s), "
        "(SELECT COALESCE(json_agg(row_to_json(x) ORDER BY x.id), '[]')::text FROM orders_shipment x "
        "WHERE x.store_id = %s AND x.order_id = %s), "
        "(SELECT row_to_json(r)::text FROM cases_reasoncode r WHERE r.store_id = %s AND r.code = %s AND r.active "
        "ORDER BY r.id LIMIT 1), "
        f"(SELECT COALESCE(json_agg(json_build_array(t.status, t.minutes, t.enabled)), '[]')::text "
        f"FROM {TimeoutSetting._meta.db_table} t WHERE t.store_id = %s), "
        f"(SELECT COALESCE(json_agg(row_to_json(x) ORDER BY x.position, x.id), '[]')::text "
        f"FROM {SlaPolicy._meta.db_table} x WHERE x.store_id = %s AND x.active), "
        f"nextval(%s::regclass), nextval({ids(Case)}), "
        f"ARRAY(SELECT nextval({ids(CaseLine)}) FROM generate_series(1, %s))"
    )
    order_columns = (f"{columns_of(Order, 'o')}, {columns_of(Store, 's')}, {columns_of(StorePolicy, 'p')}, "
                     f"{columns_of(Buyer, 'b')}")
    joins = ("FROM orders_order o JOIN stores_store s ON s.id = o.store_id "
             "LEFT JOIN policies_storepolicy p ON p.store_id = o.store_id JOIN stores_buyer b ON b.id = o.buyer_id "
             "WHERE o.store_id = %s AND o.id = %s")
    return {
        "order": f"SELECT {order_columns} {joins} FOR UPDATE OF o",
        "rest": f"SELECT {rest}",
        # Unlocked: the order, the version of its row (xmin) and the rest, in one statement and one snapshot.
        "order_and_rest": f"SELECT o.xmin::text, {order_columns}, {rest} {joins}",
    }


def _read_on_postgres(actor: Actor, order_id: int, reason_code: str | None, line_count: int, *,
                      locked: bool) -> OrderClaim:
    sql = _statements()
    store_id = actor.store_id
    where = [store_id, order_id]
    rest = [store_id, order_id, order_id, sorted(Status.VOID), store_id, order_id, store_id, order_id,
            store_id, reason_code or "", store_id, store_id, postgres_sequence(store_id, "case"), line_count]
    # Bound on the server (Django's own cursors bind on the client) and prepared (Django turns psycopg's
    # automatic preparation off), so each connection plans them once; through the connection's one cursor
    # for these statements, which keeps its column loaders from one request to the next.
    cursor = server_cursor()
    if locked:
        # The order is locked by the first statement before the second reads what is claimed of it (a
        # statement of its own, so a snapshot taken after the lock). Sent one after the other:
        # psycopg's pipeline mode saved no time on the loopback and cost a little more CPU.
        cursor.execute(sql["order"], where, prepare=True)
        order_row = cursor.fetchone()
        if order_row is None:
            raise NotFound("order")
        cursor.execute(sql["rest"], rest, prepare=True)
        row = cursor.fetchone()
        assert row is not None
        version = None  # held locked: nothing to check
    else:
        cursor.execute(sql["order_and_rest"], [*rest, *where], prepare=True)
        both = cursor.fetchone()
        if both is None:
            raise NotFound("order")
        version, order_row, row = both[0], both[1:-len(_REST_COLUMNS)], both[-len(_REST_COLUMNS):]
    lines_json, claimed_json, payments_json, shipments_json, reason_json, timeouts_json, policies_json, \
        serial, case_id, line_ids = row
    order = _order_from(order_row)
    lines = {line.pk: line for line in (from_json(OrderLine, obj) for obj in loads(lines_json))}
    claimed = {int(line_id): int(total) for line_id, total in loads(claimed_json).items()}
    return OrderClaim(
        order=order, lines=lines, claimed={pk: claimed.get(pk, 0) for pk in lines},
        reason=from_json(ReasonCode, loads(reason_json)) if reason_code and reason_json else None,
        payments=[from_json(Payment, obj) for obj in loads(payments_json)],
        shipments=[from_json(Shipment, obj) for obj in loads(shipments_json)],
        timeouts=(order.store.platform_mode, overrides_from(tuple(item) for item in loads(timeouts_json))),
        sla_policies=[from_json(SlaPolicy, obj) for obj in loads(policies_json)],
        ids=DrawnIds(case_serial=int(serial), case_id=int(case_id), case_line_ids=[int(i) for i in line_ids]),
        version=version,
    )


# What the "rest" part of the reads returns, in order.
_REST_COLUMNS = ("lines", "claimed", "payments", "shipments", "reason", "timeouts", "sla_policies", "case_serial",
                 "case_id", "case_line_ids")


def _order_from(row: Sequence[object]) -> Order:
    """The order with its store, the store's policy (or its absence) and the buyer attached, as
    select_related would leave them."""
    start = 0
    parts = []
    for model in (Order, Store, StorePolicy, Buyer):
        end = start + width_of(model)
        parts.append(row[start:end])
        start = end
    order = from_row(Order, parts[0])
    store = from_row(Store, parts[1])
    policy = from_row(StorePolicy, parts[2]) if parts[2][0] is not None else None
    Store.policy.related.set_cached_value(store, policy)
    order.store = store
    order.buyer = from_row(Buyer, parts[3])
    return order
