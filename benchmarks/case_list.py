"""How fast the case list answers with a million cases in the table, for each filter.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/case_list.py
    ... --reuse          # keep the loaded database from an earlier run

Loads `--cases` cases (default 1,000,000) into the database `aftersales_bench_list` (never the one
DATABASE_URL names): one big store holding most of them and a few small stores beside it, with staff,
buyers and orders behind every foreign key. The spread is what a shop sees: two years of history,
most of it closed, the last 30 days in the working statuses of each kind, a few buyers with very
many cases, a fifth unassigned. Then it ANALYZEs and asks GET /api/v1/cases?limit=25 for the first page
under each filter, in-process through Django's test client (the whole middleware and Ninja stack,
without the HTTP server), and prints p50/p95, the queries of a page of 5 and of 25, and the
EXPLAIN ANALYZE of the slowest filter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from _common import (
    bulk_insert_select,
    database_exists,
    machine_load,
    make_store_with_token,
    migrate,
    percentile,
    print_table,
    recreate_database,
    setup_django,
)

DB_NAME = "aftersales_bench_list"
BIG_STORE = "big"
HISTORY_DAYS = 730
ACTIVE_DAYS = 30

# Working statuses by kind, repeated to weight them: what the last month of a busy shop looks like.
ACTIVE_STATUSES = {
    "return_refund": ["pending_review"] * 6 + ["awaiting_return"] * 4 + ["return_in_transit"] * 3
    + ["received", "inspecting", "negotiating", "inspection_failed", "in_arbitration"] + ["refunding"] * 2
    + ["refunded", "closed"],
    "refund_only": ["pending_review"] * 5 + ["refunding"] * 3 + ["refunded", "negotiating", "rejected", "closed"],
    "exchange": ["pending_review"] * 3 + ["awaiting_return"] * 2
    + ["return_in_transit", "received", "inspecting", "reshipping", "reshipped", "closed"],
    "repair": ["pending_review", "awaiting_device", "device_in_transit", "device_received", "diagnosing",
               "quote_pending", "repairing", "repaired", "shipping_back", "closed"],
    "complaint": ["open"] * 3 + ["acknowledged", "in_progress", "in_progress", "waiting_on_customer", "resolved"],
    "inquiry": ["open"] * 3 + ["acknowledged", "in_progress", "waiting_on_customer", "resolved", "resolved"],
}
KIND_WEIGHTS = [("return_refund", 0.50), ("refund_only", 0.25), ("exchange", 0.10), ("repair", 0.05),
                ("complaint", 0.06), ("inquiry", 0.04)]
# A stand-in for the engine's decision (rules with their legal basis in two languages, the refund,
# the deadlines): 3-4 kB of JSON that compresses as the real one does, so rows and TOAST are real size.
DECISION_SQL = """jsonb_build_object(
    'basis', CASE WHEN s.r2 < 0.5 THEN 'seller_fault' ELSE 'no_reason' END, 'requested_open', s.r3 < 0.9,
    'refund', jsonb_build_object('amount', round((10 + s.r5 * 990)::numeric, 2)::text, 'currency', 'CNY'),
    'rules', (SELECT jsonb_agg(jsonb_build_object(
        'id', 'cn.rule.' || i, 'ref', md5(s.g::text || '-' || i), 'check', md5(i::text || '-' || s.g),
        'zh', '依据《消费者权益保护法》第二十四条，经营者提供的商品不符合质量要求的，消费者可以退货。',
        'en', 'Goods that do not meet the quality requirements may be returned under the law.'))
        FROM generate_series(1, 16) AS i),
    'decided_at', s.created)"""


def _pick(values: Sequence[str | int], random_column: str) -> str:
    """SQL for one of `values`, chosen by a uniform random column (weights come from repetition)."""
    literals = ", ".join(f"'{v}'" if isinstance(v, str) else str(int(v)) for v in values)
    return f"(ARRAY[{literals}])[1 + floor({random_column} * {len(values)})::int]"


def load_store(slug: str, *, cases: int, buyers: int, orders: int, staff: int) -> None:
    """One store with its staff, buyers, orders and `cases` cases, all by INSERT ... SELECT."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from aftersales.cases.models import Case, ReasonCode
    from aftersales.orders.models import Order
    from aftersales.stores.models import Buyer, Membership

    started = time.perf_counter()
    store, token = make_store_with_token(slug)
    sid = int(store.pk)
    user_model = get_user_model()
    bulk_insert_select(user_model, {"username": f"'{slug}-agent-' || g", "password": "'!'"}, count=staff)
    bulk_insert_select(Membership, {"user_id": "u.id", "store_id": str(sid), "role": "'agent'"},
                       source=f"(SELECT id FROM auth_user WHERE username LIKE '{slug}-agent-%%') AS u")
    staff_ids = list(Membership.objects.filter(store_id=sid).order_by("user_id").values_list("user_id", flat=True))
    bulk_insert_select(Buyer, {"store_id": str(sid), "external_id": "'B' || g", "name": "'买家' || g"}, count=buyers)
    first_buyer = Buyer.objects.filter(store_id=sid).order_by("pk").values_list("pk", flat=True)[0]
    # A few buyers place very many orders (power of a uniform draw), as resellers and regulars do.
    bulk_insert_select(Order, {
        "store_id": str(sid), "external_id": "'O' || g",
        "buyer_id": f"{first_buyer} + floor({buyers} * power(random(), 2))::bigint",
        "placed_at": f"now() - interval '{HISTORY_DAYS + 7} days' * (1 - g::float / {orders})", "total_paid": "199.00",
    }, count=orders)
    order_ids = Order.objects.filter(store_id=sid).order_by("pk").values_list("pk", flat=True)
    first_order, last_order = order_ids.first(), order_ids.last()
    assert first_order is not None and last_order is not None
    if last_order - first_order + 1 != orders:
        raise RuntimeError("order ids are not contiguous: load into a fresh database")
    reason_ids = list(ReasonCode.objects.filter(store_id=sid).order_by("pk").values_list("pk", flat=True))

    kind_case = "CASE " + " ".join(
        f"WHEN x.r1 < {sum(w for _, w in KIND_WEIGHTS[: i + 1]):.4f} THEN '{kind}'" for i, (kind, _) in enumerate(KIND_WEIGHTS)
    ) + " END"
    active_case = "CASE s.kind " + " ".join(
        f"WHEN '{kind}' THEN {_pick(statuses, 's.r6')}" for kind, statuses in ACTIVE_STATUSES.items()
    ) + " END"
    # Cases follow their orders in time (a case is about a recent order), so an order has 0-3 cases.
    order_expr = f"{first_order} + least({orders - 1}, greatest(0, floor({orders} * y.g::float / {cases} - y.r4 * 40)))::bigint"
    source = f"""(
        SELECT y.*, o.id AS order_id, coalesce(o.buyer_id, {first_buyer} + floor(y.r5 * {buyers})::bigint) AS buyer_id,
               y.age_days <= {ACTIVE_DAYS} AS active
        FROM (
            SELECT x.*, {kind_case} AS kind,
                   now() - interval '1 day' * (x.age_days) AS created
            FROM (
                SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
                       random() AS r6, random() AS r7, random() AS r8, random() AS r9,
                       {HISTORY_DAYS} * (1 - g::float / {cases}) + random() / 24 AS age_days
                FROM generate_series(1, {cases}) AS g
            ) x
        ) y
        LEFT JOIN orders_order o
            ON o.id = CASE WHEN y.kind IN ('complaint', 'inquiry') AND y.r3 < 0.6 THEN NULL ELSE {order_expr} END
    ) AS s"""
    closed_status = (
        "CASE WHEN s.kind IN ('complaint', 'inquiry') THEN (CASE WHEN s.r6 < 0.9 THEN 'closed' ELSE 'resolved' END) "
        "ELSE (CASE WHEN s.r6 < 0.80 THEN 'closed' WHEN s.r6 < 0.90 THEN 'cancelled' "
        "WHEN s.r6 < 0.97 THEN 'rejected' ELSE 'expired' END) END"
    )
    bulk_insert_select(Case, {
        "store_id": str(sid),
        "number": f"'{slug.upper()[:4]}-' || lpad(s.g::text, 7, '0')",
        "kind": "s.kind",
        "status": f"CASE WHEN s.active THEN {active_case} ELSE {closed_status} END",
        "order_id": "s.order_id",
        "buyer_id": "s.buyer_id",
        "reason_id": f"CASE WHEN s.kind IN ('complaint', 'inquiry') THEN NULL ELSE {_pick(reason_ids, 's.r2')} END",
        "channel": "CASE WHEN s.r9 < 0.6 THEN 'web' WHEN s.r9 < 0.9 THEN 'api' ELSE 'chat' END",
        "priority": "CASE WHEN s.r8 < 0.05 THEN 3 ELSE 2 END",
        "subject": "CASE WHEN s.kind IN ('complaint', 'inquiry') THEN '关于订单的问题 ' || s.g ELSE '' END",
        "description": "repeat('收到的商品有质量问题，希望尽快处理。', 1 + floor(s.r3 * 6)::int)",
        # The policy decision stored on every request about goods, about the size the engine writes.
        "decision": f"CASE WHEN s.kind IN ('complaint', 'inquiry') THEN NULL ELSE {DECISION_SQL} END",
        "assignee_id": f"CASE WHEN s.r7 < 0.2 THEN NULL ELSE {_pick(staff_ids, 'power(s.r8, 1.5)')} END",
        "requested_amount": "round((10 + s.r5 * 990)::numeric, 2)",
        "deadline_at": "CASE WHEN s.active THEN s.created + interval '48 hours' END",
        "deadline_rule": "CASE WHEN s.active THEN 'shop_review_timeout.auto_approve' ELSE '' END",
        "created_at": "s.created",
        "updated_at": "s.created + interval '1 day' * s.r9",
        "status_changed_at": "s.created + interval '1 day' * s.r9",
        "closed_at": "CASE WHEN s.active THEN NULL ELSE s.created + interval '10 days' END",
    }, source=source)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cases_case WHERE store_id = %s", [sid])
        row = cursor.fetchone()
    print(f"store {slug}: {row[0] if row else 0} cases, {orders} orders, {buyers} buyers, {staff} staff "
          f"in {time.perf_counter() - started:.1f} s")
    del token


def load(total_cases: int) -> None:
    from django.db import connection

    started = time.perf_counter()
    recreate_database(DB_NAME)
    setup_django(DB_NAME)
    migrate()
    small = max(1, total_cases // 20)  # four small stores of a twentieth each, the big one has the rest
    big = total_cases - 4 * small
    load_store(BIG_STORE, cases=big, buyers=max(10, big // 5), orders=max(10, big * 5 // 8), staff=60)
    for n in range(1, 5):
        load_store(f"small{n}", cases=small, buyers=max(10, small // 5), orders=max(10, small * 5 // 8), staff=8)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"loaded and analysed in {time.perf_counter() - started:.0f} s")


def _filters() -> list[tuple[str, dict[str, Any]]]:
    """The filters to time, with values picked from the data (a typical value and the worst one)."""
    from django.db.models import Count
    from django.utils import timezone

    from aftersales.cases.models import Case
    from aftersales.stores.models import Store

    sid = Store.objects.get(slug=BIG_STORE).pk
    cases = Case.objects.filter(store_id=sid)
    busiest_assignee = (cases.exclude(assignee=None).values("assignee_id").annotate(n=Count("id"))
                        .order_by("-n").values_list("assignee_id", flat=True)[0])
    quietest_assignee = (cases.exclude(assignee=None).values("assignee_id").annotate(n=Count("id"))
                         .order_by("n").values_list("assignee_id", flat=True)[0])
    busiest_buyer = (cases.values("buyer_id").annotate(n=Count("id")).order_by("-n")
                     .values_list("buyer_id", flat=True)[0])
    now = timezone.now()
    year_ago = cases.filter(created_at__lt=now - dt.timedelta(days=365)).order_by("-created_at").first()
    assert year_ago is not None
    middle_at, typical_buyer = year_ago.created_at, year_ago.buyer_id
    typical_order = (cases.filter(created_at__lt=middle_at).exclude(order=None).order_by("-created_at")
                     .values_list("order_id", flat=True).first())
    day = dt.timedelta(days=1)
    return [
        ("first page", {}),
        ("status=pending_review", {"status": "pending_review"}),
        ("status=in_arbitration (rare)", {"status": "in_arbitration"}),
        ("status=expired (only old)", {"status": "expired"}),
        ("kind=return_refund", {"kind": "return_refund"}),
        ("kind=repair", {"kind": "repair"}),
        ("assignee_id (busiest)", {"assignee_id": busiest_assignee}),
        ("assignee_id (quietest)", {"assignee_id": quietest_assignee}),
        ("unassigned=true", {"unassigned": "true"}),
        ("created_after (last day)", {"created_after": (now - day).isoformat()}),
        ("created_before (a year ago)", {"created_before": middle_at.isoformat()}),
        ("created_after+before (one day)", {"created_after": (middle_at - day).isoformat(),
                                            "created_before": middle_at.isoformat()}),
        ("order_id", {"order_id": typical_order}),
        ("buyer_id (typical)", {"buyer_id": typical_buyer}),
        ("buyer_id (most cases)", {"buyer_id": busiest_buyer}),
        ("status+assignee (agent's queue)", {"status": "pending_review", "assignee_id": busiest_assignee}),
        ("kind+status", {"kind": "repair", "status": "closed"}),
    ]


def _list_query(captured: Sequence[dict[str, Any]]) -> str:
    return next(q["sql"] for q in captured if 'FROM "cases_case"' in q["sql"])


def measure(repeat: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from aftersales.stores import services
    from aftersales.stores.models import Store

    store = Store.objects.get(slug=BIG_STORE)
    _, raw = services.create_api_token(store=store, name="list-bench", scopes=["cases:read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    filters = _filters()

    def get(params: dict[str, Any], limit: int) -> Any:
        response = client.get("/api/v1/cases?" + urlencode({**params, "limit": limit}))
        if response.status_code != 200:
            sys.exit(f"{params}: {response.status_code} {response.content[:300]!r}")
        return response

    rows = []
    slowest: tuple[float, str, str] = (0.0, "", "")
    print(f"timing {len(filters)} filters x {repeat} requests; {machine_load()}")
    for label, params in filters:
        for _ in range(5):  # warm the connection, the plan cache and the pages this filter touches
            get(params, 25)
        timings = []
        for _ in range(repeat):
            began = time.perf_counter()
            get(params, 25)
            timings.append((time.perf_counter() - began) * 1000)
        counts = {}
        for limit in (5, 25):
            with CaptureQueriesContext(connection) as captured:
                response = get(params, limit)
            counts[limit] = len(captured.captured_queries)
        items = len(response.json()["items"])
        db_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
        p95 = percentile(timings, 95)
        rows.append([label, items, f"{statistics.median(timings):.2f}", f"{p95:.2f}", f"{db_ms:.2f}",
                     counts[5], counts[25]])
        if p95 > slowest[0]:
            slowest = (p95, label, _list_query(captured.captured_queries))
    print()
    print_table(rows, ["GET /api/v1/cases?limit=25", "rows", "p50 ms", "p95 ms", "db ms (1 req)",
                       "queries @5", "queries @25"])
    print(f"\nafter: {machine_load()}")
    print(f"\nslowest: {slowest[1]} (p95 {slowest[0]:.2f} ms)\n{slowest[2]}\n")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest[2])
        for (line,) in cursor.fetchall():
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases to load (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=200, help="timed requests per filter (default %(default)s)")
    parser.add_argument("--reuse", action="store_true",
                        help=f"keep {DB_NAME} if it exists, only migrating it (the --cases of the load stand)")
    parser.add_argument("--load-only", action="store_true", help="load (or keep, with --reuse) and stop")
    args = parser.parse_args()
    if args.reuse and database_exists(DB_NAME):
        setup_django(DB_NAME)
        migrate()  # a later checkout may have added tables or columns since the data was loaded
        print(f"reusing {DB_NAME}")
    else:
        load(args.cases)
    if not args.load_only:
        measure(max(1, args.repeat))


if __name__ == "__main__":
    main()
