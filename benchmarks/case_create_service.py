"""What opening one case costs, measured in one process with no HTTP in front: the service's own CPU,
PostgreSQL's CPU for the connection, the WAL written and the round trips, per case.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/case_create_service.py [--cases 2000] [--rounds 3] [--reuse]

The HTTP benchmark (`case_create_http.py`) gives the figure the issue asks for, but on a shared machine
its rate moves by ±15 % from one run to the next, more than most single changes gain. Here the client
and one backend run one after the other, so their CPU can be read apart; the WAL and the round trips do
not depend on the machine at all. Each round opens `--cases` return cases, one order each, through
`services.create_case`, as an API token would; the table gives every round and the median.

It uses the database of `case_create_http.py` (loaded by it, or here when missing or without --reuse)
and the orders no case claims yet, so the two can alternate on one database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from _common import (
    machine_load,
    print_table,
)
from case_create_http import DB_NAME, orders_for_a_run


def backend_cpu_seconds(pid: int) -> float:
    """User + system CPU of one PostgreSQL backend, from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000, help="cases opened per round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default %(default)s)")
    parser.add_argument("--reuse", action="store_true", help=f"use {DB_NAME} as an earlier run left it")
    parser.add_argument("--orders", type=int, default=0,
                        help="one-line orders to load when loading (default: what the rounds need)")
    args = parser.parse_args()
    if not 1 <= args.cases <= 50_000 or not 1 <= args.rounds <= 20:
        sys.exit("keep --cases within 1..50000 and --rounds within 1..20")

    store, _, pairs, _ = orders_for_a_run(reuse=args.reuse, orders=max(args.orders, 200 + args.cases * args.rounds))
    needed = 200 + args.cases * args.rounds
    if len(pairs) < needed:
        sys.exit(f"only {len(pairs)} unclaimed order lines, {needed} needed: run without --reuse")

    from django.db import connection

    from aftersales.cases import services
    from aftersales.stores.permissions import token_actor

    actor = token_actor(store_id=store.pk, token_id=0, scopes=["cases:write"], label="token:bench")

    def open_case(order_id: int, line_id: int) -> None:
        services.create_case(actor=actor, kind="return_refund", order_id=order_id, reason_code="quality",
                             lines=[services.LineRequest(order_line_id=line_id, quantity=1)])

    # Counts what the connection sends: one entry per statement executed through a psycopg cursor or a
    # transaction command (BEGIN, COMMIT), the round trips of a request.
    import psycopg

    sent = [0]
    original_execute = psycopg.Cursor.execute
    original_commit = psycopg.Connection.commit

    def counting_execute(self, *a, **k):  # type: ignore[no-untyped-def]
        sent[0] += 1
        return original_execute(self, *a, **k)

    def counting_commit(self):  # type: ignore[no-untyped-def]
        if self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            sent[0] += 2  # the BEGIN psycopg sent before the first statement, and this COMMIT
        return original_commit(self)

    psycopg.Cursor.execute = counting_execute  # type: ignore[method-assign]
    psycopg.Connection.commit = counting_commit  # type: ignore[method-assign]

    for order_id, line_id in pairs[:150]:  # warm: caches, the store's sequence
        open_case(order_id, line_id)
    # A connection plans its prepared statements once; planned on empty case tables, the claims query
    # scans them whole (see case_create_http.seed_cases). Analyse, and plan again on a new connection.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cases_case, cases_caseline, cases_timelineentry, notifications_outboxevent")
    connection.close()
    for order_id, line_id in pairs[150:200]:
        open_case(order_id, line_id)
    backend = connection.connection.info.backend_pid
    rows = []
    position = 200
    print(f"{args.rounds} rounds of {args.cases} cases ({machine_load()})")
    for round_number in range(1, args.rounds + 1):
        batch = pairs[position:position + args.cases]
        position += args.cases
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            wal_start = cursor.fetchone()[0]
        sent[0] = 0
        times = os.times()
        client_start, backend_start, wall_start = times.user + times.system, backend_cpu_seconds(backend), time.perf_counter()
        for order_id, line_id in batch:
            open_case(order_id, line_id)
        times = os.times()
        client, backend_cpu, wall = (times.user + times.system - client_start, backend_cpu_seconds(backend) - backend_start,
                                     time.perf_counter() - wall_start)
        statements = sent[0]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal_start])
            wal = float(cursor.fetchone()[0])
        n = len(batch)
        rows.append([round_number, f"{wall * 1000 / n:.3f}", f"{client * 1000 / n:.3f}", f"{backend_cpu * 1000 / n:.3f}",
                     f"{wal / n:,.0f}", f"{statements / n:.2f}"])
    header = ["round", "wall ms/case", "client CPU ms/case", "PostgreSQL CPU ms/case", "WAL bytes/case",
              "statements/case"]
    rows.append(["median", *(f"{statistics.median(float(r[i].replace(',', '')) for r in rows):.3f}"
                             for i in range(1, 6))])
    print_table(rows, header)


if __name__ == "__main__":
    main()
