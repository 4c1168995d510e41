"""`aftersales worker`: background work.

With CELERY_BROKER_URL set it runs a Celery worker with beat embedded (`celery -A aftersales worker
-B`): one command for a small deployment. A larger one runs several of these with `--no-beat` and a
single one with beat, since two beats would run every periodic task twice.
Without a broker there is no queue to consume (tasks run in-process after commit), so it runs the
embedded scheduler in the foreground, for when the web server runs elsewhere or with --no-scheduler.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from aftersales.core.scheduler import Scheduler


class Command(BaseCommand):
    help = "Run background work: a Celery worker with beat, or the embedded scheduler when there is no broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int,
                            default=int(os.environ.get("AFTERSALES_WORKER_CONCURRENCY", "2")),
                            help="worker processes (default 2, or $AFTERSALES_WORKER_CONCURRENCY)")
        parser.add_argument("--queues", default="", help="comma-separated queues to consume (default: all)")
        parser.add_argument("--no-beat", action="store_true", help="do not embed beat (run it in one worker only)")
        parser.add_argument("--loglevel", default=os.environ.get("AFTERSALES_LOG_LEVEL", "INFO"))

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.CELERY_BROKER_URL:
            self.stdout.write("no CELERY_BROKER_URL: running the periodic tasks in this process (Ctrl-C stops)")
            stop = threading.Event()
            try:
                Scheduler.from_settings().run(stop)
            except KeyboardInterrupt:
                stop.set()
            return

        from aftersales.celery import app

        argv = [
            "worker",
            f"--loglevel={options['loglevel']}",
            f"--concurrency={options['concurrency']}",
        ]
        if options["queues"]:
            argv.append(f"--queues={options['queues']}")
        if not options["no_beat"]:
            argv += ["--beat", f"--schedule={settings.DATA_DIR / 'celerybeat-schedule'}"]
        app.worker_main(argv=argv)
