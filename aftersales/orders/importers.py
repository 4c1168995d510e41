"""Reading the shop's order export as CSV: one row per order line.

The file format (also in `aftersales import-orders --help` and in fixtures/sample_orders.csv):

- The first row names the columns; their order is free. Required: external_id, buyer_external_id,
  placed_at, line_no, sku, name, quantity, unit_price. A column we do not know makes the file unusable
  (a typo must not silently drop data).
- Order columns, repeated on every row of the order and required to be identical there: external_id,
  buyer_external_id, buyer_name, buyer_email, buyer_phone, placed_at, currency, shipping_fee,
  free_shipping_threshold, channel, payments.
- Line columns, as in the JSON API: line_no, sku, name, category, quantity, unit_price,
  discount_allocated, is_gift, gift_declared_value, customised, perishable, digital_download,
  sealed_media, periodical, nonreturnable_confirmation, near_expiry_disclosed, sanbao_catalogue,
  warranty_months. An empty cell takes the default (false, 0, none, other).
- Shipment columns, per line: carrier, tracking_number, shipped_at, signed_at. The order's shipments are
  the distinct (carrier, tracking_number) pairs over its rows, so lines sent in different parcels can
  say so; the same parcel must carry the same times on every row.
- payments: `method:amount` items separated by `;`, each optionally followed by `:fee=0.54`,
  `:ref=REFERENCE` and `:fee_by=buyer`, for example `alipay:180.00:fee=0.54:ref=20261101;coupon:20.00`.
- Times are ISO 8601 with an offset (2026-11-11T09:30:00+08:00); booleans are true/false or 1/0.
- The rows of one order are consecutive (any export sorted by order number is). A row of an order that
  was already finished further up is refused, because it would otherwise silently replace that order.

An order with any bad row is skipped whole, and every bad row is reported with its line number: an
order with one line missing would be worse than no order, since cases are opened against its lines.
"""

from __future__ import annotations

import csv
import io
import mmap
import re
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from pydantic import ValidationError

from . import cells
from .records import LINE_FIELDS, SHIPMENT_FIELDS, OrderRecord, line_values, payment_values, shipment_values
from .schemas import LineIn, OrderHeaderIn, PaymentIn, ShipmentIn
from .validation import Problem, check_order, problems_from

BUYER_COLUMNS = {"buyer_external_id": "external_id", "buyer_name": "name", "buyer_email": "email",
                 "buyer_phone": "phone"}
ORDER_COLUMNS = ["external_id", *BUYER_COLUMNS, "placed_at", "currency", "shipping_fee", "free_shipping_threshold",
                 "channel", "payments"]
LINE_COLUMNS = LINE_FIELDS
SHIPMENT_COLUMNS = SHIPMENT_FIELDS
ALL_COLUMNS = [*ORDER_COLUMNS, *LINE_COLUMNS, *SHIPMENT_COLUMNS]
REQUIRED_COLUMNS = ["external_id", "buyer_external_id", "placed_at", "line_no", "sku", "name", "quantity", "unit_price"]
_CSV_FIELD = {"buyer.external_id": "buyer_external_id", "buyer.name": "buyer_name", "buyer.email": "buyer_email",
              "buyer.phone": "buyer_phone"}


_BARE_CR = re.compile(rb"\r(?!\n)")  # a line break of its own to the csv module
_BLOCK = 1 << 24


def _count_line_feeds(data: mmap.mmap, start: int, stop: int) -> int:
    return sum(data[at:min(at + _BLOCK, stop)].count(b"\n") for at in range(start, stop, _BLOCK))


def count_lines(path: str) -> int:
    """The file's line feeds: a quick binary pass, a few hundred milliseconds for a million lines."""
    with open(path, "rb") as raw:
        return sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 20), b""))


class UnusableFile(Exception):
    """The file as a whole cannot be read as an order export (no header, missing or unknown columns)."""


@dataclass(frozen=True)
class RowProblem:
    line: int
    external_id: str
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class Slice:
    """Whole orders of a file for one worker process: `lines` physical lines from `first_line` (to the end
    of the file when None), and every order number met above them (a row of one of those is refused)."""
    first_line: int
    lines: int | None
    earlier_orders: frozenset[str]
    offset: int | None = None  # the first line's byte offset, when split() knows it


@contextmanager
def open_slice(path: str, part: Slice, header_lines: int) -> Iterator[OrderCsvReader]:
    """A reader of one slice of the file at `path`, as OrderCsvReader.split cut it."""
    with open(path, encoding="utf-8-sig", newline="") as stream:
        header = list(islice(stream, header_lines))
    with open(path, "rb") as raw:
        if part.offset is not None:
            raw.seek(part.offset)
            stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        else:
            stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            deque(islice(stream, part.first_line - 1), maxlen=0)
        lines = stream if part.lines is None else islice(stream, part.lines)
        yield OrderCsvReader(chain(header, lines), line_offset=part.first_line - header_lines - 1,
                             earlier_orders=part.earlier_orders)


@dataclass(frozen=True)
class ParsedOrder:
    order: OrderRecord
    first_line: int
    rows: int


@dataclass(slots=True)
class _Header:
    buyer: tuple[str, str, str, str]
    placed_at: Any
    currency: str | None
    shipping_fee: Decimal
    free_shipping_threshold: Decimal | None
    channel: str


@dataclass(slots=True)
class _Pending:
    external_id: str
    first_line: int
    order_values: tuple[str, ...]
    header: _Header | None
    header_problems: list[Problem]
    payments: list[tuple[Any, ...]]
    line_numbers: list[int] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    shipments: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    raw_shipments: set[tuple[str, ...]] = field(default_factory=set)
    problems: list[RowProblem] = field(default_factory=list)


def parse_payments(text: str) -> list[dict[str, Any]]:
    """`alipay:180.00:fee=0.54;coupon:20.00` -> payment dicts for PaymentIn. Raises ValueError."""
    payments = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        method, _, rest = item.partition(":")
        if not rest:
            raise ValueError(f"{item!r} is not method:amount")
        amount, *extras = rest.split(":")
        payment: dict[str, Any] = {"method": method.strip(), "amount": amount.strip()}
        for extra in extras:
            key, sep, value = extra.partition("=")
            if not sep or key not in ("fee", "ref", "fee_by"):
                raise ValueError(f"{extra!r} is not fee=..., ref=... or fee_by=...")
            if key == "fee_by":
                if value not in ("buyer", "shop"):
                    raise ValueError("fee_by must be buyer or shop")
                payment["fee_paid_by_buyer"] = value == "buyer"
            else:
                payment["fee" if key == "fee" else "reference"] = value
        payments.append(payment)
    return payments


class OrderCsvReader:
    """Reads rows, groups them into orders and yields each good order; bad rows collect in `problems`.

    Each cell goes through the quick checks of cells.py first and through the schemas only when those
    are unsure, so a plain row costs a few microseconds and an odd or bad one is judged (and reported)
    exactly as the JSON import would judge it.
    """

    def __init__(self, stream: Iterable[str], *, line_offset: int = 0, earlier_orders: Iterable[str] = ()) -> None:
        """`stream` gives the file's lines, the header's first. A worker reading one slice of a file (see
        `split`) passes the header's lines followed by its slice's, with `line_offset` the count of lines
        left out between them, so that problems name the file's own line numbers, and the orders met
        above its slice as `earlier_orders`."""
        self._reader = csv.reader(stream)
        try:
            header = [name.strip() for name in next(self._reader)]
        except StopIteration:
            raise UnusableFile("the file is empty") from None
        if header and header[0].startswith("\ufeff"):  # Excel's byte-order mark
            header[0] = header[0][1:]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        unknown = [name for name in header if name not in ALL_COLUMNS]
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if missing or unknown or duplicated:
            parts = [f"{label}: {', '.join(names)}" for label, names in
                     (("missing columns", missing), ("unknown columns", unknown), ("repeated columns", duplicated))
                     if names]
            raise UnusableFile("; ".join(parts))
        self.header = header
        self.problems: list[RowProblem] = []
        self.skipped_orders: list[tuple[str, list[int]]] = []
        self.rows_read = 0
        self.header_lines = self._reader.line_num  # 1, unless a quoted name holds a line break
        self._line_offset = line_offset
        self._finished: set[str] = set(earlier_orders)
        self._width = len(header)
        # Cells are picked with itemgetters (C speed): the per-row cost is what limits a large import.
        # A column missing from the file reads as the empty cell appended at the end of each row.
        position = {name: i for i, name in enumerate(header)}
        self._order_cells = itemgetter(*(position.get(name, self._width) for name in ORDER_COLUMNS))
        self._line_cells = itemgetter(*(position.get(name, self._width) for name in LINE_COLUMNS))
        self._has_shipments = any(name in position for name in SHIPMENT_COLUMNS)
        self._ship_cells = itemgetter(*(position.get(name, self._width) for name in SHIPMENT_COLUMNS))
        self._id_position = position["external_id"]

    def __iter__(self) -> Iterator[ParsedOrder]:
        pending: _Pending | None = None
        offset = self._line_offset
        end = self.header_lines + offset
        rows_read = self.rows_read
        # Locals, since this loop runs once per line of the file: the plain row (every cell plainly
        # valid, the order's columns as on its first row) is handled right here, anything else by
        # _add_row, which checks and reports each cell.
        reader, width, id_position = self._reader, self._width, self._id_position
        order_cells, line_cells, ship_cells = self._order_cells, self._line_cells, self._ship_cells
        has_shipments, quick_line, unsure = self._has_shipments, cells.line, cells.Unsure
        for row in reader:
            # A quoted cell may span lines: a row starts right after the previous one ended.
            line, end = end + 1, reader.line_num + offset
            if not any(row):
                continue  # a blank line is not a row
            rows_read += 1
            width_ok = len(row) == width
            if not width_ok:
                row = (row + [""] * width)[:width]
            row.append("")
            external_id = row[id_position].strip()
            if pending is not None and external_id != pending.external_id:
                done = self._finish(pending)
                pending = None
                if done is not None:
                    self.rows_read = rows_read
                    yield done
            if not external_id:
                self.problems.append(RowProblem(line, "", "external_id", "required", "the order number is empty"))
                continue
            if pending is None:
                if external_id in self._finished:
                    self.problems.append(RowProblem(line, external_id, "external_id", "order_not_contiguous",
                                                    "this order's rows are not consecutive; it was read further up"))
                    continue
                pending = self._start(external_id, row, line)
            if not width_ok:
                pending.line_numbers.append(line)
                pending.problems.append(RowProblem(line, external_id, "", "wrong_column_count",
                                                   f"this row does not have {width} cells"))
                continue
            if pending.header_problems or order_cells(row) != pending.order_values:
                self._add_row(pending, row, line)
                continue
            try:
                values = quick_line(line_cells(row))
            except unsure:
                self._add_row(pending, row, line)
                continue
            pending.line_numbers.append(line)
            pending.lines.append(values)
            if has_shipments:
                shipment = ship_cells(row)
                if shipment not in pending.raw_shipments and any(shipment):
                    problems = self._add_shipment(pending, shipment, line)
                    if problems:
                        pending.problems += problems
        self.rows_read = rows_read
        if pending is not None:
            done = self._finish(pending)
            if done is not None:
                yield done

    def split(self, parts: int, path: str) -> list[Slice]:
        """Cuts the file at `path` (the one this reader reads) into up to `parts` slices of about as many
        lines, for worker processes. A slice starts at a row whose order number differs from the row
        above, so an order is never cut in two, and it learns the order numbers above it, so a later run
        of rows of one of those is refused exactly as when the whole file is read at once. Fewer slices
        (one: no cut) when no such row follows a target. Consumes the reader.

        A row ends where the csv module ends it, and a quoted cell may hold line breaks: a file with a
        quote anywhere is read row by row, up to the last cut, with the csv module (about a seventh of
        the cost of importing those rows). A file without one (and without a bare carriage return or a
        NUL) has one row a line, so its cuts are found by looking at a few lines, its order numbers by
        splitting bytes, and its slices are then opened at their byte offset instead of line by line.
        """
        # Mapped rather than read: the file may be larger than the memory we care to take.
        with open(path, "rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(b'"') >= 0 or data.find(b"\0") >= 0 or _BARE_CR.search(data) or self.header_lines != 1:
                return self._split_rows(parts, _count_line_feeds(data, 0, len(data)))
            return self._split_lines(parts, data)

    def _split_rows(self, parts: int, total_lines: int) -> list[Slice]:
        reader, id_position = self._reader, self._id_position
        first = end = self.header_lines
        targets = [first + 1 + (total_lines - first) * k // parts for k in range(1, parts)]
        starts = [first + 1]
        earlier: list[frozenset[str]] = [frozenset()]
        seen: set[str] = set()
        previous: str | None = None  # the order number of the last row that is not blank
        for row in reader if targets else ():
            line, end = end + 1, reader.line_num
            if not any(row):
                continue
            external_id = row[id_position].strip() if id_position < len(row) else ""
            if external_id == previous:
                continue
            if previous is not None and line >= targets[len(starts) - 1]:
                starts.append(line)
                earlier.append(frozenset(seen - {""}))
                if len(starts) == parts:
                    break
            seen.add(external_id)
            previous = external_id
        ends: list[int | None] = [*starts[1:], None]
        return [Slice(start, None if stop is None else stop - start, names)
                for start, stop, names in zip(starts, ends, earlier, strict=True)]

    def _split_lines(self, parts: int, data: mmap.mmap) -> list[Slice]:
        id_position = self._id_position

        def order_at(line: bytes) -> str | None:  # None for a blank row, as __iter__ skips it
            cells = line.rstrip(b"\r\n").split(b",")
            if not any(cells):
                return None
            return cells[id_position].decode().strip() if id_position < len(cells) else ""

        def orders_in(start: int, stop: int) -> set[str]:
            found: set[bytes] = set()
            while start < stop:  # in blocks of whole lines
                end = min(stop, data.find(b"\n", min(start + _BLOCK, stop) - 1) + 1 or stop)
                lines = data[start:end].split(b"\n")
                if id_position == 0:
                    found.update(line.partition(b",")[0] for line in lines)
                else:
                    found.update(cells[id_position] for cells in (line.split(b",", id_position + 1) for line in lines)
                                 if len(cells) > id_position)
                start = end
            return {cell.decode().strip() for cell in found} - {""}

        first = data.find(b"\n") + 1
        cuts = [first]  # byte offsets of the slices' first rows
        earlier: list[frozenset[str]] = [frozenset()]
        seen: set[str] = set()
        for k in range(1, parts):
            # From the line at or after the target, the first row whose order differs from the row above.
            target = max(first + (len(data) - first) * k // parts, cuts[-1] + 1)
            position = data.find(b"\n", target - 1) + 1
            previous = None
            above = position
            while previous is None and above > first:
                line_start = data.rfind(b"\n", 0, above - 1) + 1
                previous = order_at(data[line_start:above])
                above = line_start
            cut = None
            while previous is not None and 0 < position < len(data):
                line_end = data.find(b"\n", position) + 1 or len(data)
                external_id = order_at(data[position:line_end])
                if external_id is not None and external_id != previous:
                    cut = position
                    break
                position = line_end
            if cut is None:
                break
            seen |= orders_in(cuts[-1], cut)
            cuts.append(cut)
            earlier.append(frozenset(seen))
        lines = [_count_line_feeds(data, 0, cut) + 1 for cut in cuts]
        ends: list[int | None] = [*lines[1:], None]
        return [Slice(line, None if stop is None else stop - line, names, offset)
                for line, stop, names, offset in zip(lines, ends, earlier, cuts, strict=True)]

    def _start(self, external_id: str, row: list[str], line: int) -> _Pending:
        values = self._order_cells(row)
        stripped = [value.strip() for value in values]
        try:
            return self._quick_start(external_id, stripped, values, line)
        except cells.Unsure:
            return self._checked_start(external_id, stripped, values, line)

    def _quick_start(self, external_id: str, stripped: list[str], values: tuple[str, ...], line: int) -> _Pending:
        (_, buyer_id, buyer_name, buyer_email, buyer_phone, placed_at, currency, shipping_fee, threshold, channel,
         payments) = stripped
        cells.text(external_id, 64, required=True)
        header = _Header(
            cells.buyer(buyer_id, buyer_name, buyer_email, buyer_phone), cells.moment(placed_at),
            cells.currency(currency), cells.money(shipping_fee) if shipping_fee else cells.ZERO,
            cells.money(threshold) if threshold else None, cells.text(channel, 20) if channel else "online",
        )
        return _Pending(external_id, line, values, header, [], cells.payments(payments))

    def _checked_start(self, external_id: str, stripped: list[str], values: tuple[str, ...], line: int) -> _Pending:
        found = {name: value for name, value in zip(ORDER_COLUMNS, stripped, strict=True) if value}
        data: dict[str, Any] = {name: found[name] for name in ORDER_COLUMNS[5:-1] if name in found}
        data["external_id"] = external_id
        data["buyer"] = {key: found[column] for column, key in BUYER_COLUMNS.items() if column in found}
        problems: list[Problem] = []
        header = None
        try:
            checked = OrderHeaderIn.model_validate(data)
            buyer = checked.buyer
            header = _Header((buyer.external_id, buyer.name, buyer.email, buyer.phone), checked.placed_at,
                             checked.currency, checked.shipping_fee, checked.free_shipping_threshold, checked.channel)
        except ValidationError as exc:
            problems += problems_from(exc)
        payments: list[tuple[Any, ...]] = []
        try:
            for position, payment in enumerate(parse_payments(found.get("payments", ""))):
                try:
                    payments.append(payment_values(PaymentIn.model_validate(payment)))
                except ValidationError as exc:
                    problems += [Problem("payments", p.code, f"payment {position + 1}, {p.field}: {p.message}")
                                 for p in problems_from(exc)]
        except ValueError as exc:
            problems.append(Problem("payments", "invalid_format", str(exc)))
        return _Pending(external_id, line, values, header, problems, payments)

    def _add_row(self, pending: _Pending, row: list[str], line: int) -> None:
        pending.line_numbers.append(line)
        problems = []
        if pending.header_problems:
            # Every row carries the order's columns, so a bad order column is wrong on every row.
            problems += [RowProblem(line, pending.external_id, _CSV_FIELD.get(p.field, p.field), p.code, p.message)
                         for p in pending.header_problems]
        values = self._order_cells(row)
        if values != pending.order_values:
            column = next(name for name, a, b in zip(ORDER_COLUMNS, values, pending.order_values, strict=True) if a != b)
            problems.append(RowProblem(line, pending.external_id, column, "order_fields_mismatch",
                                       f"{column} differs from this order's first row (line {pending.first_line})"))
        line_cells = self._line_cells(row)
        try:
            pending.lines.append(cells.line(line_cells))
        except cells.Unsure:
            try:
                checked = LineIn.model_validate({k: v for k, v in zip(LINE_COLUMNS, line_cells, strict=True) if v})
                pending.lines.append(line_values(checked))
            except ValidationError as exc:
                problems += [RowProblem(line, pending.external_id, p.field, p.code, p.message)
                             for p in problems_from(exc)]
        if self._has_shipments:
            problems += self._add_shipment(pending, self._ship_cells(row), line)
        if problems:
            pending.problems += problems

    def _add_shipment(self, pending: _Pending, ship_cells: tuple[str, ...], line: int) -> list[RowProblem]:
        if ship_cells in pending.raw_shipments or not any(ship_cells):
            return []  # the same parcel as on an earlier row, or none
        try:
            shipment = cells.shipment(ship_cells)
        except cells.Unsure:
            try:
                shipment = shipment_values(ShipmentIn.model_validate(
                    {k: v for k, v in zip(SHIPMENT_COLUMNS, ship_cells, strict=True) if v}))
            except ValidationError as exc:
                return [RowProblem(line, pending.external_id, p.field, p.code, p.message) for p in problems_from(exc)]
        pending.raw_shipments.add(ship_cells)
        known = pending.shipments.setdefault((shipment[0], shipment[1]), shipment)
        if known != shipment:
            column = "shipped_at" if known[2] != shipment[2] else "signed_at"
            return [RowProblem(line, pending.external_id, column, "shipment_mismatch",
                               f"this parcel has another {column} on an earlier row of the order")]
        return []

    def _finish(self, pending: _Pending) -> ParsedOrder | None:
        self._finished.add(pending.external_id)
        header = pending.header
        if not pending.problems and header is not None:
            order = OrderRecord(
                pending.external_id, header.buyer, header.placed_at, header.currency, header.shipping_fee,
                header.free_shipping_threshold, header.channel, pending.lines, pending.payments,
                list(pending.shipments.values()),
            )
            problems = check_order(order)
            if not problems:
                return ParsedOrder(order, pending.first_line, len(pending.lines))
            lines_by_index = pending.line_numbers
            pending.problems += [
                RowProblem(lines_by_index[p.line_index] if p.line_index is not None else pending.first_line,
                           pending.external_id, p.field.rsplit(".", 1)[-1], p.code, p.message)
                for p in problems
            ]
        self.problems += pending.problems
        self.skipped_orders.append((pending.external_id, sorted(set(pending.line_numbers))))
        return None
