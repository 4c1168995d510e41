"""The quick cell checks of the CSV import never accept what the schemas refuse, nor read it otherwise."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aftersales.orders import cells
from aftersales.orders.importers import LINE_COLUMNS, SHIPMENT_COLUMNS, parse_payments
from aftersales.orders.records import line_values, payment_values, shipment_values
from aftersales.orders.schemas import BuyerIn, LineIn, PaymentIn, ShipmentIn

# Plain cells, near misses and oddities the schemas may read differently from a naive parser.
ODD = ["", " ", "0", "00", "01", "1", "+1", "-1", "1.5", "1e3", "1_000", "٣", "32767", "32768", "1000000", "1000001",
       "1200", "1201", "true", "True", "TRUE", "yes", "on", "f", "0.00", "0.001", ".5", "5.", "12345678901.00",
       "1234567890.12", "52.50", " 52.50", "52.50 ", "toys", "weapons", "other", "none", "explicit", "SKU-1",
       "\u00a0SKU", "SKU\u2003", "x" * 64, "x" * 65, "x" * 200, "x" * 201, "2026-11-11T09:30:00+08:00",
       "2026-11-11T09:30:00Z", "2026-11-11T09:30:00", "2026-02-30T09:30:00+08:00", "2026-11-11T24:00:00+08:00",
       "2026-11-11T09:30:00.1234567+08:00", "2026-11-11T09:30:00+24:00", "2026-11-11 09:30:00+08:00",
       "a@b.cn", "a@b", "a b@c.cn", "alipay", "coupon", "cash"]
cell = st.one_of(st.sampled_from(ODD), st.text(max_size=12))


def schema_reading(schema: Any, values: dict[str, Any], to_tuple: Any) -> tuple[Any, ...] | None:
    try:
        return to_tuple(schema.model_validate({k: v for k, v in values.items() if v != ""}))
    except ValidationError:
        return None


def quick_reading(check: Any, *args: Any) -> tuple[Any, ...] | None:
    try:
        return check(*args)
    except cells.Unsure:
        return None


# Good values per line column; a generated line starts from them and has up to three cells spoilt.
GOOD_LINE = {
    "line_no": ["1", "7", "1200", "32767"], "sku": ["SKU-1", "x" * 64], "name": ["商品", "x" * 200],
    "category": ["", "toys", "fresh_food"], "quantity": ["1", "3", "1000000"],
    "unit_price": ["0", "0.00", "52.5", "52.50", "1234567890.12"], "discount_allocated": ["", "0.00", "10.00"],
    "is_gift": ["", "true", "0"], "gift_declared_value": ["", "15.00"], "customised": ["", "1", "False"],
    "perishable": ["", "TRUE"], "digital_download": ["", "false"], "sealed_media": ["", "0"], "periodical": [""],
    "nonreturnable_confirmation": ["", "none", "explicit"], "near_expiry_disclosed": ["", "true"],
    "sanbao_catalogue": ["", "移动电话机"], "warranty_months": ["", "0", "12", "1200"],
}


def spoilt(good: dict[str, list[str]]) -> st.SearchStrategy[list[str]]:
    @st.composite
    def build(draw: st.DrawFn) -> list[str]:
        row = [draw(st.sampled_from(values)) for values in good.values()]
        for _ in range(draw(st.integers(0, 3))):
            row[draw(st.integers(0, len(row) - 1))] = draw(cell)
        return row
    return build()


@settings(max_examples=500, deadline=None)
@given(spoilt(GOOD_LINE))
def test_a_line_the_quick_check_accepts_is_the_line_the_schema_reads(line_cells):
    quick = quick_reading(cells.line, tuple(line_cells))

    assert quick is None or quick == schema_reading(LineIn, dict(zip(LINE_COLUMNS, line_cells, strict=True)), line_values)


GOOD_SHIPMENT = {"carrier": ["", "SF"], "tracking_number": ["", "SF123"],
                 "shipped_at": ["", "2026-11-11T18:00:00+08:00"], "signed_at": ["", "2026-11-12T09:00:00Z"]}


@settings(max_examples=300, deadline=None)
@given(spoilt(GOOD_SHIPMENT))
def test_a_shipment_the_quick_check_accepts_is_the_shipment_the_schema_reads(shipment_cells):
    quick = quick_reading(cells.shipment, tuple(shipment_cells))

    assert quick is None or quick == schema_reading(
        ShipmentIn, dict(zip(SHIPMENT_COLUMNS, shipment_cells, strict=True)), shipment_values)


@settings(max_examples=300, deadline=None)
@given(cell, cell, cell, cell)
@example("BUYER-1", "张伟", "zw@example.com", "13800000001")
def test_a_buyer_the_quick_check_accepts_is_the_buyer_the_schema_reads(external_id, name, email, phone):
    quick = quick_reading(cells.buyer, external_id, name, email, phone)

    assert quick is None or quick == schema_reading(
        BuyerIn, {"external_id": external_id, "name": name, "email": email, "phone": phone},
        lambda b: (b.external_id, b.name, b.email, b.phone))


@settings(max_examples=300, deadline=None)
@given(cell, cell, st.one_of(st.none(), cell), st.one_of(st.none(), cell), st.sampled_from([None, True, False]))
@example("alipay", "188.00", "1.13", "2026111122001", None)
def test_a_payment_the_quick_check_accepts_is_the_payment_the_schema_reads(method, amount, fee, reference, by_buyer):
    item: dict[str, Any] = {"method": method, "amount": amount}
    for key, value in (("fee", fee), ("reference", reference), ("fee_paid_by_buyer", by_buyer)):
        if value is not None:
            item[key] = value

    quick = quick_reading(cells.payment, item)

    try:
        expected = payment_values(PaymentIn.model_validate(item))
    except ValidationError:
        expected = None
    assert quick is None or quick == expected


def test_a_plain_line_is_read_without_the_schema():
    # The whole speed of the CSV import rests on plain rows taking the quick path.
    plain = ("2", "TSHIRT-M", "纯棉T恤", "apparel", "3", "69.00", "10.00", "false", "", "0", "1", "false", "false",
             "false", "none", "false", "", "12")

    assert cells.line(plain) == (2, "TSHIRT-M", "纯棉T恤", "apparel", 3, Decimal("69.00"), Decimal("10.00"), False, None,
                                 False, True, False, False, False, "none", False, "", 12)


def test_a_plain_shipment_is_read_without_the_schema():
    assert cells.shipment(("SF", "SF1", "2026-11-11T09:30:00+08:00", "2026-11-12T01:30:00Z")) == (
        "SF", "SF1", dt.datetime(2026, 11, 11, 1, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 12, 1, 30, tzinfo=dt.UTC))


def test_the_generators_cover_every_column():
    assert (list(GOOD_LINE), list(GOOD_SHIPMENT)) == (LINE_COLUMNS, SHIPMENT_COLUMNS)


def test_every_odd_cell_in_every_line_column_is_read_as_the_schema_reads_it():
    base = [values[-1] for values in GOOD_LINE.values()]
    disagreements = []
    for index, column in enumerate(LINE_COLUMNS):
        for value in ODD:
            line_cells = [*base[:index], value, *base[index + 1:]]
            quick = quick_reading(cells.line, tuple(line_cells))
            if quick is not None and quick != schema_reading(LineIn, dict(zip(LINE_COLUMNS, line_cells, strict=True)),
                                                             line_values):
                disagreements.append((column, value))

    assert disagreements == []


def test_every_odd_cell_in_every_shipment_column_is_read_as_the_schema_reads_it():
    base = [values[-1] for values in GOOD_SHIPMENT.values()]
    disagreements = []
    for index, column in enumerate(SHIPMENT_COLUMNS):
        for value in ODD:
            ship_cells = [*base[:index], value, *base[index + 1:]]
            quick = quick_reading(cells.shipment, tuple(ship_cells))
            if quick is not None and quick != schema_reading(
                    ShipmentIn, dict(zip(SHIPMENT_COLUMNS, ship_cells, strict=True)), shipment_values):
                disagreements.append((column, value))

    assert disagreements == []


PAYMENT_PIECES = ["alipay", "coupon", "cash", "Alipay", ":", ";", "188.00", "1.13", "0", "01", "5.", ":fee=", ":ref=",
                  ":fee_by=buyer", "=", " ", "AP-1", "a b", "\t", "x" * 99, "x" * 101, "20.00", "1234567890.12"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PAYMENT_PIECES), st.text(max_size=4)), max_size=12))
@example(["alipay:188.00:fee=1.13:ref=2026111122001;coupon:20.00"])
@example(["alipay:188.00:ref=", "x" * 100])
def test_a_payments_cell_the_quick_check_accepts_is_read_as_the_schema_reads_it(pieces):
    text = "".join(pieces)

    quick = quick_reading(cells.payments, text)

    try:
        expected = [payment_values(PaymentIn.model_validate(item)) for item in parse_payments(text)]
    except (ValueError, ValidationError):
        expected = None
    assert quick is None or quick == expected


def test_a_plain_payments_cell_is_read_without_the_schema():
    assert cells.payments("alipay:188.00:fee=1.13:ref=AP 1;coupon:20") == [
        ("alipay", Decimal("188.00"), Decimal("1.13"), False, "AP 1"), ("coupon", Decimal("20"), Decimal("0"), False, "")]
    assert cells.payments("") == []
