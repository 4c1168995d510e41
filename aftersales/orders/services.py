"""Every write to the orders mirror: the JSON batch import and the CSV import.

Both validate each order on its own and write the good ones in set-based chunks (see writing.py);
a bad order is reported and written not at all, and never stops the others. The result of a batch is
per order rather than all-or-nothing because a shop's feed is retried as a whole: refusing 999 good
orders for one bad one would only delay them, and re-sending is harmless since the import is
idempotent on the shop's own order number.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.db import connection
from pydantic import ValidationError

from aftersales.core.errors import ValidationFailed
from aftersales.stores.models import Store
from aftersales.stores.permissions import ORDER_WRITE, Actor

from .importers import OrderCsvReader, ParsedOrder, RowProblem
from .records import OrderRecord
from .schemas import MAX_BATCH, OrderIn
from .validation import check_order, problems_from
from .writing import SaveResult, save_orders

# A chunk is one transaction: about 20,000 lines keeps the fixed costs of a commit (and of the
# statements before the copies) small against the rows, and what an interrupted import redoes short.
CSV_CHUNK_LINES = 20_000
CSV_CHUNK_ORDERS = 10_000


@dataclass(frozen=True)
class OrderError:
    index: int
    external_id: str | None
    code: str
    field: str
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[OrderError] = field(default_factory=list)


def import_orders(*, actor: Actor, orders: Sequence[Any]) -> ImportResult:
    """Creates or updates up to MAX_BATCH orders (raw JSON objects) in the actor's store."""
    actor.require(ORDER_WRITE)
    if len(orders) > MAX_BATCH:
        raise ValidationFailed(f"a batch holds at most {MAX_BATCH} orders", field="orders", code="batch_too_large",
                               details={"max": MAX_BATCH, "received": len(orders)})
    store = Store.objects.get(pk=actor.store_id)
    result = ImportResult()
    good: list[OrderRecord] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(orders):
        external_id = raw.get("external_id") if isinstance(raw, dict) else None
        external_id = external_id if isinstance(external_id, str) else None
        try:
            order = OrderRecord.from_schema(OrderIn.model_validate(raw))
        except ValidationError as exc:
            result.errors += [OrderError(index, external_id, p.code, p.field, p.message) for p in problems_from(exc)]
            continue
        problems = check_order(order)
        if problems:
            result.errors += [OrderError(index, external_id, p.code, p.field, p.message) for p in problems]
            continue
        if order.external_id in first_index:
            # Two versions of one order in one batch: which one the shop meant is a guess we don't make.
            result.errors.append(OrderError(index, external_id, "duplicate_in_batch", "external_id",
                                            f"also sent at index {first_index[order.external_id]}"))
            continue
        first_index[order.external_id] = index
        good.append(order)
    saved = save_orders(store=store, orders=good)
    result.created, result.updated = len(saved.created), len(saved.updated)
    result.errors += [OrderError(first_index[external_id], external_id, code, "", message)
                      for external_id, (code, message) in saved.failed.items()]
    result.errors.sort(key=lambda e: e.index)
    return result


@dataclass
class CsvImportResult:
    created: int = 0
    updated: int = 0
    lines: int = 0
    rows_read: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    skipped_orders: list[tuple[str, list[int]]] = field(default_factory=list)


class _ChunkWriter:
    """Saves chunks of parsed orders, on threads of their own when that is safe.

    Reading and validating is Python work and writing is mostly the database's, so on PostgreSQL the
    two overlap: the file is parsed on this thread while earlier chunks are copied and committed on
    others (each with its own connection; psycopg waits for the server without holding the GIL).
    More than one writer lets one chunk's rows go out while another commits, but on the 2-core
    machine of benchmarks/README.md a second writer only competed with the reader and the server for
    the cores, so there is one; the writes stay correct with several (chunks hold distinct orders, and
    buyers shared by two chunks are inserted in the same order by both, see writing._upsert_buyers).
    Only when the caller holds no transaction: writes on another connection would escape it (tests,
    or a request wrapped in one), and then the chunks are written in line, inside the caller's
    transaction.
    """

    WRITERS = 1

    def __init__(self, store: Store, on_saved: Callable[[list[ParsedOrder], SaveResult], None]) -> None:
        self._store = store
        self._on_saved = on_saved
        self._saved_lock = threading.Lock()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self._queue: queue.Queue[list[ParsedOrder] | None] = queue.Queue(maxsize=self.WRITERS)
            self._threads = [threading.Thread(target=self._run, name=f"order-import-writer-{n}", daemon=True)
                             for n in range(self.WRITERS)]
            for thread in self._threads:
                thread.start()

    def submit(self, chunk: list[ParsedOrder]) -> None:
        if not self._threads:
            self._save(chunk)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def close(self) -> None:
        for _thread in self._threads:
            self._queue.put(None)  # one stop sign per writer
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            raise self._error

    def _save(self, chunk: list[ParsedOrder]) -> None:
        saved = save_orders(store=self._store, orders=[p.order for p in chunk])
        with self._saved_lock:
            self._on_saved(chunk, saved)

    def _run(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if self._error is None:  # after a failure, drain the queue so the reader never blocks
                    self._save(chunk)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._error = exc
            while self._queue.get() is not None:
                pass
        finally:
            connection.close()  # this thread's own connection


def import_orders_csv(
    *, actor: Actor, store: Store, stream: TextIO, progress: Callable[[int], None] | None = None,
    chunk_orders: int = CSV_CHUNK_ORDERS,
) -> CsvImportResult:
    """Imports an order export (format in importers.py). Raises importers.UnusableFile for a file that
    cannot be read at all. Each chunk of orders commits on its own: an interrupted import keeps what
    it wrote, and running it again finishes the job without duplicating anything."""
    actor.require(ORDER_WRITE)
    if store.pk != actor.store_id:
        raise ValidationFailed("the actor belongs to another store", field="store", code="wrong_store")
    reader = OrderCsvReader(stream)
    result = CsvImportResult()
    failures: list[RowProblem] = []
    failed_orders: list[tuple[str, list[int]]] = []

    def on_saved(chunk: list[ParsedOrder], saved: SaveResult) -> None:
        # Runs on a writer thread, one at a time: only these counters and lists are shared, and the
        # reading thread looks at them after close().
        result.created += len(saved.created)
        result.updated += len(saved.updated)
        result.lines += saved.lines
        for parsed in chunk:
            if parsed.order.external_id in saved.failed:
                code, message = saved.failed[parsed.order.external_id]
                failures.append(RowProblem(parsed.first_line, parsed.order.external_id, "", code, message))
                failed_orders.append((parsed.order.external_id, [parsed.first_line]))

    writer = _ChunkWriter(store, on_saved)
    chunk: list[ParsedOrder] = []
    chunk_lines = reported = 0
    try:
        for parsed in reader:
            chunk.append(parsed)
            chunk_lines += parsed.rows
            if len(chunk) >= chunk_orders or chunk_lines >= CSV_CHUNK_LINES:
                writer.submit(chunk)
                chunk, chunk_lines = [], 0
                if progress is not None:
                    progress(reader.rows_read - reported)
                    reported = reader.rows_read
        if chunk:
            writer.submit(chunk)
    finally:
        writer.close()
    if progress is not None:
        progress(reader.rows_read - reported)
    result.rows_read = reader.rows_read
    result.problems = sorted(reader.problems + failures, key=lambda p: (p.line, p.field))
    result.skipped_orders = sorted(reader.skipped_orders + failed_orders, key=lambda s: s[1][0] if s[1] else 0)
    return result
