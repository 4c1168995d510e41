"""Where a create's CPU goes, stage by stage, in one process that opens cases one after another through
the WSGI application (no HTTP server, no network in front).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/case_create_stages.py [--cases 2000] [--reuse]

Each stage is a function of the path (Ninja's handling, the service, the read, the policy engine, the
write, the answer...) wrapped to add up the CPU its thread spent inside it (`time.thread_time`, so time
waiting for PostgreSQL does not count). Nested stages are counted in their parents too, so the figures do
not add up to the whole. A profiler measures the same functions in a tight loop of their own; here they
run as they do in a busy web process, between everything else, where the CPU's caches hold little of
them: the policy engine, for one, costs three to four times what the same call costs in a loop.

It uses the database of `case_create_http.py` (loaded by it, or here when missing or without --reuse)
and the orders no case claims yet, so the scripts can take turns on one database.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from _common import (
    machine_load,
)
from case_create_http import DB_NAME, body_for, orders_for_a_run

WARM_UP = 50


def stages() -> list[tuple[Any, str, str]]:
    """(owner, attribute, label) of every function timed, outermost first."""
    import ninja.operation
    import psycopg
    from django.core.handlers import base as django_handler
    from django.db.models import Model
    from django.http import HttpResponse

    from aftersales import api
    from aftersales.cases import api as cases_api
    from aftersales.cases import models as case_models
    from aftersales.cases import order_claims, services
    from aftersales.core import bulk_writes
    from aftersales.notifications import services as notifications
    from aftersales.policies import services as policies
    from aftersales.sla import services as sla

    return [
        (django_handler.BaseHandler, "resolve_request", "Django: resolving the URL"),
        (HttpResponse, "__init__", "Django: HttpResponse()"),
        (ninja.operation.Operation, "run", "Ninja: the operation (auth, body, view)"),
        (api.ActorAuth, "__call__", "  the API token"),
        (services, "create_case", "    services.create_case"),
        (order_claims, "read", "      reading the order and the rest"),
        (order_claims, "_order_from", "        the order, store, policy and buyer instances"),
        (order_claims, "from_json", "        lines, payments, shipments, policies (from JSON)"),
        (services, "_open_case", "      everything after the read"),
        (policies, "decide", "        the policy engine"),
        (services, "publish", "        the event (outbox row)"),
        (bulk_writes, "insert_together", "        writing the rows (one statement)"),
        (services.transaction, "on_commit", "        after-commit work (follow-up jobs)"),
        (Model, "__init__", "        Model.__init__ (any model)"),
        # Imported by name where it is used: timed in each of those modules, counted together.
        *((module, "new_row", "        new rows (core.rows.new_row)") for module in (services, case_models, notifications, sla)),
        (cases_api, "_detail", "    the answer's data"),
        (cases_api, "_render", "    rendering the answer"),
        (psycopg.Cursor, "execute", "psycopg: executing a statement (all)"),
        (psycopg.Cursor, "fetchone", "psycopg: fetching a row (all)"),
    ]


def timed(function: Callable[..., Any], label: str, spent: Counter[str]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - start
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000, help="cases opened and measured (default %(default)s)")
    parser.add_argument("--reuse", action="store_true", help=f"use {DB_NAME} as an earlier run left it")
    args = parser.parse_args()
    if not 1 <= args.cases <= 50_000:
        sys.exit("keep --cases within 1..50000")

    _, token, pairs, _ = orders_for_a_run(reuse=args.reuse, orders=WARM_UP + args.cases)
    if len(pairs) < WARM_UP + args.cases:
        sys.exit(f"only {len(pairs)} unclaimed order lines, {WARM_UP + args.cases} needed: run without --reuse")

    from aftersales.core import kicks
    from aftersales.wsgi import application

    # Follow-up jobs go to the broker in batches of MAX_BATCH, as in a busy process, never on a timer.
    kicks.INTERVAL = 10**9

    def open_case(body: bytes) -> None:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/cases", "QUERY_STRING": "", "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {token}",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }
        statuses: list[str] = []
        answer = b"".join(application(environ, lambda status, headers: statuses.append(status)))
        if not statuses[0].startswith("201"):
            raise RuntimeError(f"{statuses[0]}: {answer[:300]!r}")

    bodies = [body_for(order_id, line_id).encode() for order_id, line_id in pairs[:WARM_UP + args.cases]]
    for body in bodies[:WARM_UP]:  # imports, the URL patterns, prepared statements, the store's sequence
        open_case(body)

    spent: Counter[str] = Counter()
    for owner, attribute, label in stages():
        setattr(owner, attribute, timed(getattr(owner, attribute), label, spent))
    whole = "the WSGI application (the whole request)"
    start = time.thread_time()
    for body in bodies[WARM_UP:]:
        one = time.thread_time()
        open_case(body)
        spent[whole] += time.thread_time() - one
    elapsed = time.thread_time() - start

    print(f"{args.cases} cases, {elapsed * 1000 / args.cases:.3f} ms of CPU each ({machine_load()})")
    width = max(len(label) for _, _, label in stages())
    print(f"{'stage':<{width}}  µs a case  share")
    for label in dict.fromkeys([whole, *(label for _, _, label in stages())]):  # each once, in order
        micros = spent[label] * 1e6 / args.cases
        print(f"{label:<{width}}  {micros:9.1f}  {100 * spent[label] / spent[whole]:4.0f} %")


if __name__ == "__main__":
    main()
