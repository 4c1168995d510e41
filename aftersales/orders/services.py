"""Every write to the orders mirror: the JSON batch import and the CSV import.

Both validate each order on its own and write the good ones in set-based chunks (see writing.py);
a bad order is reported and written not at all, and never stops the others. The result of a batch is
per order rather than all-or-nothing because a shop's feed is retried as a whole: refusing 999 good
orders for one bad one would only delay them, and re-sending is harmless since the import is
idempotent on the shop's own order number.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import connection as mp_connection
from typing import Any, TextIO, cast

from django.db import connection, connections
from pydantic import ValidationError

from aftersales.core.errors import ValidationFailed
from aftersales.stores.models import Store
from aftersales.stores.permissions import ORDER_WRITE, Actor

from .importers import OrderCsvReader, ParsedOrder, RowProblem, Slice, count_lines, open_slice
from .records import OrderRecord
from .schemas import MAX_BATCH, OrderIn
from .validation import check_order, problems_from
from .writing import NO_DETAILS, BuyerDetails, SaveResult, merged_details, restate_buyers, save_orders

# A chunk is one transaction: about 20,000 lines keeps the fixed costs of a commit (and of the
# statements before the copies) small against the rows, and what an interrupted import redoes short.
CSV_CHUNK_LINES = 20_000
CSV_CHUNK_ORDERS = 10_000
# A file this long is split over worker processes (import_orders_csv_file): below it, starting them
# and reading the file twice gains too little. Past four, the database's copies and commits rather
# than the parsing would limit (not measured: the benchmark machine has two cores).
CSV_PARALLEL_LINES = 50_000
CSV_MAX_WORKERS = 4
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


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
    _check_actor(actor, store)
    return _import_rows(store, OrderCsvReader(stream), progress, chunk_orders)


def import_orders_csv_file(
    *, actor: Actor, store: Store, path: str, progress: Callable[[int], None] | None = None,
    workers: int | None = None, chunk_orders: int = CSV_CHUNK_ORDERS, parallel_from_lines: int | None = None,
) -> CsvImportResult:
    """import_orders_csv for a file (UTF-8, with or without a byte-order mark), in `workers` processes
    (default: default_workers()) when the file has at least `parallel_from_lines` lines (default:
    CSV_PARALLEL_LINES) and the import may run outside the caller's transaction: see
    _import_in_processes. Same result and report."""
    _check_actor(actor, store)
    workers = default_workers() if workers is None else workers
    parallel_from_lines = CSV_PARALLEL_LINES if parallel_from_lines is None else parallel_from_lines
    if workers > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block and _CAN_FORK:
        total_lines = count_lines(path)
        if total_lines >= parallel_from_lines:
            with open(path, encoding="utf-8-sig", newline="") as stream:
                reader = OrderCsvReader(stream)
                try:
                    slices = reader.split(workers, path)
                except (UnicodeDecodeError, csv.Error):
                    slices = []  # read in one piece, to fail at the same point and keep the same rows
            if len(slices) > 1:
                return _import_in_processes(store, path, slices, reader.header_lines, progress, chunk_orders)
    with open(path, encoding="utf-8-sig", newline="") as stream:
        return import_orders_csv(actor=actor, store=store, stream=stream, progress=progress, chunk_orders=chunk_orders)


def default_workers() -> int:
    """One process per core this process may use, at most CSV_MAX_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, CSV_MAX_WORKERS))


def _check_actor(actor: Actor, store: Store) -> None:
    actor.require(ORDER_WRITE)
    if store.pk != actor.store_id:
        raise ValidationFailed("the actor belongs to another store", field="store", code="wrong_store")


def _import_rows(
    store: Store, reader: OrderCsvReader, progress: Callable[[int], None] | None, chunk_orders: int,
    buyers: dict[str, BuyerDetails] | None = None,
) -> CsvImportResult:
    """The import proper. With `buyers`, also the name, e-mail and phone each buyer of a written order
    ends with in this file (a non-empty value replaces the one above it): see _import_in_processes."""
    result = CsvImportResult()
    failures: list[RowProblem] = []
    failed_orders: list[tuple[str, list[int]]] = []

    def on_saved(chunk: list[ParsedOrder], saved: SaveResult) -> None:
        # Runs on a writer thread, one at a time: only these counters and lists are shared, and the
        # reading thread looks at them after close().
        result.created += len(saved.created)
        result.updated += len(saved.updated)
        result.lines += saved.lines
        if buyers is not None:
            for parsed in chunk:
                key, *details = parsed.order.buyer
                if parsed.order.external_id not in saved.failed:
                    buyers[key] = merged_details(details, buyers.get(key, NO_DETAILS))
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
    result.problems = _sorted_problems(reader.problems + failures)
    result.skipped_orders = _sorted_skips(reader.skipped_orders + failed_orders)
    return result


def _sorted_problems(problems: list[RowProblem]) -> list[RowProblem]:
    return sorted(problems, key=lambda p: (p.line, p.field))


def _sorted_skips(skipped: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    return sorted(skipped, key=lambda s: s[1][0] if s[1] else 0)


def _import_in_processes(
    store: Store, path: str, slices: list[Slice], header_lines: int, progress: Callable[[int], None] | None,
    chunk_orders: int,
) -> CsvImportResult:
    """One forked process per slice of the file (importers.OrderCsvReader.split), each reading, checking
    and writing its own orders exactly as the single process would (reader, chunks, writer thread, own
    connection), so that no order has to be sent from one process to another: only the progress and
    each slice's result come back, and the results add up to the one of reading the file at once.

    Reading and checking is Python work bound to one core (about 1.4 s of CPU per 100,000 lines), and
    the writer thread shares that core, so one process could not keep the database busy. Orders of
    different slices are distinct (split gives each slice the order numbers above it); buyers they
    share are upserted by both, which _upsert_buyers makes safe. Forked rather than spawned, so that a
    worker starts in milliseconds with Django set up and the slice plan in hand; the parent's database
    connection is closed first, since a child must never talk on its parent's session.
    """
    context = multiprocessing.get_context("fork")
    connections.close_all()
    running: dict[mp_connection.Connection, int] = {}
    processes = []
    results: dict[int, CsvImportResult] = {}
    buyers: dict[int, dict[str, BuyerDetails]] = {}
    error: BaseException | None = None
    try:
        for index, part in enumerate(slices):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_import_slice, name=f"order-import-{index + 1}", daemon=True,
                                      args=(store, path, part, header_lines, chunk_orders, sender))
            process.start()
            sender.close()  # this end is the child's now: its closing is how a dead child shows
            processes.append(process)
            running[receiver] = index
        while running:
            for ready in mp_connection.wait(list(running)):
                receiver = cast(mp_connection.Connection, ready)
                try:
                    kind, value = receiver.recv()
                except EOFError:
                    index = running.pop(receiver)
                    receiver.close()
                    if index not in results and error is None:
                        error = RuntimeError(f"the process importing from line {slices[index].first_line} ended without a result")
                    continue
                if kind == "progress":
                    if progress is not None:
                        progress(value)
                elif kind == "done":
                    results[running[receiver]], buyers[running[receiver]] = value
                elif error is None:
                    error = value
    finally:
        for receiver in running:
            receiver.close()  # a child still sending gets a broken pipe and ends
        for process in processes:
            process.join()
    if error is not None:
        raise error
    merged = CsvImportResult()
    for index in range(len(slices)):
        part_result = results[index]
        merged.created += part_result.created
        merged.updated += part_result.updated
        merged.lines += part_result.lines
        merged.rows_read += part_result.rows_read
        merged.problems += part_result.problems
        merged.skipped_orders += part_result.skipped_orders
    merged.problems = _sorted_problems(merged.problems)
    merged.skipped_orders = _sorted_skips(merged.skipped_orders)
    _settle_buyers(store, [buyers[index] for index in range(len(slices))])
    return merged


def _settle_buyers(store: Store, found: list[dict[str, BuyerDetails]]) -> None:
    """A buyer whose name, e-mail or phone differ between slices ends as after reading the file at once
    (the last non-empty value of each), not as the slice that happened to commit last left it."""
    details: dict[str, BuyerDetails] = {}
    disputed = set()
    for part in found:
        for key, values in part.items():
            known = details.get(key)
            if known is not None and known != values:
                disputed.add(key)
            details[key] = merged_details(values, known or NO_DETAILS)
    if disputed:
        restate_buyers(store, {key: details[key] for key in disputed})


def _import_slice(store: Store, path: str, part: Slice, header_lines: int, chunk_orders: int,
                  sender: mp_connection.Connection) -> None:
    """A worker process's whole life: import one slice, send back progress and the result (or the error)."""
    try:
        with open_slice(path, part, header_lines) as reader:
            buyers: dict[str, BuyerDetails] = {}
            result = _import_rows(store, reader, lambda rows: sender.send(("progress", rows)), chunk_orders, buyers)
        sender.send(("done", (result, buyers)))
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            sender.send(("failed", _portable(exc)))
    finally:
        connections.close_all()
        sender.close()


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (UnicodeDecodeError, UnusableFile...), else its text."""
    try:
        return cast(BaseException, pickle.loads(pickle.dumps(exc)))  # noqa: S301 (our own bytes)
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
