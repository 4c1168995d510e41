"""`aftersales serve`: the web server, and the periodic tasks when there is no broker.

Gunicorn runs as a child process (its master forks the web workers); the embedded scheduler runs on
a thread of this process, so one Ctrl-C or one SIGTERM stops both. With CELERY_BROKER_URL set, the
periodic tasks belong to `aftersales worker` and this command runs the web server only: two
schedulers would run every task twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from aftersales.core.scheduler import Scheduler

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Run the web server (gunicorn) on 127.0.0.1:$PORT, with the periodic tasks when there is no broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("AFTERSALES_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("AFTERSALES_WEB_WORKERS", "2")),
                            help="web processes (default 2, or $AFTERSALES_WEB_WORKERS)")
        parser.add_argument("--threads", type=int, default=int(os.environ.get("AFTERSALES_WEB_THREADS", "4")),
                            help="threads per web process (default 4, or $AFTERSALES_WEB_THREADS)")
        parser.add_argument("--no-scheduler", action="store_true",
                            help="do not run the periodic tasks here even without a broker")
        parser.add_argument("--skip-collectstatic", action="store_true")

    def gunicorn_argv(self, options: dict[str, Any]) -> list[str]:
        argv = [
            sys.executable, "-m", "gunicorn", "aftersales.wsgi:application",
            "--bind", f"{options['host']}:{options['port']}",
            "--workers", str(options["workers"]),
            "--threads", str(options["threads"]),
            "--graceful-timeout", "10",
            "--access-logfile", "-",
            "--forwarded-allow-ips", "127.0.0.1",
        ]
        from gunicorn.config import Config

        if "control_socket_disable" in Config().settings:
            # Newer gunicorn opens a control socket in the home directory; nothing here uses it, and two
            # servers on one machine would fight over the one path.
            argv.append("--no-control-socket")
        return argv

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["skip_collectstatic"]:
            # Cheap when nothing changed; whitenoise serves what this puts under STATIC_ROOT.
            call_command("collectstatic", interactive=False, verbosity=0)

        base = f"http://{options['host']}:{options['port']}"
        self.stdout.write(f"aftersales on {base}/  —  admin: {base}/admin/  —  API docs: {base}/api/docs")

        run_scheduler = not settings.CELERY_BROKER_URL and not options["no_scheduler"]
        if run_scheduler:
            self.stdout.write("no CELERY_BROKER_URL: running the periodic tasks in this process")
        elif settings.CELERY_BROKER_URL:
            self.stdout.write("CELERY_BROKER_URL is set: run `aftersales worker` for background work")

        web = subprocess.Popen(self.gunicorn_argv(options))  # noqa: S603 - our own argv, no shell
        stop = threading.Event()
        scheduler_thread = None
        if run_scheduler:
            scheduler_thread, stop = Scheduler.from_settings().start_thread()

        def on_term(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            code = web.wait()
            if code:
                self.stderr.write(f"the web server stopped with exit code {code}")
        except KeyboardInterrupt:
            self.stdout.write("stopping…")
        finally:
            signal.signal(signal.SIGTERM, previous)
            stop.set()
            _stop_child(web)
            if scheduler_thread is not None:
                scheduler_thread.join(STOP_GRACE_SECONDS)
        if web.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
            sys.exit(1)


def _stop_child(process: subprocess.Popen[bytes]) -> None:
    """Asks gunicorn to finish its requests and leave; forces it only if it does not."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
