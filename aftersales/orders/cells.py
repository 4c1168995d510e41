"""Quick checks of CSV cells that accept only what the schemas would surely accept, with the same value.

A pydantic model per line costs more than everything else in a large CSV import together (about
15 µs of the 20 µs a line once took). Most cells of a real export are plain: `52.50`, `true`, `2`,
`2026-11-11T09:30:00+08:00`. These functions take such cells and raise `Unsure` for anything else
(leading zeros, `yes`, a space at either end, a value out of range, a wrong value): the importer then
hands the row to the schema, which either accepts it or reports it with its usual code and message.
So the rules and the error codes stay where they are (schemas.py); this module only has to be a
subset of them, which tests/test_cells.py checks against the schemas with generated cells.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from .schemas import _EMAIL, CategoryName, ConfirmationName, PaymentMethodName


class Unsure(Exception):
    """This cell is not plainly valid; let the schema decide (and explain)."""


_SMALL_INTS = {str(n): n for n in range(1201)}
_INT = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)
# Two decimals at most and ten digits before the point: Money's max_digits=12, decimal_places=2.
_MONEY = re.compile(r"(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?", re.ASCII)
# ISO 8601 with seconds and an offset; fromisoformat then checks the calendar (no 30 February).
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})",
                       re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
_BOOLS = {"": False, "false": False, "true": True, "0": False, "1": True, "False": False, "True": True,
          "FALSE": False, "TRUE": True}
_CATEGORIES = {"": "other", **{name: name for name in CategoryName.__args__}}  # type: ignore[attr-defined]
_CONFIRMATIONS = {"": "none", **{name: name for name in ConfirmationName.__args__}}  # type: ignore[attr-defined]
METHODS = frozenset(PaymentMethodName.__args__)  # type: ignore[attr-defined]
ZERO = Decimal("0")
# An export repeats its prices (the same goods, the same fees), and Decimal values are immutable, so
# the ones met are kept (a bounded number) and shared: a dict lookup instead of a regex and a Decimal.
_MONEYS: dict[str, Decimal] = {}
_MONEYS_KEPT = 100_000
_POSITIVE = {str(n): n for n in range(1, 1201)}
_BUYERS: set[tuple[str, str, str, str]] = set()
_BUYERS_KEPT = 100_000


def integer(cell: str, low: int, high: int) -> int:
    value = _SMALL_INTS.get(cell)
    if value is None:
        if not _INT.fullmatch(cell):
            raise Unsure
        value = int(cell)
    if not low <= value <= high:
        raise Unsure
    return value


def money(cell: str) -> Decimal:
    value = _MONEYS.get(cell)
    if value is None:
        if not _MONEY.fullmatch(cell):
            raise Unsure
        value = Decimal(cell)
        if len(_MONEYS) < _MONEYS_KEPT:
            _MONEYS[cell] = value
    return value


def text(cell: str, max_length: int, *, required: bool = False) -> str:
    # The schemas strip text; a cell with nothing to strip is its own value. (Python's idea of a
    # space is wider than pydantic's, so a cell Python would strip always goes to the schema.)
    # (strip() hands back the cell itself when there is nothing to strip, so != is a quick identity test.)
    if len(cell) > max_length or cell.strip() != cell or (required and not cell):
        raise Unsure
    return cell


def moment(cell: str) -> dt.datetime:
    if not _DATETIME.fullmatch(cell):
        raise Unsure
    try:
        return dt.datetime.fromisoformat(cell)
    except ValueError:
        raise Unsure from None


def flag(cell: str) -> bool:
    try:
        return _BOOLS[cell]
    except KeyError:
        raise Unsure from None


def line(cells: tuple[str, ...]) -> tuple[Any, ...]:
    """A line's cells in records.LINE_FIELDS order (empty for a column the file lacks) -> its values."""
    (line_no, sku, name, category, quantity, unit_price, discount, is_gift, gift_value, customised, perishable,
     digital_download, sealed_media, periodical, confirmation, near_expiry, sanbao, warranty) = cells
    # Written out, with the common cases inline, rather than looped over: this runs for every line of the
    # file, and a Python call costs about as much as the check it makes. Anything not plainly valid goes
    # through the general function, which decides or raises Unsure.
    number = _POSITIVE.get(line_no)
    if number is None:
        number = integer(line_no, 1, 32767)
    count = _POSITIVE.get(quantity)
    if count is None:
        count = integer(quantity, 1, 1_000_000)
    if not sku or len(sku) > 64 or sku.strip() != sku or not name or len(name) > 200 or name.strip() != name:
        raise Unsure
    price = _MONEYS.get(unit_price)
    if price is None:
        price = money(unit_price)
    discount_value = _MONEYS.get(discount) if discount else ZERO
    if discount_value is None:
        discount_value = money(discount)
    try:
        return (
            number, sku, name, _CATEGORIES[category], count, price, discount_value, _BOOLS[is_gift],
            money(gift_value) if gift_value else None, _BOOLS[customised], _BOOLS[perishable],
            _BOOLS[digital_download], _BOOLS[sealed_media], _BOOLS[periodical], _CONFIRMATIONS[confirmation],
            _BOOLS[near_expiry], text(sanbao, 40) if sanbao else "", integer(warranty, 0, 1200) if warranty else 0,
        )
    except KeyError:
        raise Unsure from None


def shipment(cells: tuple[str, ...]) -> tuple[Any, ...]:
    """carrier, tracking_number, shipped_at, signed_at cells -> a shipment's values."""
    carrier, tracking_number, shipped_at, signed_at = cells
    return (text(carrier, 40), text(tracking_number, 64), moment(shipped_at) if shipped_at else None,
            moment(signed_at) if signed_at else None)


def buyer(external_id: str, name: str, email: str, phone: str) -> tuple[str, str, str, str]:
    key = (external_id, name, email, phone)
    if key in _BUYERS:  # a buyer orders again and again in one export; the e-mail regex is the slow part
        return key
    if email and not (len(email) <= 254 and _EMAIL.match(email)):
        raise Unsure
    checked = text(external_id, 100, required=True), text(name, 120), text(email, 254), text(phone, 32)
    if len(_BUYERS) < _BUYERS_KEPT:
        _BUYERS.add(key)
    return checked


def currency(cell: str) -> str | None:
    if not cell:
        return None
    if not _CURRENCY.fullmatch(cell):
        raise Unsure
    return cell


# One payment written the plain way: `method:amount`, then optionally `:fee=amount`, then `:ref=text`
# with no colon, semicolon or space at either end. Anything else (fee_by, another order, spaces)
# goes through importers.parse_payments and the schema.
_AMOUNT = r"(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?"
_PAYMENT = re.compile(rf"([a-z_]+):({_AMOUNT})(?::fee=({_AMOUNT}))?(?::ref=([^\s:;](?:[^:;]{{0,98}}[^\s:;])?))?")


def payments(cell: str) -> list[tuple[Any, ...]]:
    """A whole payments cell -> the payments' values, when every item is plainly written."""
    found = []
    for item in cell.split(";") if cell else ():
        match = _PAYMENT.fullmatch(item)
        if match is None:
            raise Unsure
        method, amount, fee, reference = match.groups()
        if method not in METHODS:
            raise Unsure
        found.append((method, money(amount), ZERO if fee is None else money(fee), False, reference or ""))
    return found


def payment(item: dict[str, Any]) -> tuple[Any, ...]:
    """One item of importers.parse_payments -> a payment's values in records.PAYMENT_FIELDS order."""
    if item["method"] not in METHODS:
        raise Unsure
    fee = item.get("fee")
    return (item["method"], money(item["amount"]), ZERO if fee is None else money(fee),
            item.get("fee_paid_by_buyer", False), text(item.get("reference", ""), 100))
