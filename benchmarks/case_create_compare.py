"""Opening a return case here against opening a ticket in django-helpdesk, on the same machine, in turns;
with --intake and --floor, against the least a request could cost on this stack and on gunicorn alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python benchmarks/case_create_compare.py [--rounds 3] [--duration 15] [--intake] [--floor] \\
        [--several 3] [--reuse]

Issue 2 gives two figures for scale, both from its reference machine: django-helpdesk opens 73 tickets a
second, and the target is 1,000 cases a second, 13.7 times as many. Machines of the same kind differ here
by a factor of three from one hour to the next (see README.md), so a rate measured alone cannot say
whether the target would be met there; the ratio of two rates measured in turns on one machine can,
since both are bound by the same CPU. The script prints that ratio, round by round.

django-helpdesk (from PyPI, pinned below, with the Django, gunicorn and psycopg versions this project
uses) goes into a virtual environment of its own in the system's temporary directory, never into this
project's, with a minimal site: token authentication for its REST API, mail built and then dropped
(Django's dummy backend), PostgreSQL database `aftersales_bench_helpdesk`. A staff user with a token posts
to `/api/tickets/`, which validates the ticket through the helpdesk's own form, saves the ticket and its
first follow-up and renders the mail to the submitter. Our side is `case_create_http.py`'s
`POST /api/v1/cases` on `aftersales_bench`, one order line claimed per request.

`--intake` adds the least a synchronous request can cost on our stack: the same POST through our
middleware, token and schema, stored as one row and answered 202 (a URLconf of this benchmark's own;
no such route exists in the product). `--floor` adds a WSGI application that answers a constant: what
gunicorn, wrk and the kernel cost a request before any application code. `--several N` adds requests
that each open N cases, one after another through the product's own create view (a URLconf of this
benchmark's own again): what sharing one request's cost among several cases would give, before any
batching of their reads and writes.

All run under gunicorn with the same workers, driven by `wrk` at the same number of connections for the
same time, one after the other, each round in the other order. Each run prints the CPU a request cost
the web processes, PostgreSQL and the whole machine (see case_create_http.measure_run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from _common import database_url, interpreter, machine_load, print_table, recreate_database
from case_create_http import (
    COLUMNS,
    WRK_SCRIPT,
    WRK_SUMMARY,
    WRK_THREADS,
    Gunicorn,
    ServerConfig,
    add_load_arguments,
    body_for,
    database_counts,
    latency_cells,
    measure_run,
    orders_for_a_run,
    run_wrk_script,
    seed_cases,
)

HELPDESK_VERSION = "2.6.1"
HELPDESK_DB = "aftersales_bench_helpdesk"
# The helpdesk runs on the interpreter this script runs on, whose build (optimised or not) moves both sides'
# speed: one installation per interpreter.
INTERPRETER = interpreter()
HOME = (Path(tempfile.gettempdir()) / "aftersales-bench-helpdesk"
        / hashlib.sha256(INTERPRETER.encode()).hexdigest()[:12])
ISSUE_RATIO = 1000 / 73  # the target against django-helpdesk's rate, both on the issue's reference machine

SETTINGS = """\
import os
from urllib.parse import urlsplit

url = urlsplit(os.environ["DATABASE_URL"])
SECRET_KEY = {secret!r}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites", "django.contrib.humanize",
    "rest_framework", "rest_framework.authtoken", "helpdesk",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware", "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware", "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "hdsite.urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DATABASES = {{"default": {{
    "ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"), "USER": url.username or "",
    "PASSWORD": url.password or "", "HOST": url.hostname or "", "PORT": url.port or "", "CONN_MAX_AGE": 60,
}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
SITE_ID = 1
STATIC_URL = "/static/"
LOGIN_URL = "/login/"
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
REST_FRAMEWORK = {{"DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"]}}
HELPDESK_TEAMS_MODE_ENABLED = False
"""

URLS = """\
from django.urls import include, path

urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]
"""

WSGI = """\
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
"""

SETUP = """\
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model
from helpdesk.models import Queue
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
queue = Queue.objects.create(title="Returns", slug="returns", email_address="returns@example.com")
print(Token.objects.create(user=user).key, queue.pk)
"""

# Every request opens a new ticket with the same body (the helpdesk has no order to claim).
WRK_TICKETS = WRK_THREADS + r"""
function init(args)
  body = os.getenv("BENCH_BODY")
  headers = {["Authorization"] = "Token " .. os.getenv("BENCH_TOKEN"), ["Content-Type"] = "application/json"}
end

function request()
  return wrk.format("POST", "/api/tickets/", headers, body)
end
""" + WRK_SUMMARY


class Helpdesk:
    """django-helpdesk installed beside this project, with a site, a database, a staff token and a queue."""

    def __init__(self) -> None:
        self.python = str(HOME / "venv" / "bin" / "python")
        self.site = HOME / "site"
        self.url = database_url(HELPDESK_DB)
        self.token = ""
        self.body = ""

    def install(self) -> None:
        pins = [f"django-helpdesk=={HELPDESK_VERSION}", f"Django=={metadata.version('django')}",
                f"gunicorn=={metadata.version('gunicorn')}", f"psycopg[binary]=={metadata.version('psycopg')}"]
        stamp = HOME / "installed.json"
        if stamp.exists() and json.loads(stamp.read_text()) == [INTERPRETER, *pins]:
            return
        shutil.rmtree(HOME, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(HOME / "venv")], check=True)
        subprocess.run([self.python, "-m", "pip", "install", "--quiet", *pins], check=True)
        stamp.write_text(json.dumps([INTERPRETER, *pins]))

    def prepare(self) -> None:
        """A new database and a site whose secret key is made now, for this run only."""
        package = self.site / "hdsite"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "settings.py").write_text(SETTINGS.format(secret=secrets.token_urlsafe(40)))
        (package / "urls.py").write_text(URLS)
        (package / "wsgi_app.py").write_text(WSGI)
        recreate_database(HELPDESK_DB)
        result = subprocess.run([self.python, "-c", SETUP], cwd=self.site, env=self.env(), capture_output=True,
                                text=True, check=True)
        self.token, queue = result.stdout.split()[-2:]
        self.body = json.dumps({"queue": int(queue), "title": "Return: the kettle arrived cracked", "priority": 3,
                                "description": "The kettle's lid is cracked along the hinge; photos attached.",
                                "submitter_email": "buyer@example.com"}, separators=(",", ":"))

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.url, "DJANGO_SETTINGS_MODULE": "hdsite.settings"}

    def server(self, config: ServerConfig, log_path: Path) -> Gunicorn:
        return Gunicorn(config, self.url, log_path, app="hdsite.wsgi_app:application", python=self.python,
                        cwd=self.site, ready_path="/api/tickets/?page_size=1", token_scheme="Token",
                        extra_env={"DJANGO_SETTINGS_MODULE": "hdsite.settings"})

    def tickets(self) -> int:
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1)) as conn:
            row = conn.execute("SELECT count(*) FROM helpdesk_ticket").fetchone()
        return int(row[0]) if row else 0

    def post_one(self, base_url: str) -> int:
        request = urllib.request.Request(f"{base_url}/api/tickets/", data=self.body.encode(), method="POST",
                                         headers={"Authorization": f"Token {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)


@dataclass
class Contender:
    """One kind of request measured in every round: how to start its server, what to send, what it wrote."""

    name: str
    server: Callable[[Path], Gunicorn]
    token: str
    url: str  # the path, appended to the server's address
    script: str
    env: Callable[[], dict[str, str]]  # wrk's environment for the next run (the bodies not used yet)
    count: Callable[[], int] | None = None  # rows of what it makes, None for a read
    advance: Callable[[dict[str, float]], None] = lambda figures: None  # after a run: the bodies it used
    cases_per_request: int = 1


# The floor: what a request costs the server, wrk and the kernel before any application code runs.
WRK_GET = WRK_THREADS + r"""
function init(args)
  headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}
end

function request()
  return wrk.format("GET", nil, headers)
end
""" + WRK_SUMMARY

def write_bench_site(workdir: Path, name: str, imports: str, route: str) -> str:
    """Writes a site of this benchmark's own into `workdir`: the product's settings with a URLconf that
    holds only `route` (the POST under test, at /api/v1/cases, behind our token authentication and
    renderer) and a route to wait on; never a route of the product. Returns its settings module."""
    (workdir / f"{name}_settings.py").write_text(
        f'from aftersales.settings import *  # noqa: F403\n\nROOT_URLCONF = "{name}_urls"\n')
    (workdir / f"{name}_urls.py").write_text(
        "from django.urls import path\nfrom ninja import NinjaAPI\n\n"
        "from aftersales.api import ActorAuth\nfrom aftersales.core.renderers import ApiRenderer\n"
        + imports
        + f'\napi = NinjaAPI(auth=ActorAuth(), renderer=ApiRenderer(), urls_namespace="{name}")\n\n'
        + route
        + '\n\n@api.get("/v1/ready")\ndef ready(request):\n    return {}\n\n\n'
        + 'urlpatterns = [path("api/", api.urls)]\n')
    return f"{name}_settings"


# The least a synchronous intake could cost on this stack: our middleware, the token, the case body
# validated by its own schema, and one durable INSERT of it (a job for later work to open the case from).
INTAKE_IMPORTS = """\
from aftersales.cases.schemas import CaseCreateIn
from aftersales.core.bulk_writes import server_cursor
"""

INTAKE_ROUTE = """\
@api.post("/v1/cases")
def intake(request, body: CaseCreateIn):
    cursor = server_cursor()
    cursor.execute("INSERT INTO bench_intake (store_id, body) VALUES (%s, %s::jsonb) RETURNING id",
                   [request.auth.store_id, body.model_dump_json()], prepare=True)
    return api.create_response(request, {"id": cursor.fetchone()[0]}, status=202)
"""

# Several cases a request, each opened by the product's own create view (the same service, answer and
# rendering as POST /api/v1/cases, each case committed on its own), their answers returned as one list.
SEVERAL_IMPORTS = """\
from django.http import HttpResponse
from ninja import Schema

from aftersales.cases.api import create_case
from aftersales.cases.schemas import CaseCreateIn
"""

SEVERAL_ROUTE = """\
class SeveralIn(Schema):
    cases: list[CaseCreateIn]


@api.post("/v1/cases")
def several(request, body: SeveralIn):
    answers = [create_case(request, case) for case in body.cases]
    return HttpResponse(b"[" + b",".join(answer.content for answer in answers) + b"]", status=201,
                        content_type="application/json")
"""

CONSTANT_APP = """\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="sync:3", type=ServerConfig.parse,
                        help="the gunicorn configuration all run under (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each a run of every contender (default %(default)s)")
    add_load_arguments(parser, duration=15)
    parser.add_argument("--floor", action="store_true",
                        help="also measure what gunicorn costs a request before any application code: a WSGI "
                             "application that answers a constant")
    parser.add_argument("--intake", action="store_true",
                        help="also measure the least a synchronous intake could cost on this stack: the same "
                             "request, validated, stored as one row for later work, answered 202")
    parser.add_argument("--several", type=int, default=0, metavar="N",
                        help="also measure requests that each open N cases through the product's create view")
    parser.add_argument("--reuse", action="store_true",
                        help="use the orders of an earlier case_create_http.py run that no case claims yet")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    if not 1 <= args.rounds <= 10 or not 1 <= args.duration <= 120 or not 0 <= args.warmup <= 30:
        sys.exit("keep --rounds within 1..10, --duration within 1..120 s and --warmup within 0..30 s")
    if args.several == 1 or not 0 <= args.several <= 10:
        sys.exit("--several takes 2..10 cases a request (one a request is the product's own route)")

    helpdesk = Helpdesk()
    helpdesk.install()
    helpdesk.prepare()
    # Enough order lines for every run at 1,500 cases a second; more than this machine has reached.
    store, token, pairs, loaded_now = orders_for_a_run(reuse=args.reuse,
                                                       orders=1500 * (args.duration + args.warmup + 2) * args.rounds
                                                       * (2 if args.several else 1))
    ours_url = os.environ["DATABASE_URL"]
    bodies = [body_for(order_id, line_id) for order_id, line_id in pairs]
    from django.db import connection

    connection.close()
    with tempfile.TemporaryDirectory(prefix="case-create-compare-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "gunicorn.log"
        bodies_path = workdir / "bodies.jsonl"
        used = [0]

        def unused_bodies() -> dict[str, str]:
            bodies_path.write_text("\n".join(bodies[used[0]:]) + "\n")
            return {"BENCH_TOKEN": token, "BENCH_BODIES": str(bodies_path)}

        def advance(figures: dict[str, float]) -> None:
            used[0] += int(figures["bodies_used"])

        def cases_written() -> int:
            return database_counts(store.pk)[0]

        (workdir / "constant_app.py").write_text(CONSTANT_APP)
        contenders = [
            Contender("django-helpdesk: POST /api/tickets/", lambda log: helpdesk.server(args.server, log),
                      helpdesk.token, "/api/tickets/", WRK_TICKETS,
                      lambda: {"BENCH_TOKEN": helpdesk.token, "BENCH_BODY": helpdesk.body}, helpdesk.tickets),
            Contender("aftersales: POST /api/v1/cases", lambda log: Gunicorn(args.server, ours_url, log), token,
                      "/api/v1/cases", WRK_SCRIPT, unused_bodies, cases_written, advance),
        ]
        if args.intake:
            intake_settings = write_bench_site(workdir, "intake", INTAKE_IMPORTS, INTAKE_ROUTE)
            intake_table(create=True)
            contenders.append(Contender(
                "the floor of an intake: POST /api/v1/cases, one INSERT", lambda log: Gunicorn(
                    args.server, ours_url, log, cwd=workdir, ready_path="/api/v1/ready",
                    extra_env={"DJANGO_SETTINGS_MODULE": intake_settings}),
                token, "/api/v1/cases", WRK_SCRIPT, unused_bodies, intake_table))
        if args.several:
            n = args.several
            several_path = workdir / "several.jsonl"

            def several_bodies() -> dict[str, str]:
                rest = bodies[used[0]:]
                several_path.write_text("".join('{"cases":[' + ",".join(rest[i:i + n]) + "]}\n"
                                                for i in range(0, len(rest) - n + 1, n)))
                return {"BENCH_TOKEN": token, "BENCH_BODIES": str(several_path)}

            def advance_several(figures: dict[str, float]) -> None:
                used[0] += int(figures["bodies_used"]) * n

            several_settings = write_bench_site(workdir, "several", SEVERAL_IMPORTS, SEVERAL_ROUTE)
            contenders.append(Contender(
                f"{n} cases a request, opened one by one", lambda log: Gunicorn(
                    args.server, ours_url, log, cwd=workdir, ready_path="/api/v1/ready",
                    extra_env={"DJANGO_SETTINGS_MODULE": several_settings}),
                token, "/api/v1/cases", WRK_SCRIPT, several_bodies, cases_written, advance_several,
                cases_per_request=n))
        if args.floor:
            contenders.append(Contender(
                "a WSGI application answering a constant", lambda log: Gunicorn(
                    args.server, ours_url, log, app="constant_app:application", cwd=workdir),
                token, "/", WRK_GET, lambda: {"BENCH_TOKEN": token}))
        if loaded_now:
            used[0] += seed_cases(args.server, ours_url, token, bodies, log_path=log_path, workdir=workdir,
                                  connections=args.connections, threads=args.wrk_threads)
        rows: list[list[object]] = []
        rates: dict[str, list[float]] = {contender.name: [] for contender in contenders}
        header = ["request", "round", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "non-2xx or failed",
                  *COLUMNS[8:12], "rows written"]
        for round_number in range(1, args.rounds + 1):
            # Turn by turn, each round in the other order, so that no contender always follows the same one.
            for contender in contenders if round_number % 2 else contenders[::-1]:
                rate, row = measure(contender, round_number, log_path=log_path, workdir=workdir, warmup=args.warmup,
                              drive={"seconds": args.duration, "connections": args.connections,
                                     "threads": args.wrk_threads})
                rates[contender.name].append(rate)
                rows.append(row)
                print_table([row], [*header, "load before the run"])
    print()
    print(f"{args.server}, {args.connections} connections, {args.duration} s per run after {args.warmup} s warm-up, "
          f"wrk -t{args.wrk_threads}; django-helpdesk {HELPDESK_VERSION}; both on {INTERPRETER}")
    print_table(rows, [*header, "load before the run"])
    ours, theirs = rates[contenders[1].name], rates[contenders[0].name]
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(f"\ncases a second for each helpdesk ticket a second, round by round: "
          f"{', '.join(f'{r:.1f}' for r in ratios)} (median {statistics.median(ratios):.1f}); "
          f"the issue's target is {ISSUE_RATIO:.1f} (1,000 against 73 on its machine)")
    for contender in contenders:
        if contender.cases_per_request > 1:
            cases = [rate * contender.cases_per_request for rate in rates[contender.name]]
            print(f"{contender.name}: cases a second, round by round: {', '.join(f'{c:.0f}' for c in cases)}; "
                  f"for each helpdesk ticket a second: "
                  f"{', '.join(f'{c / t:.1f}' for c, t in zip(cases, theirs, strict=True))}")


def intake_table(*, create: bool = False) -> int:
    """Rows in the intake floor's table (created anew with `create`), in the cases' benchmark database."""
    from django.db import connection

    with connection.cursor() as cursor:
        if create:
            cursor.execute("DROP TABLE IF EXISTS bench_intake")
            cursor.execute("CREATE TABLE bench_intake (id bigserial PRIMARY KEY, store_id bigint NOT NULL, "
                           "received_at timestamptz NOT NULL DEFAULT now(), body jsonb NOT NULL)")
        cursor.execute("SELECT count(*) FROM bench_intake")
        row = cursor.fetchone()
    connection.close()
    return int(row[0])


def measure(contender: Contender, round_number: int, *, log_path: Path, workdir: Path, warmup: int,
            drive: dict[str, int]) -> tuple[float, list[object]]:
    """One measured run of a contender, after its warm-up: its rate, and its row of the table."""
    load = machine_load()
    server = contender.server(log_path)
    try:
        server.wait_ready(contender.token)
        url = f"{server.base_url}{contender.url}"
        if warmup:
            contender.advance(run_wrk_script(url, contender.script, env=contender.env(), workdir=workdir,
                                             **{**drive, "seconds": warmup}))
        before = contender.count() if contender.count else 0
        figures, costs = measure_run(server, lambda: run_wrk_script(url, contender.script, env=contender.env(),
                                                                    workdir=workdir, **drive))
        contender.advance(figures)
    finally:
        server.stop()
    # Requests still in flight when wrk stops are written without being counted, so a few more rows
    # than requests is expected; fewer would be lost writes.
    written = contender.count() - before if contender.count else "-"
    rate = figures["requests"] / (figures["duration_us"] / 1e6)
    failed = sum(int(figures[k]) for k in figures if k.startswith("errors_"))
    return rate, [contender.name, round_number, f"{rate:.0f}", *latency_cells(figures), failed, *costs, written, load]


if __name__ == "__main__":
    main()
