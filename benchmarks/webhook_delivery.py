"""Webhook delivery throughput: 10,000 queued webhook events delivered to a local receiver with the
default worker settings (AFTERSALES_DELIVERY_WORKERS sending threads, the sweep's batches of 200).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/any python benchmarks/webhook_delivery.py [--events 10000]

It works in its own database (aftersales_bench_webhooks). The events and their deliveries are written
first (queued, as the outbox leaves them); then the clock runs while `deliver_due` sends them all, each
signed, each logged. The receiver is a keep-alive HTTP/1.1 server in another process, answering 200.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _common import free_port, machine_load, migrate, recreate_database, setup_django

DB_NAME = "aftersales_bench_webhooks"


def serve(port: int, counter: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with counter.get_lock():
                counter.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()

    recreate_database(DB_NAME)
    setup_django(DB_NAME)
    migrate()
    from django.conf import settings
    from django.db import transaction

    from aftersales.core import clock
    from aftersales.notifications import services
    from aftersales.notifications.models import Delivery, DeliveryStatus, OutboxEvent, WebhookEndpoint
    from aftersales.stores.services import create_store

    port = free_port()
    counter = multiprocessing.Value("i", 0)
    receiver = multiprocessing.Process(target=serve, args=(port, counter), daemon=True)
    receiver.start()
    time.sleep(0.5)

    store = create_store(name="Webhooks", slug="webhooks")
    now = clock.now()
    endpoint = WebhookEndpoint.objects.create(store=store, url=f"http://127.0.0.1:{port}/hooks", secret="whsec_bench",
                                              created_at=now)
    started = time.perf_counter()
    with transaction.atomic():
        events = OutboxEvent.objects.bulk_create([
            OutboxEvent(store=store, type="case.created", case_id=n, created_at=now, dispatched_at=now,
                        payload={"store_id": store.pk, "case_id": n, "number": f"AS-{n:06d}", "kind": "inquiry",
                                 "status": "open"})
            for n in range(1, args.events + 1)], batch_size=1000)
        Delivery.objects.bulk_create([
            Delivery(store=store, event=e, channel="webhook", target=f"endpoint:{endpoint.pk}", endpoint=endpoint,
                     next_attempt_at=now - dt.timedelta(seconds=1), created_at=now) for e in events], batch_size=1000)
    print(f"queued {args.events} events in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    attempted = services.deliver_due()
    elapsed = time.perf_counter() - started
    sent = Delivery.objects.filter(status=DeliveryStatus.SENT).count()
    print(f"delivered {sent}/{attempted} (receiver saw {counter.value}) in {elapsed:.2f} s = "
          f"{sent / elapsed:.0f}/s with {settings.AFTERSALES_DELIVERY_WORKERS} sending threads; {machine_load()}")
    receiver.terminate()
    if sent != args.events or elapsed > 20:
        raise SystemExit("FAILED: target is all events within 20 s")


if __name__ == "__main__":
    main()
