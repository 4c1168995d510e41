import csv
import gc
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from aftersales.orders.models import Order, OrderLine
from aftersales.orders.services import _ChunkWriter, import_orders_csv
from aftersales.stores.models import Buyer
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db

HEADER = ["external_id", "buyer_external_id", "buyer_name", "placed_at", "payments", "line_no", "sku", "name",
          "category", "quantity", "unit_price", "carrier", "tracking_number", "shipped_at", "signed_at"]
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample_orders.csv"


def row(order, line_no, **changes):
    values = {"external_id": order, "buyer_external_id": f"B-{order}", "buyer_name": "买家",
              "placed_at": "2026-11-11T09:00:00+08:00", "payments": "alipay:100.00;coupon:5.00", "line_no": str(line_no),
              "sku": f"SKU-{line_no}", "name": "商品", "category": "toys", "quantity": "1", "unit_price": "52.50",
              "carrier": "SF", "tracking_number": f"SF-{order}", "shipped_at": "2026-11-11T18:00:00+08:00",
              "signed_at": "2026-11-12T18:00:00+08:00"}
    values.update(changes)
    return [values[name] for name in HEADER]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def run(path, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_orders", path, "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_the_sample_file_imports_cleanly(tmp_path):
    store = f.make_store()

    code, out, err = run(str(SAMPLE), "--store", store.slug)

    assert (code, err) == (0, "")
    assert out.strip() == "6 rows read: 3 orders created, 0 updated, 6 lines written; 0 bad rows, 0 orders skipped"
    first = Order.objects.get(external_id="TB20261111001")
    assert first.total_paid == Decimal("208.00")
    assert list(first.payments.order_by("pk").values_list("method", "amount", "fee", "reference")) == [
        ("alipay", Decimal("188.00"), Decimal("1.13"), "2026111122001"), ("coupon", Decimal("20.00"), Decimal("0.00"), "")]
    assert first.shipments.count() == 1
    third = Order.objects.get(external_id="TB20261111003")
    assert sorted(third.shipments.values_list("carrier", flat=True)) == ["SF", "YTO"]
    assert third.lines.get(line_no=1).nonreturnable_confirmation == "explicit"


def test_bad_rows_are_reported_by_line_and_their_orders_skipped(tmp_path):
    store = f.make_store()
    path = write_csv(tmp_path / "orders.csv", [
        row("A", 1), row("A", 2),                                  # lines 2-3: good
        row("B", 1), row("B", 2, unit_price="-1"),                 # line 5: negative price
        row("C", 1, category="weapons"),                           # line 6: unknown category
        row("D", 1, quantity="0"),                                 # line 7
        row("E", 1, signed_at="12/11/2026"),                       # line 8
        row("F", 1), row("F", 2, placed_at="2026-11-12T09:00:00+08:00"),  # line 10: order columns differ
        row("G", 1, payments="alipay"),                            # line 11: payments not method:amount
        row("H", 1),                                               # line 12: good
        row("A", 3),                                               # line 13: A again, not consecutive
    ])

    code, out, err = run(path, "--store", store.slug)

    assert code == 1
    reported = [line.split(": ")[0:3] for line in err.splitlines() if line.startswith("line ")]
    assert reported == [
        ["line 5", "order B", "unit_price"],
        ["line 6", "order C", "category"],
        ["line 7", "order D", "quantity"],
        ["line 8", "order E", "signed_at"],
        ["line 10", "order F", "placed_at"],
        ["line 11", "order G", "payments"],
        ["line 13", "order A", "external_id"],
    ]
    assert "[out_of_range]" in err.splitlines()[0]
    assert "order B skipped (lines 4, 5)" in err
    assert out.strip() == "12 rows read: 2 orders created, 0 updated, 3 lines written; 7 bad rows, 6 orders skipped"
    assert sorted(Order.objects.filter(store=store).values_list("external_id", flat=True)) == ["A", "H"]
    assert OrderLine.objects.filter(store=store).count() == 3


def test_a_missing_required_column_makes_the_file_unusable(tmp_path):
    store = f.make_store()
    header = [name for name in HEADER if name != "unit_price"]
    path = write_csv(tmp_path / "orders.csv", [], header=header)

    with pytest.raises(CommandError) as error:
        call_command("import_orders", path, "--store", store.slug, "--no-progress")

    assert error.value.returncode == 2
    assert str(error.value).endswith("missing columns: unit_price")


def test_an_unknown_column_makes_the_file_unusable(tmp_path):
    store = f.make_store()
    path = write_csv(tmp_path / "orders.csv", [], header=[*HEADER, "colour"])

    code, _, _ = run(path, "--store", store.slug)

    assert code == 2


def test_the_cycle_collector_runs_again_after_an_import_good_or_unusable(tmp_path):
    store = f.make_store()
    good = write_csv(tmp_path / "good.csv", [row("A", 1)])
    unusable = write_csv(tmp_path / "unusable.csv", [], header=[*HEADER, "colour"])

    assert [run(good, "--store", store.slug)[0], gc.isenabled()] == [0, True]
    assert [run(unusable, "--store", store.slug)[0], gc.isenabled()] == [2, True]


def test_a_missing_file_is_unusable_input(tmp_path):
    store = f.make_store()

    code, _, _ = run(str(tmp_path / "nope.csv"), "--store", store.slug)

    assert code == 2


def test_importing_the_same_file_twice_updates_instead_of_duplicating(tmp_path):
    store = f.make_store()
    path = write_csv(tmp_path / "orders.csv", [row("A", 1), row("A", 2), row("B", 1)])
    run(path, "--store", store.slug)

    code, out, _ = run(path, "--store", store.slug)

    assert code == 0
    assert "0 orders created, 2 updated, 3 lines written" in out
    assert Order.objects.filter(store=store).count() == 2
    assert OrderLine.objects.filter(store=store).count() == 3


def test_orders_are_written_in_chunks_with_the_same_result(tmp_path):
    store = f.make_store()
    rows = [row(f"O{n}", line) for n in range(7) for line in (1, 2)]
    stream = io.StringIO()
    csv.writer(stream).writerows([HEADER, *rows])
    stream.seek(0)

    result = import_orders_csv(actor=system_actor(store.pk), store=store, stream=stream, chunk_orders=3)

    assert (result.created, result.lines, result.rows_read, result.problems) == (7, 14, 14, [])
    assert OrderLine.objects.filter(store=store).count() == 14


def test_the_store_must_be_named_when_there_are_several(tmp_path):
    f.make_store()
    f.make_store()

    code, _, _ = run(str(SAMPLE))

    assert code == 2


@pytest.mark.django_db(transaction=True)
def test_an_import_outside_any_transaction_writes_the_same_orders(tmp_path):
    # Without a surrounding transaction the PostgreSQL import writes on a thread of its own.
    store = f.make_store()
    path = write_csv(tmp_path / "orders.csv", [row(f"O{n}", line) for n in range(5) for line in (1, 2)]
                     + [row("BAD", 1, quantity="-1")])

    code, out, err = run(path, "--store", store.slug)

    assert code == 1
    assert err.splitlines()[0].startswith("line 12: order BAD: quantity:")
    assert out.strip() == "11 rows read: 5 orders created, 0 updated, 10 lines written; 1 bad rows, 1 orders skipped"
    assert OrderLine.objects.filter(store=store).count() == 10


def test_cells_the_quick_checks_leave_to_the_schema_are_read_as_the_schema_reads_them(tmp_path):
    store = f.make_store()
    path = write_csv(tmp_path / "orders.csv", [
        row("A", 1, quantity=" 2", sku=" SKU-1 ", payments="alipay: 105.00 :ref= AP-1 "),
        row("A", 2, unit_price="7.5", payments="alipay: 105.00 :ref= AP-1 "),
    ])

    code, _, err = run(path, "--store", store.slug)

    assert (code, err) == (0, "")
    order = Order.objects.get(store=store, external_id="A")
    assert list(order.lines.order_by("line_no").values_list("quantity", "sku", "unit_price")) == [
        (2, "SKU-1", Decimal("52.50")), (1, "SKU-2", Decimal("7.50"))]
    assert list(order.payments.values_list("method", "amount", "reference")) == [("alipay", Decimal("105.00"), "AP-1")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writers", [1, 2])
def test_chunks_on_writer_threads_share_buyers_without_duplicating_them(writers, monkeypatch):
    monkeypatch.setattr(_ChunkWriter, "WRITERS", writers)
    store = f.make_store()
    rows = [row(f"O{n}", line, buyer_external_id=f"B{n % 3}") for n in range(12) for line in (1, 2)]
    stream = io.StringIO()
    csv.writer(stream).writerows([HEADER, *rows])
    stream.seek(0)

    result = import_orders_csv(actor=system_actor(store.pk), store=store, stream=stream, chunk_orders=2)

    assert (result.created, result.lines, result.problems) == (12, 24, [])
    assert sorted(Buyer.objects.filter(store=store).values_list("external_id", flat=True)) == ["B0", "B1", "B2"]
    assert OrderLine.objects.filter(store=store).count() == 24
