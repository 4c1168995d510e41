"""Server time of every console page with 100,000 cases in one store.

    .venv/bin/python benchmarks/console_pages.py                       # SQLite, in a temporary file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/console_pages.py
    ... --cases 100000 --runs 20 --reuse

Loads `--cases` cases into a database of its own (`aftersales_bench_console` on PostgreSQL, never the
one DATABASE_URL names; a file under the system's temporary directory on SQLite): one store with
20 staff, 5,000 buyers and one order per case, two years of history that is mostly closed, the last
30 days in the working statuses, a fifth unassigned, deadlines spread from two days overdue to a
week ahead, two timeline entries a case. Then it renders each page through Django's test client as a
signed-in supervisor (the whole middleware and template stack, without the HTTP server) and prints
p50/p95 in milliseconds and the number of queries. The target is p95 under 150 ms for every page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "aftersales_bench_console"
TARGET_MS = 150.0

ACTIVE = {
    "return_refund": ["pending_review"] * 5 + ["awaiting_return"] * 3 + ["return_in_transit"] * 2
    + ["received", "inspecting", "negotiating", "refunding"],
    "refund_only": ["pending_review"] * 4 + ["refunding"] * 2 + ["negotiating", "rejected"],
    "exchange": ["pending_review", "awaiting_return", "return_in_transit", "inspecting", "reshipping"],
    "complaint": ["open", "open", "acknowledged", "in_progress", "waiting_on_customer"],
}
FINISHED = {"return_refund": "closed", "refund_only": "closed", "exchange": "closed", "complaint": "closed"}
DECISION = {
    "requested": "return_refund", "requested_open": True, "basis": "seller_fault",
    "remedies_open": [{"remedy": "return_refund", "open": True, "rule_id": "cn.quality.7d", "source": "S1 Art 24",
                       "zh": "收货后 7 日内出现质量问题，您可以选择退货、换货或修理，运费由商家承担。",
                       "en": "A quality problem within 7 days of delivery: return, exchange or repair."}],
    "remedies_closed": [], "refund": {"currency": "CNY", "goods_paid": "99.00", "shipping_refunded": "0.00",
                                      "deductions": [], "amount": "99.00", "split": []},
    "deadlines": {}, "evidence": [], "flags": [], "notes": [],
}


def choose_database(reuse: bool) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        parts = urlparse(url)
        admin = urlunparse(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
            if exists and not reuse:
                conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
            if not exists or not reuse:
                conn.execute(f"CREATE DATABASE {DB_NAME}")
        return urlunparse(parts._replace(path=f"/{DB_NAME}"))
    path = Path(tempfile.gettempdir()) / f"{DB_NAME}.sqlite3"
    if path.exists() and not reuse:
        path.unlink()
    return f"sqlite:///{path}"


def setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")
    os.environ.setdefault("AFTERSALES_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load(cases: int) -> None:
    from django.db import connection, transaction

    from aftersales.cases.models import Case, TimelineEntry
    from aftersales.cases.services import install_default_reason_codes
    from aftersales.orders.models import Order, OrderLine
    from aftersales.stores import services as store_services
    from aftersales.stores.models import Buyer

    rng = random.Random(42)
    now = dt.datetime.now(dt.UTC)
    store = store_services.create_store(name="Bench", slug="bench")
    install_default_reason_codes(store=store)
    staff = [store_services.create_staff_user(store=store, username=f"bench-{role}-{n}", password="bench-only",
                                              role=role).pk
             for n, role in enumerate(["supervisor"] + ["agent"] * 16 + ["warehouse"] * 3)]
    Buyer.objects.bulk_create([Buyer(store=store, external_id=f"B{n}", name=f"买家{n}") for n in range(5000)],
                              batch_size=5000)
    buyer_ids = list(Buyer.objects.filter(store=store).values_list("pk", flat=True))
    kinds = list(ACTIVE)
    batch = 5000
    for start in range(0, cases, batch):
        size = min(batch, cases - start)
        with transaction.atomic():
            orders = [Order(store=store, external_id=f"O{start + i}", buyer_id=rng.choice(buyer_ids),
                            placed_at=now - dt.timedelta(days=rng.uniform(0, 730)), total_paid=Decimal("99.00"))
                      for i in range(size)]
            Order.objects.bulk_create(orders, batch_size=batch)
            OrderLine.objects.bulk_create(
                [OrderLine(store=store, order=o, line_no=1, sku="SKU-1", name="T恤", quantity=1,
                           unit_price=Decimal("99.00"), category="apparel") for o in orders], batch_size=batch)
            rows = []
            for i, order in enumerate(orders):
                n = start + i
                kind = kinds[n % len(kinds)]
                age = rng.uniform(0, 30) if rng.random() < 0.25 else rng.uniform(30, 730)
                created = now - dt.timedelta(days=age)
                active = age < 30
                status = rng.choice(ACTIVE[kind]) if active else FINISHED[kind]
                deadline = now + dt.timedelta(hours=rng.uniform(-48, 168)) if active else None
                rows.append(Case(
                    store=store, number=f"AS-{n + 1:07d}", kind=kind, status=status, order=order,
                    buyer_id=order.buyer_id, channel=rng.choice(["web", "web", "api", "chat", "phone"]),
                    priority=rng.choice([1, 2, 2, 2, 3, 4]), assignee_id=None if rng.random() < 0.2 else rng.choice(staff),
                    decision=DECISION if kind != "complaint" else None, deadline_at=deadline, created_at=created,
                    updated_at=created, status_changed_at=created, closed_at=None if active else created,
                    return_tracking_number=f"SF{n:010d}" if status == "return_in_transit" else "",
                ))
            Case.objects.bulk_create(rows, batch_size=batch)
            TimelineEntry.objects.bulk_create(
                [TimelineEntry(store=store, case=c, at=c.created_at, event=event, to_status=c.status,
                               actor_kind="buyer", actor_label="bench")
                 for c in rows for event in ("created", "submit")], batch_size=batch)
        print(f"  loaded {start + size:,} cases", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(runs: int) -> list[tuple[str, float, float, int]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from aftersales.cases.models import Case

    user = get_user_model().objects.get(username="bench-supervisor-0")
    agent = get_user_model().objects.filter(username__startswith="bench-agent").order_by("pk").first()
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    client.force_login(user)
    agent_client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    agent_client.force_login(agent)
    case_ids = list(Case.objects.filter(store__slug="bench").order_by("?").values_list("pk", flat=True)[:runs])
    in_transit = Case.objects.filter(store__slug="bench", status="return_in_transit").values_list(
        "return_tracking_number", "number")[:1][0]
    first = client.get("/console/").content.decode()
    found = re.search(r"cursor=([A-Za-z0-9_-]+)", first)
    assert found, "the first page has no next page"
    cursor = found.group(1)
    pages: list[tuple[str, object, list[str]]] = [
        ("queue: all", client, ["/console/"]),
        ("queue: next page", client, [f"/console/?cursor={cursor}"]),
        ("queue: mine (agent)", agent_client, ["/console/?view=mine"]),
        ("queue: unassigned", client, ["/console/?view=unassigned"]),
        ("queue: due within 24 h", client, ["/console/?view=due_soon"]),
        ("queue: overdue", client, ["/console/?view=breached"]),
        ("queue: waiting on buyer", client, ["/console/?view=waiting"]),
        ("queue: status", client, ["/console/?status=pending_review"]),
        ("queue: kind + priority", client, ["/console/?kind=exchange&priority=4"]),
        ("queue: channel", client, ["/console/?channel=phone"]),
        ("queue: oldest first", client, ["/console/?sort=oldest"]),
        ("queue: deadline first", client, ["/console/?sort=deadline"]),
        ("case page", client, [f"/console/cases/{pk}/" for pk in case_ids]),
        ("warehouse: case number", client, [f"/console/warehouse/?q={in_transit[1]}"]),
        ("warehouse: tracking number", client, [f"/console/warehouse/?q={in_transit[0]}"]),
        ("supervisor", client, ["/console/supervisor/"]),
    ]
    results = []
    for name, who, urls in pages:
        timings, queries = [], 0
        who.get(urls[0])  # warm the template and connection caches
        for run in range(runs):
            url = urls[run % len(urls)] if len(urls) > 1 else urls[0]
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = who.get(url)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)
            queries = max(queries, len(captured))
        timings.sort()
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        results.append((name, statistics.median(timings), p95, queries))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep the database loaded by an earlier run")
    args = parser.parse_args()
    url = choose_database(args.reuse)
    setup(url)
    from aftersales.cases.models import Case

    if not Case.objects.filter(store__slug="bench").exists():
        started = time.perf_counter()
        load(args.cases)
        print(f"loaded in {time.perf_counter() - started:.0f} s")
    engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"\n{engine}, {Case.objects.filter(store__slug='bench').count():,} cases, {args.runs} runs a page, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    worst = 0.0
    for name, p50, p95, queries in measure(args.runs):
        worst = max(worst, p95)
        flag = "" if p95 <= TARGET_MS else "  over target"
        print(f"{name:32} {p50:8.1f} {p95:8.1f} {queries:8d}{flag}")
    print(f"\nworst p95 {worst:.1f} ms (target {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
