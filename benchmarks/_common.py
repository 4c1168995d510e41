"""Helpers shared by the case benchmarks: a throw-away PostgreSQL database, Django set up against it,
fast bulk loading through the models' own column list, and percentiles.

Bulk loading goes around the ORM (one INSERT ... SELECT generate_series per table) because a million
rows through `bulk_create` would take longer than the measurement itself. The column list still comes
from the models, with each field's default filled in, so a column added later does not break the load.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
# The scripts run as files (`python benchmarks/x.py`), so the package is found from the checkout.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def database_url(name: str) -> str:
    """DATABASE_URL (or the local default) with its database name replaced: the benchmark never
    touches the database the variable names, only a sibling on the same server."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL)
    if not parts.scheme.startswith("postgres"):
        sys.exit("the case benchmarks need PostgreSQL: set DATABASE_URL=postgres://user@host:port/any")
    return urlunsplit(parts._replace(path=f"/{name}"))


def _server_conninfo() -> str:
    return database_url("postgres").replace("postgres://", "postgresql://", 1)


def database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(_server_conninfo(), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def recreate_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_server_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(db_name: str, *, conn_max_age: int = 600) -> str:
    """Point Django at `db_name` and set it up; returns the URL, for child processes (gunicorn)."""
    url = database_url(db_name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")
    os.environ.setdefault("AFTERSALES_LOG_LEVEL", "WARNING")
    os.environ["AFTERSALES_DB_CONN_MAX_AGE"] = str(conn_max_age)
    import django

    django.setup()
    return url


def migrate() -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"migrated in {time.perf_counter() - started:.1f} s")


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def interpreter() -> str:
    """The Python the servers run on (the one running this script), and whether libpython is a shared
    library in it. How the interpreter was built moved a create's CPU by a tenth to a fifth here
    (benchmarks/README.md, "The interpreter"), so every figure says which one it was measured on."""
    maps = Path("/proc/self/maps")
    linked = ""
    if maps.exists():
        linked = (", libpython shared (built with --enable-shared)" if "libpython" in maps.read_text()
                  else ", libpython linked in statically")
    return f"Python {sys.version.split()[0]} at {os.path.realpath(sys.executable)}{linked}"


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine has spent so far, busy (every process and the kernel's own work:
    user, nice, system, interrupts, steal) and idle (idle and waiting for I/O), summed over its cores,
    from /proc/stat (Linux). Taken around a run: if idle is near zero, the run was bound by the CPU, and
    busy per request is the budget the cores have to share."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / ticks, (idle + iowait) / ticks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least pct % of the values at or below it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def bulk_insert_select(model: Any, expressions: Mapping[str, str], *, count: int = 0, start: int = 1,
                       source: str | None = None) -> int:
    """INSERT one row into `model`'s table per row of `source` (a FROM clause), by default
    `generate_series(start, start + count - 1) AS g`.

    `expressions` maps column names to SQL over the source, without placeholders and with mod() rather
    than the % operator (use `random()` for spread; call `setseed` first for repeatable data). Every other column gets its field's default, NULL when it may be null, or now()
    for auto_now(_add) dates; a NOT NULL column with none of these is an error naming it.
    """
    from django.db import connection
    from django.db.models import DateTimeField

    columns: list[str] = []
    selects: list[str] = []
    default_params: list[Any] = []
    for field in model._meta.concrete_fields:
        column = field.column
        if column == model._meta.pk.column and column not in expressions:
            continue
        columns.append(connection.ops.quote_name(column))
        if column in expressions:
            selects.append(expressions[column])
        elif isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add):
            selects.append("now()")
        elif field.null and not field.has_default():
            selects.append("NULL")
        elif (default := field.get_default()) is not None:  # a blank text field's default is ""
            selects.append("%s")
            default_params.append(field.get_db_prep_save(default, connection))
        else:
            raise ValueError(f"{model._meta.db_table}.{column} is NOT NULL without a default: give an expression")
    unknown = set(expressions) - {f.column for f in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model._meta.db_table} has no columns {sorted(unknown)}")
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(selects)} FROM {source or 'generate_series(%s, %s) AS g'}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*default_params, *([] if source else [start, start + count - 1])])
        return int(cursor.rowcount)


def make_store_with_token(slug: str) -> tuple[Any, str]:
    """A store with its default reason codes and an API token that may create and read cases."""
    from aftersales.stores import services

    store = services.create_store(name=f"Benchmark {slug}", slug=slug)
    _, raw = services.create_api_token(store=store, name="bench", scopes=["cases:write", "orders:read"])
    return store, raw


def load_buyers_and_orders(store: Any, *, buyers: int, orders: int, line_quantity: int = 1) -> list[tuple[int, int]]:
    """`buyers` buyers and `orders` one-line orders (paid, shipped, signed for) for `store`; returns (order id, line id) pairs in id order."""
    from django.db import connection

    from aftersales.orders.models import Order, OrderLine, Payment, Shipment
    from aftersales.stores.models import Buyer

    started = time.perf_counter()
    sid = int(store.pk)
    bulk_insert_select(Buyer, {"store_id": str(sid), "external_id": "'B' || g", "name": "'买家' || g"}, count=buyers)
    buyer_ids = list(Buyer.objects.filter(store_id=sid).order_by("pk").values_list("pk", flat=True))
    first_buyer, n_buyers = buyer_ids[0], len(buyer_ids)
    bulk_insert_select(Order, {
        "store_id": str(sid), "external_id": "'O' || g", "buyer_id": f"{first_buyer} + mod(g, {n_buyers})",
        "placed_at": "now() - interval '5 days'", "total_paid": "199.00",
    }, count=orders)
    bulk_insert_select(OrderLine, {
        "store_id": str(sid), "order_id": "o.id", "line_no": "1", "sku": "'SKU-' || mod(o.id, 500)",
        "name": "'商品 ' || mod(o.id, 500)", "quantity": str(line_quantity), "unit_price": "199.00",
        "category": "'apparel'",
    }, source=f"(SELECT id FROM orders_order WHERE store_id = {sid} ORDER BY id) AS o")
    # Paid and signed for, so the policy engine decides on complete facts as it would in production.
    orders_of_store = f"(SELECT id, placed_at FROM orders_order WHERE store_id = {sid}) AS o"
    bulk_insert_select(Payment, {"store_id": str(sid), "order_id": "o.id", "method": "'alipay'", "amount": "199.00"},
                       source=orders_of_store)
    bulk_insert_select(Shipment, {
        "store_id": str(sid), "order_id": "o.id", "carrier": "'SF'", "tracking_number": "'SF' || lpad(o.id::text, 10, '0')",
        "shipped_at": "o.placed_at + interval '1 day'", "signed_at": "o.placed_at + interval '3 days'",
    }, source=orders_of_store)
    with connection.cursor() as cursor:
        # Vacuumed as well as analysed: autovacuum would otherwise visit the freshly loaded tables during
        # the first measured run and take CPU from it.
        cursor.execute("VACUUM ANALYZE")
        # And written out: the checkpoint after a load this size would otherwise fall in the first run.
        cursor.execute("CHECKPOINT")
    pairs = list(OrderLine.objects.filter(store_id=sid).order_by("pk").values_list("order_id", "pk"))
    print(f"loaded {n_buyers} buyers, {len(pairs)} orders with one line each in {time.perf_counter() - started:.1f} s")
    return pairs


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
