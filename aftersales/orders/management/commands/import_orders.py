"""`aftersales import-orders FILE.csv [--store SLUG]`: load a shop's order export into the mirror."""

from __future__ import annotations

import gc
import os
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from aftersales.orders import importers
from aftersales.orders.services import default_workers, import_orders_csv_file
from aftersales.stores.models import Store
from aftersales.stores.permissions import system_actor

EXIT_BAD_ROWS = 1
EXIT_UNUSABLE = 2


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """A large file makes millions of small objects (cells, rows, orders) that live until their chunk
    is written, and none of them refer to one another in a cycle: Python's cycle collector would only
    walk them again and again, a third of the time spent reading. This command is a process of its
    own, so pausing the collector for the import touches nothing else."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Command(BaseCommand):
    help = "Import orders from a CSV export, one row per order line.\n\n" + (importers.__doc__ or "").split(
        "\n\n", 1)[1] + (
        "\nExit status: 0 when every row was imported, 1 when some rows were refused (the other orders are\n"
        "imported), 2 when the file cannot be used at all (missing, unreadable, missing or unknown columns).\n"
        "Importing the same file again updates the orders; it never duplicates them."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter  # keep the format description's layout
        return parser

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="the CSV file (UTF-8, header row first)")
        parser.add_argument("--store", help="the store's slug; may be left out when there is only one store")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        parser.add_argument(
            "--workers", type=int, default=default_workers(), metavar="N",
            help="processes sharing a large file on PostgreSQL (default: one per core, here %(default)s; 1: none)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        store = self._store(options["store"])
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file", returncode=EXIT_UNUSABLE)
        actor = system_actor(store.pk, "cli:import-orders")
        rows = max(importers.count_lines(path) - 1, 0)  # the header is not a row
        bar = tqdm(total=rows, unit="rows", file=self.stderr._out, disable=options["no_progress"] or None,
                   mininterval=0.5)
        try:
            with _cycle_collector_paused():
                result = import_orders_csv_file(actor=actor, store=store, path=path, progress=bar.update,
                                                workers=max(options["workers"], 1))
        except importers.UnusableFile as exc:
            raise CommandError(f"{path}: {exc}", returncode=EXIT_UNUSABLE) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text ({exc.reason})", returncode=EXIT_UNUSABLE) from exc
        finally:
            bar.close()

        for p in result.problems:
            where = f"{p.field}: " if p.field else ""
            self.stderr.write(f"line {p.line}: order {p.external_id or '?'}: {where}{p.message} [{p.code}]")
        for external_id, lines in result.skipped_orders:
            self.stderr.write(f"order {external_id} skipped (lines {', '.join(map(str, lines))})")
        bad_lines = len({p.line for p in result.problems})
        self.stdout.write(
            f"{result.rows_read} rows read: {result.created} orders created, {result.updated} updated, "
            f"{result.lines} lines written; {bad_lines} bad rows, {len(result.skipped_orders)} orders skipped"
        )
        if result.problems:
            raise CommandError(f"{bad_lines} rows were refused; see the lines above", returncode=EXIT_BAD_ROWS)

    def _store(self, slug: str | None) -> Store:
        if slug:
            store = Store.objects.filter(slug=slug).first()
            if store is None:
                raise CommandError(f"no store with slug {slug!r}", returncode=EXIT_UNUSABLE)
            return store
        stores = list(Store.objects.order_by("pk")[:2])
        if len(stores) != 1:
            raise CommandError("name the store with --store SLUG" if stores else "there is no store yet",
                               returncode=EXIT_UNUSABLE)
        return stores[0]
