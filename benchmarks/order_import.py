"""How fast does the CSV order import go on PostgreSQL?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aftersales_dev python benchmarks/order_import.py [--lines 200000] [-- --workers 1]

Generates a CSV of N order lines (1 to 7 lines an order, a buyer for every ten orders, payments and a
shipment on every order) in a temporary folder, creates a fresh database next to the one DATABASE_URL
names, migrates it, imports the file with the `import_orders` command and prints lines per second for
the import alone (reading, validating and writing; not generating or migrating), with the CPU time of
this process (all its threads) and of the worker processes the import starts (the database server's
is not counted) and the load average, since the figure depends on what else the machine runs.
Arguments after `--` go to the command. The database is dropped afterwards unless --keep-db is
given.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEADER = ["external_id", "buyer_external_id", "buyer_name", "buyer_email", "buyer_phone", "placed_at", "currency",
          "shipping_fee", "free_shipping_threshold", "channel", "payments", "line_no", "sku", "name", "category",
          "quantity", "unit_price", "discount_allocated", "is_gift", "customised", "perishable",
          "nonreturnable_confirmation", "warranty_months", "carrier", "tracking_number", "shipped_at", "signed_at"]
CATEGORIES = ["apparel", "electronics", "appliances", "food", "cosmetics", "books", "home", "toys"]
CST = dt.timezone(dt.timedelta(hours=8))


def generate(path: Path, lines: int, seed: int = 11) -> int:
    """Writes `lines` order lines; returns the number of orders."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 11, 11, 0, 0, tzinfo=CST)
    written = orders = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        while written < lines:
            orders += 1
            count = min(rng.randint(1, 7), lines - written)
            buyer = rng.randint(1, max(lines // 40, 1))
            placed = start + dt.timedelta(seconds=orders * 3)
            prices = [Decimal(rng.randint(500, 50000)) / 100 for _ in range(count)]
            quantities = [rng.randint(1, 3) for _ in range(count)]
            total = sum((p * q for p, q in zip(prices, quantities, strict=True)), Decimal("0"))
            coupon = Decimal("5.00") if total > 20 else Decimal("0")
            payments = f"alipay:{total - coupon:.2f}:fee={(total - coupon) * Decimal('0.006'):.2f}:ref=AP{orders:09d}"
            if coupon:
                payments += f";coupon:{coupon:.2f}"
            order = [f"TB{orders:010d}", f"U{buyer:08d}", f"买家{buyer}", f"u{buyer}@example.com",
                     f"138{buyer:08d}", placed.isoformat(), "CNY", "0.00", "99.00", "online", payments]
            shipped = placed + dt.timedelta(hours=20)
            for index in range(count):
                category = rng.choice(CATEGORIES)
                writer.writerow([
                    *order, index + 1, f"SKU-{rng.randint(1, 5000):05d}", f"商品 {category} {index + 1}", category,
                    quantities[index], f"{prices[index]:.2f}", "0.00", "false", "false",
                    "true" if category == "food" else "false", "none", 12 if category == "electronics" else 0,
                    "SF", f"SF{orders:012d}", shipped.isoformat(), (shipped + dt.timedelta(days=2)).isoformat(),
                ])
            written += count
    return orders


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--again", action="store_true",
                        help="import the same file a second time and time that too (every order an update)")
    parser.add_argument("command_args", nargs="*", metavar="-- ARG", help="more arguments for import_orders, "
                        "after --: `-- --workers 1`")
    args = parser.parse_args()

    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aftersales_dev")
    parts = urlsplit(base)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database")
    name = f"aftersales_bench_{os.getpid()}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from aftersales.orders.models import OrderLine
        from aftersales.stores.services import create_store

        call_command("migrate", verbosity=0)
        store = create_store(name="Benchmark", slug="bench")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "orders.csv"
            orders = generate(path, args.lines)
            size = path.stat().st_size
            started, cpu_started, children_started = time.perf_counter(), time.process_time(), _children_cpu()
            call_command("import_orders", str(path), "--store", store.slug, "--no-progress", *args.command_args)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            children_cpu = _children_cpu() - children_started
            stored = OrderLine.objects.filter(store=store).count()
            assert stored == args.lines, f"{stored} lines stored, {args.lines} generated"
            print(f"{args.lines} lines in {orders} orders ({size / 1e6:.1f} MB) imported in {elapsed:.2f} s "
                  f"({cpu:.2f} s CPU in this process, {children_cpu:.2f} s in its worker processes; "
                  f"load average {os.getloadavg()[0]:.2f}): "
                  f"{args.lines / elapsed:,.0f} lines/s")
            if args.again:
                started, cpu_started = time.perf_counter(), time.process_time()
                call_command("import_orders", str(path), "--store", store.slug, "--no-progress", *args.command_args)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                stored = OrderLine.objects.filter(store=store).count()
                assert stored == args.lines, f"{stored} lines stored after sending again, {args.lines} generated"
                print(f"sent again (every order an update) in {elapsed:.2f} s ({cpu:.2f} s CPU in this process; "
                      f"load average {os.getloadavg()[0]:.2f}): {args.lines / elapsed:,.0f} lines/s")
        connection.close()
    finally:
        if not args.keep_db:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
