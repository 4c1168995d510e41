"""The SLA sweep over a large open backlog: 1,000,000 open cases across 10 stores, 10,000 of them past
their deadline. Measures (1) finding what is due, the set-based part, and (2) the whole sweep, which acts
on every due case with the system actor, the cases of one store due under one rule moved together
(aftersales/cases/bulk.py; `--one-by-one`: each through `transition_case`), then (3) the same sweep run
again at once, which must find nothing to do. Each due case has its SLA clocks running (first response and
resolution, as under a store's policy), unless --no-clocks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/any python benchmarks/sla_sweep.py [--cases 1000000]
        [--due 10000] [--runs 2] [--broker redis://127.0.0.1:6379/14] [--one-by-one] [--no-clocks] [--keep-db]

It works in its own database (aftersales_bench_sla) next to the one DATABASE_URL names, bulk-loaded with
INSERT ... SELECT generate_series; between runs the acted cases are put back as they were, due again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

from _common import bulk_insert_select, machine_load, migrate, recreate_database, setup_django

DB_NAME = "aftersales_bench_sla"
STORES = 10
# Due cases, by what their timeout does: approve (refund_only: on to refunding), expire, close.
DUE_MIX = (("refund_only", "pending_review", "shop_review_timeout.auto_approve"),
           ("return_refund", "awaiting_return", "buyer_ship_timeout.expire"),
           ("return_refund", "rejected", "escalation_window.close"))


def load(cases: int, due: int, clocks: bool) -> list[tuple[int, str, str, str]]:
    from django.db import connection

    from aftersales.cases.models import Case
    from aftersales.stores.models import Buyer
    from aftersales.stores.services import create_store

    started = time.perf_counter()
    stores = [create_store(name=f"Sweep {n}", slug=f"sweep-{n}").pk for n in range(STORES)]
    for sid in stores:
        bulk_insert_select(Buyer, {"store_id": str(sid), "external_id": "'B' || g", "name": "'买家' || g"}, count=100)
    mix_kind = "(ARRAY[" + ",".join(f"'{k}'" for k, _, _ in DUE_MIX) + "])[1 + mod(g, 3)]"
    mix_status = "(ARRAY[" + ",".join(f"'{s}'" for _, s, _ in DUE_MIX) + "])[1 + mod(g, 3)]"
    mix_rule = "(ARRAY[" + ",".join(f"'{r}'" for _, _, r in DUE_MIX) + "])[1 + mod(g, 3)]"
    # Every `cases / due`-th case is due (spread over the stores and the id range, as in life: the store is
    # shifted by g / step, or every due case would land in one store); the others wait in pending_review
    # with a deadline up to 48 hours ahead.
    step = cases // due
    is_due = f"mod(g, {step}) = 0 AND g / {step} <= {due}"
    bulk_insert_select(Case, {
        "store_id": "x.store_id",
        "number": "'SW-' || lpad(g::text, 8, '0')",
        "kind": f"CASE WHEN {is_due} THEN {mix_kind} ELSE 'return_refund' END",
        "status": f"CASE WHEN {is_due} THEN {mix_status} ELSE 'pending_review' END",
        "buyer_id": "x.first_buyer + mod(g, 100)",
        "channel": "'web'",
        "priority": "2",
        "deadline_at": f"CASE WHEN {is_due} THEN now() - interval '1 minute' * (1 + mod(g, 600)) "
                       "ELSE now() + interval '1 second' * (60 + mod(g::bigint * 7919, 172800)) END",
        "deadline_rule": f"CASE WHEN {is_due} THEN {mix_rule} ELSE 'shop_review_timeout.auto_approve' END",
        "created_at": "now() - interval '3 days'",
        "updated_at": "now() - interval '3 days'",
        "status_changed_at": "now() - interval '3 days'",
    }, source=f"""(SELECT g, s.store_id, s.first_buyer FROM generate_series(1, {cases}) AS g
                   JOIN (SELECT store_id, min(id) AS first_buyer,
                                row_number() OVER (ORDER BY store_id) - 1 AS k
                         FROM stores_buyer GROUP BY store_id) AS s ON s.k = mod(g + g / {step}, {STORES})) AS x""")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE cases_case")
    if clocks:
        from aftersales.sla.models import SlaPolicy

        for sid in stores:
            SlaPolicy.objects.create(store_id=sid, name="default", first_response_minutes=24 * 60,
                                     resolution_minutes=72 * 60, business_time=False)
        start_clocks()
    due_cases = list(Case.objects.filter(deadline_at__lte=dt.datetime.now(dt.UTC))
                     .values_list("pk", "kind", "status", "deadline_rule"))
    print(f"loaded {cases:,} open cases in {STORES} stores, {len(due_cases):,} due, in "
          f"{time.perf_counter() - started:.1f} s")
    return due_cases


def start_clocks() -> None:
    """Every due case with its first response and resolution clocks running, as under a store's SLA
    policy: acting on the case stops, meets or pauses them. They are not due yet, so the clock sweep
    (warnings and breaches, one by one) has nothing to do and the figure is the timeouts'."""
    from aftersales.sla.models import SlaClock

    for target, minutes in (("first_response", 24 * 60), ("resolution", 72 * 60)):
        bulk_insert_select(SlaClock, {
            "store_id": "c.store_id", "case_id": "c.id", "policy_id": "p.id", "target": f"'{target}'",
            "business_time": "false", "budget_seconds": str(minutes * 60), "warn_seconds": str(minutes * 48),
            "consumed_seconds": "0", "started_at": "now() - interval '1 hour'",
            "running_since": "now() - interval '1 hour'",
            "due_at": f"now() + interval '{minutes - 60} minutes'",
            "warn_at": f"now() + interval '{minutes * 8 // 10 - 60} minutes'",
        }, source="cases_case c JOIN sla_slapolicy p ON p.store_id = c.store_id WHERE c.deadline_at <= now()")


def reset(due: list[tuple[int, str, str, str]], clocks: bool) -> None:
    """Puts the cases the last run moved back where they were, due again."""
    from django.db import connection

    ids, kinds, statuses, rules = (list(column) for column in zip(*due, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE cases_case c SET kind = v.kind, status = v.status, deadline_rule = v.rule, closed_at = NULL, "
            "deadline_at = now() - interval '5 minutes' "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(id, kind, status, rule) "
            "WHERE c.id = v.id", [ids, kinds, statuses, rules])
        cursor.execute("DELETE FROM sla_slaclock")
        cursor.execute("VACUUM ANALYZE cases_case")
    if clocks:
        start_clocks()


def explain_due_query() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT deadline_at, id, store_id, deadline_rule FROM cases_case "
                       "WHERE deadline_at <= now() ORDER BY deadline_at, id LIMIT 500")
        print("  plan: " + " / ".join(row[0].strip() for row in cursor.fetchall()[:3]))


def run_once(label: str, bulk: bool = True) -> None:
    from aftersales.core import clock
    from aftersales.sla import services

    now = clock.now()
    started = time.perf_counter()
    found, cursor = 0, None
    while True:
        rows = services.due_deadlines(now=now, after=cursor, limit=500)
        if not rows:
            break
        found += len(rows)
        cursor = (rows[-1][0], rows[-1][1])
    find_s = time.perf_counter() - started

    dispatch = ""
    if os.environ.get("CELERY_BROKER_URL"):
        from aftersales.sla import tasks

        started = time.perf_counter()
        sent = tasks.sweep()  # called here, not by a worker: it finds, sends the batches and returns
        dispatch = f"sweep task sent {sent['dispatched']:,} in batches to the broker in {time.perf_counter() - started:.2f} s; "
        _purge_queue()

    started = time.perf_counter()
    result = services.sweep_timeouts(now=now, bulk=bulk)
    sweep_s = time.perf_counter() - started

    started = time.perf_counter()
    again = services.sweep_timeouts(now=now, bulk=bulk)
    again_s = time.perf_counter() - started
    if os.environ.get("CELERY_BROKER_URL"):
        _purge_queue()  # what the moved cases announced (notifications) went there too
    print(f"{label}: find {found:,} due in {find_s:.2f} s; {dispatch}sweep acted on {result.acted:,} "
          f"(skipped {result.skipped}, failed {result.failed}) in {sweep_s:.2f} s "
          f"({result.acted / sweep_s if sweep_s else 0:,.0f} cases/s); "
          f"second sweep acted on {again.acted} in {again_s:.2f} s; {machine_load()}")


def _purge_queue() -> None:
    """Drops the batches just sent: no worker consumes this benchmark's broker database."""
    from aftersales.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--no-clocks", action="store_true", help="no SLA policy, no clocks on the due cases")
    parser.add_argument("--one-by-one", action="store_true", help="act through transition_case, case by case")
    parser.add_argument("--broker", default="",
                        help="also time the sweep task sending its batches here, e.g. redis://127.0.0.1:6379/14 "
                             "(a database no worker reads; its default queue is emptied after)")
    args = parser.parse_args()
    if args.broker:
        os.environ["CELERY_BROKER_URL"] = args.broker

    recreate_database(DB_NAME)
    setup_django(DB_NAME)
    migrate()
    due_cases = load(args.cases, args.due, clocks=not args.no_clocks)
    explain_due_query()
    try:
        for n in range(1, args.runs + 1):
            if n > 1:
                reset(due_cases, clocks=not args.no_clocks)
            run_once(f"run {n}", bulk=not args.one_by_one)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            import psycopg
            from _common import _server_conninfo

            with psycopg.connect(_server_conninfo(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
