"""How many return cases a second the HTTP API opens, and how fast, under gunicorn on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/case_create_http.py --servers sync:3,sync:4,gthread:4x4 --duration 20

Recreates the database `aftersales_bench` (never the one DATABASE_URL names), migrates it, loads one
store, an API token and one-line orders, then for each server configuration starts gunicorn on a free
loopback port and drives POST /api/v1/cases from `wrk` at a fixed number of connections for a bounded
time. Every request claims a different order line, so each one is a real create (order row lock,
quantity check, case number, case row, case line, two timeline entries, deadline), not a 422.
Needs `wrk` (Debian package `wrk`). Prints requests/s, p50/p95/p99 latency and errors per run, and
checks the database afterwards: every case written has one line and at least two timeline entries.
First it measures a yardstick of the machine (single-row INSERTs a second from one connection), since
the same code runs twice as fast on one machine as on another. `--reuse` keeps the database of an
earlier run and uses its orders that no case claims yet, instead of loading 200,000 again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    database_exists,
    free_port,
    interpreter,
    load_buyers_and_orders,
    machine_cpu_seconds,
    machine_load,
    make_store_with_token,
    migrate,
    print_table,
    recreate_database,
    setup_django,
)

DB_NAME = "aftersales_bench"

# The start of a wrk script that sends the same kind of request from every thread: done() (WRK_SUMMARY)
# reads the threads from `threads`.
WRK_THREADS = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end
"""

# Appended to every wrk script here: done() reports the percentiles wrk does not print itself (p95), and
# how far the furthest thread got through its share of the bodies (`pos`, 0 if the script has none), as one
# JSON line. The script keeps its threads in a table `threads` (setup()).
WRK_SUMMARY = r"""
function done(summary, latency, requests)
  local used = 0
  for _, thread in ipairs(threads) do
    local p = thread:get("pos") or 0
    if p > used then used = p end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "errors_status": %d, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f, "bodies_used_per_thread": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean, used))
end
"""

# wrk's Lua side: each thread takes every n-th prepared body, so no two requests claim the same line.
WRK_SCRIPT = r"""
local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  bodies = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if i % nthreads == tid then bodies[#bodies + 1] = line end
    i = i + 1
  end
  pos = 0
  headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"), ["Content-Type"] = "application/json"}
end

function request()
  pos = pos + 1
  -- Past the end the last body is sent again: a 422 that shows up as an error, never a silent success.
  local body = bodies[pos] or bodies[#bodies]
  return wrk.format("POST", "/api/v1/cases", headers, body)
end

""" + WRK_SUMMARY


@dataclass(frozen=True)
class ServerConfig:
    worker_class: str
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        """sync:4 (four sync workers), gthread:2x4 (two workers of four threads) or gevent:2x16 (two workers
        of up to sixteen connections each, served by greenlets)."""
        kind, _, size = text.partition(":")
        if kind not in ("sync", "gthread", "gevent") or not size:
            raise argparse.ArgumentTypeError(f"{text!r}: expected sync:N, gthread:NxT or gevent:NxC")
        workers, _, threads = size.partition("x")
        return cls(kind, int(workers), int(threads or 1))

    def __str__(self) -> str:
        return f"{self.worker_class}:{self.workers}" + (f"x{self.threads}" if self.worker_class != "sync" else "")


class Gunicorn:
    """gunicorn serving this project, or (`app`, `python`, `cwd`) another Django site to compare with."""

    def __init__(self, config: ServerConfig, database_url: str, log_path: Path, *,
                 app: str = "aftersales.wsgi:application", python: str = sys.executable, cwd: Path = REPO,
                 ready_path: str = "/api/v1/reason-codes", token_scheme: str = "Bearer",
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.log = log_path.open("ab")
        self.ready_path, self.token_scheme = ready_path, token_scheme
        env = {**os.environ, "DATABASE_URL": database_url, "AFTERSALES_LOG_LEVEL": "WARNING", **(extra_env or {})}
        command = [
            python, "-m", "gunicorn", app,
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(config.workers),
            "--worker-class", config.worker_class,
            *(["--worker-connections", str(config.threads)] if config.worker_class == "gevent"
              else ["--threads", str(config.threads)]),
            "--backlog", "2048", "--timeout", "60", "--log-level", "warning",
        ]
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self.log, stderr=self.log,
                                        start_new_session=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, token: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"{self.base_url}{self.ready_path}",
                                         headers={"Authorization": f"{self.token_scheme} {token}"})
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer in time")

    def stop(self) -> None:
        # Only the master we started: it stops its own workers on SIGTERM.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def post_one(base_url: str, token: str, body: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{base_url}/api/v1/cases", data=body.encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def run_wrk(base_url: str, *, token: str, bodies: list[str], seconds: int, connections: int, threads: int,
            workdir: Path) -> dict[str, float]:
    bodies_path = workdir / "bodies.jsonl"
    bodies_path.write_text("\n".join(bodies) + "\n")
    return run_wrk_script(f"{base_url}/api/v1/cases", WRK_SCRIPT, env={"BENCH_TOKEN": token, "BENCH_BODIES": str(bodies_path)},
                          seconds=seconds, connections=connections, threads=threads, workdir=workdir)


def run_wrk_script(url: str, script: str, *, env: dict[str, str], seconds: int, connections: int, threads: int,
                   workdir: Path) -> dict[str, float]:
    """Runs wrk with a Lua `script` that ends in WRK_SUMMARY, for a bounded time, and returns its summary."""
    script_path = workdir / "bench.lua"
    script_path.write_text(script)
    env = {**os.environ, **env, "BENCH_THREADS": str(threads)}
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
               "-s", str(script_path), url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
    figures: dict[str, float] = json.loads(line[len("BENCH "):])
    figures["bodies_used"] = figures["bodies_used_per_thread"] * threads
    return figures


def body_for(order_id: int, line_id: int) -> str:
    return json.dumps({"kind": "return_refund", "order_id": order_id,
                       "lines": [{"order_line_id": line_id, "quantity": 1}], "reason": "quality"},
                      separators=(",", ":"))


def database_counts(store_id: int) -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM cases_case WHERE store_id = %s), "
            "(SELECT count(*) FROM cases_caseline WHERE store_id = %s), "
            "(SELECT count(*) FROM cases_timelineentry WHERE store_id = %s)",
            [store_id, store_id, store_id],
        )
        row = cursor.fetchone()
    connection.close()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


COLUMNS = ["server", "run", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "web CPU ms/req",
           "PostgreSQL CPU ms/req", "machine CPU ms/req", "idle %", "cases written", "lines+timeline ok"]


def cpu_seconds_by_group(master_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) spent so far by the gunicorn master and its workers ("web") and by
    every PostgreSQL process, backends and background writers alike ("db"), read from /proc (Linux).
    Taken before and after a run, divided by its requests: a figure that says where the time went,
    which the rate alone cannot."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {"web": 0.0, "db": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:  # the process ended while we looked
            continue
        # The command may hold spaces and parentheses; the fields after its closing parenthesis do not.
        fields = stat[stat.rindex(")") + 2:].split()
        parent, cpu = int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks
        if int(entry.name) == master_pid or parent == master_pid:
            totals["web"] += cpu
        elif title.startswith(b"postgres"):
            totals["db"] += cpu
    return totals


def measure_run(server: Gunicorn, drive: Callable[[], dict[str, float]]) -> tuple[dict[str, float], list[str]]:
    """Runs `drive` (wrk against `server`) and returns its summary with what a request cost, formatted:
    the web processes' CPU, PostgreSQL's, the whole machine's (wrk, the kernel's network work and Redis
    too) and how idle the machine stayed. If idle is near zero the run was bound by the CPU, and the
    machine's CPU per request is the budget the cores have to share."""
    cpu_before, machine_before = cpu_seconds_by_group(server.process.pid), machine_cpu_seconds()
    figures = drive()
    cpu_after, machine_after = cpu_seconds_by_group(server.process.pid), machine_cpu_seconds()
    requests = max(1, int(figures["requests"]))
    web_ms, db_ms = ((cpu_after[group] - cpu_before[group]) * 1000 / requests for group in ("web", "db"))
    busy, idle = (after - before for after, before in zip(machine_after, machine_before, strict=True))
    return figures, [f"{web_ms:.2f}", f"{db_ms:.2f}", f"{busy * 1000 / requests:.2f}",
                     f"{100 * idle / max(busy + idle, 1e-9):.0f}"]


def unclaimed_orders_of_earlier_run() -> tuple[Any, str, list[tuple[int, int]]]:
    """The store an earlier run loaded, a new token for it and the order lines no case claims yet."""
    from django.db import connection

    from aftersales.stores import services
    from aftersales.stores.models import Store

    store = Store.objects.get(slug="bench")
    _, token = services.create_api_token(store=store, name="bench again", scopes=["cases:write", "orders:read"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.order_id, l.id FROM orders_orderline l WHERE l.store_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM cases_caseline c WHERE c.order_line_id = l.id) ORDER BY l.id",
            [store.pk],
        )
        pairs = [(int(order_id), int(line_id)) for order_id, line_id in cursor.fetchall()]
    print(f"reusing {DB_NAME}: {len(pairs)} order lines not yet claimed")
    return store, token, pairs


def orders_for_a_run(*, reuse: bool, orders: int) -> tuple[Any, str, list[tuple[int, int]], bool]:
    """Django set up on the benchmark's database, with its store, an API token and order lines no case
    claims yet: an earlier run's with `reuse` (if its database is there), else `orders` new one-line
    orders in a new database. The last item says whether they were loaded now."""
    if reuse and database_exists(DB_NAME):
        setup_django(DB_NAME)
        return (*unclaimed_orders_of_earlier_run(), False)
    recreate_database(DB_NAME)
    setup_django(DB_NAME)
    migrate()
    store, token = make_store_with_token("bench")
    return store, token, load_buyers_and_orders(store, buyers=max(1, orders // 4), orders=orders), True


def single_row_insert_rate(database_url: str, seconds: float = 3.0) -> float:
    """A yardstick for the machine: single-row INSERTs a second that PostgreSQL commits for one connection
    (autocommit, a bigserial key, a timestamp and a short text, fsync as configured). Machines differ by
    a factor of two and more; figures from two of them compare only through this."""
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_yardstick")
        conn.execute("CREATE TABLE bench_yardstick (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), "
                     "note text NOT NULL)")
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute("INSERT INTO bench_yardstick (note) VALUES (%s)", ["x"], prepare=True)
            done += 1
        rate = done / (time.perf_counter() - started)
        conn.execute("DROP TABLE bench_yardstick")
    return rate


def seed_cases(config: ServerConfig, database_url: str, token: str, bodies: list[str], *, log_path: Path,
               workdir: Path, connections: int, threads: int, seconds: int = 5) -> int:
    """Opens cases for a few seconds, unmeasured, then analyses the case tables; returns the bodies used.

    Each connection plans its prepared statements once. Planned while the case tables were still empty,
    the claims query scanned cases and case lines from end to end, a little longer with every case the
    run opened (26 million case rows read in one series), which is why the first run after a load was
    always the slow one. A store in production never has empty tables for long; this does what time
    does there."""
    from django.db import connection

    server = Gunicorn(config, database_url, log_path)
    try:
        server.wait_ready(token)
        figures = run_wrk(server.base_url, token=token, bodies=bodies, seconds=seconds, connections=connections,
                          threads=threads, workdir=workdir)
    finally:
        server.stop()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cases_case, cases_caseline, cases_timelineentry, notifications_outboxevent")
    connection.close()
    print(f"seeded {int(figures['requests'])} cases in {seconds} s (unmeasured), then analysed the case tables")
    return int(figures["bodies_used"])


def latency_cells(figures: dict[str, float]) -> list[str]:
    """p50, p95, p99 and the longest, in milliseconds, from wrk's summary (WRK_SUMMARY)."""
    return [f"{figures['p50_us'] / 1000:.1f}", f"{figures['p95_us'] / 1000:.1f}", f"{figures['p99_us'] / 1000:.1f}",
            f"{figures['max_us'] / 1000:.0f}"]


def add_load_arguments(parser: argparse.ArgumentParser, *, duration: int) -> None:
    """How long and how hard wrk drives each run: shared by the scripts that start gunicorn and wrk."""
    parser.add_argument("--duration", type=int, default=duration, help="seconds of measured load per run (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first (default %(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default %(default)s)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default %(default)s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="sync:3,sync:4,gthread:4x4", type=lambda s: [ServerConfig.parse(x) for x in s.split(",")],
                        help="comma-separated gunicorn configurations: sync:N or gthread:NxT (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration (default %(default)s)")
    add_load_arguments(parser, duration=20)
    parser.add_argument("--orders", type=int, default=200_000,
                        help="one-line orders to load; each request uses one (default %(default)s)")
    parser.add_argument("--reuse", action="store_true",
                        help=f"keep {DB_NAME} from an earlier run and use its orders that no case claims yet")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    if not 1 <= args.duration <= 300 or not 0 <= args.warmup <= 60:
        sys.exit("keep --duration within 1..300 s and --warmup within 0..60 s")

    store, token, pairs, loaded_now = orders_for_a_run(reuse=args.reuse, orders=args.orders)
    database_url = os.environ["DATABASE_URL"]  # setup_django points it at the benchmark's database
    bodies = [body_for(order_id, line_id) for order_id, line_id in pairs]
    from django.db import connection

    connection.close()
    yardstick = single_row_insert_rate(database_url)
    print(f"yardstick: {yardstick:,.0f} single-row INSERTs/s committed from one connection ({machine_load()})")

    results: list[list[object]] = []
    used = 0
    with tempfile.TemporaryDirectory(prefix="case-create-bench-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "gunicorn.log"
        if loaded_now:  # a reused database holds the cases of its earlier runs
            used += seed_cases(args.servers[0], database_url, token, bodies, log_path=log_path, workdir=workdir,
                               connections=args.connections, threads=args.wrk_threads)
        for config in args.servers:
            for run in range(1, args.repeat + 1):
                server = Gunicorn(config, database_url, log_path)
                try:
                    server.wait_ready(token)
                    status, answer = post_one(server.base_url, token, bodies[used])
                    if status != 201:
                        raise RuntimeError(f"a single create answered {status}: {answer[:500]}")
                    used += 1
                    if args.warmup:
                        warm = run_wrk(server.base_url, token=token, bodies=bodies[used:], seconds=args.warmup,
                                       connections=args.connections, threads=args.wrk_threads, workdir=workdir)
                        used += int(warm["bodies_used"])
                    before = database_counts(store.pk)
                    load = machine_load()
                    figures, costs = measure_run(server, lambda url=server.base_url, rest=bodies[used:]: run_wrk(
                        url, token=token, bodies=rest, seconds=args.duration,
                        connections=args.connections, threads=args.wrk_threads, workdir=workdir))
                    used += int(figures["bodies_used"])
                    if used > len(bodies):
                        print(f"warning: ran out of prepared order lines ({used} > {len(bodies)}): raise --orders")
                finally:
                    server.stop()
                after = database_counts(store.pk)
                errors = sum(int(figures[k]) for k in figures if k.startswith("errors_"))
                rate = figures["requests"] / (figures["duration_us"] / 1e6)
                created = after[0] - before[0]
                # One line each, and at least "created" and "submit" on the timeline (more if the policy auto-approves).
                consistent = after[1] - before[1] == created and after[2] - before[2] >= 2 * created
                row = [str(config), run, f"{rate:.0f}", *latency_cells(figures), errors, *costs, created,
                       "yes" if consistent else "NO", load]
                results.append(row)
                print_table([row], [*COLUMNS, "before the run"])
        print()
        print(f"POST /api/v1/cases, {args.connections} connections, {args.duration} s per run after "
              f"{args.warmup} s warm-up, wrk -t{args.wrk_threads}; yardstick {yardstick:,.0f} single-row INSERTs/s; "
              f"{interpreter()}")
        print_table(results, [*COLUMNS, "load before the run"])
        if log_path.exists() and log_path.stat().st_size:
            print("\ngunicorn said:\n" + log_path.read_text()[-3000:])


if __name__ == "__main__":
    main()
