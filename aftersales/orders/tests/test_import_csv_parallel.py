"""A large file split over worker processes gives the result and report of reading it in one piece."""

import csv
import itertools
from pathlib import Path

import pytest
from django.db import connection

from aftersales.orders import importers, services
from aftersales.orders.importers import OrderCsvReader, count_lines, open_slice
from aftersales.orders.models import Order, OrderLine
from aftersales.orders.services import import_orders_csv, import_orders_csv_file
from aftersales.orders.tests.test_import_csv import HEADER, row, run, write_csv
from aftersales.stores.models import Buyer
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="worker processes need PostgreSQL")


def awkward_rows(quoted=True):
    """Orders of 1-3 lines, with bad rows, an order repeated far below its first run, quoted cells with
    line breaks (one of them an order's first row) and blank lines, so that cuts fall near all of them.
    Not quoted: no cell needs quotes, so the file is cut by its lines."""
    rows = []
    for n in range(40):
        lines = 1 + n % 3
        for line_no in range(1, lines + 1):
            changes = {"buyer_external_id": f"B{n % 4}"}
            if n % 7 == 3 and line_no == 1:
                changes["name"] = "商品\n第二行,\"引号\"\r\n第三行" if quoted else "商品 第二行"
            if n % 11 == 5 and line_no == lines:
                changes["quantity"] = "0"
            rows.append(row(f"O{n:03d}", line_no, **changes))
        if n % 9 == 0:
            rows.append([""] * len(HEADER))
    rows.insert(70, row("O002", 9))  # repeats an order finished far above: refused
    rows.insert(30, row("", 1))  # no order number
    return rows


def read_whole(path):
    with open(path, encoding="utf-8-sig", newline="") as stream:
        reader = OrderCsvReader(stream)
        orders = [(p.order.external_id, p.first_line, p.rows) for p in reader]
    return orders, reader.problems, reader.skipped_orders, reader.rows_read


def read_in_slices(path, parts):
    with open(path, encoding="utf-8-sig", newline="") as stream:
        planner = OrderCsvReader(stream)
        slices = planner.split(parts, path)
    orders, problems, skipped, rows_read = [], [], [], 0
    for part in slices:
        with open_slice(path, part, planner.header_lines) as reader:
            orders += [(p.order.external_id, p.first_line, p.rows) for p in reader]
        problems += reader.problems
        skipped += reader.skipped_orders
        rows_read += reader.rows_read
    return slices, (orders, problems, skipped, rows_read)


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("parts", [2, 3, 5, 16])
def test_slices_read_what_the_whole_file_reads_with_the_same_line_numbers(tmp_path, parts, quoted):
    path = write_csv(tmp_path / "orders.csv", awkward_rows(quoted))

    slices, in_slices = read_in_slices(path, parts)

    assert len(slices) == parts
    assert all(s.offset is None for s in slices) == quoted
    assert in_slices == read_whole(path)
    assert any(p.code == "order_not_contiguous" and p.external_id == "O002" for p in in_slices[1])


def assert_cut_between_orders(path, slices, id_index=0):
    order_at = {}  # the first physical line of each row that is not blank -> its order number
    with open(path, encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream)
        end = len(next(reader)) and reader.line_num
        for cells in reader:
            if any(cells):
                order_at[end + 1] = cells[id_index] if id_index < len(cells) else ""
            end = reader.line_num
    row_starts = list(order_at)
    for before, part in itertools.pairwise(slices):
        assert before.first_line + before.lines == part.first_line
        assert part.first_line in order_at
        above = row_starts[row_starts.index(part.first_line) - 1]
        assert order_at[part.first_line] != order_at[above]
        assert part.earlier_orders == {order_at[line] for line in row_starts if line < part.first_line} - {""}
    assert slices[-1].lines is None
    assert slices[0].earlier_orders == frozenset()


@pytest.mark.parametrize("quoted", [True, False])
def test_a_slice_starts_at_a_row_of_another_order_never_inside_a_quoted_cell(tmp_path, quoted):
    path = write_csv(tmp_path / "orders.csv", awkward_rows(quoted))

    slices, _ = read_in_slices(path, 16)

    assert len(slices) == 16
    assert_cut_between_orders(path, slices)


@pytest.mark.parametrize("block", [importers._BLOCK, 7])  # also in blocks far shorter than a line
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("parts", [2, 7])
def test_a_file_without_quotes_is_cut_by_its_lines_where_its_rows_would_cut_it(
    tmp_path, monkeypatch, parts, ending, block,
):
    monkeypatch.setattr(importers, "_BLOCK", block)
    # The order number in the last column (and a row short of it), blank rows, lines ended by \n or
    # \r\n: the quick cut by bytes must find rows as the csv module would. (A bare \r ends a line too,
    # which the quick cut does not look for: such a file is cut by its rows.)
    header = [*HEADER[1:], "external_id"]
    rows = [[*cells[1:], cells[0]] for cells in awkward_rows(quoted=False)]
    rows[40] = rows[40][:3]
    path = Path(tmp_path / "orders.csv")
    path.write_text("".join(",".join(cells) + ending for cells in [header, *rows]), encoding="utf-8-sig")

    slices, in_slices = read_in_slices(str(path), parts)

    assert len(slices) == parts
    assert all(s.offset is not None for s in slices) == (ending != "\r")
    assert_cut_between_orders(str(path), slices, id_index=len(header) - 1)
    assert in_slices == read_whole(str(path))


def test_a_file_without_a_cut_between_orders_stays_one_slice(tmp_path):
    path = write_csv(tmp_path / "orders.csv", [row("A", n) for n in range(1, 30)])

    slices, in_slices = read_in_slices(path, 4)

    assert [(s.first_line, s.lines) for s in slices] == [(2, None)]
    assert in_slices == read_whole(path)


def test_small_files_sqlite_and_a_callers_transaction_take_one_process(tmp_path, monkeypatch):
    # Within the test's transaction (and on SQLite) the workers' writes would escape it: no process.
    monkeypatch.setattr(services, "_import_in_processes", None)
    store = f.make_store()
    path = write_csv(tmp_path / "orders.csv", awkward_rows())

    result = import_orders_csv_file(actor=system_actor(store.pk), store=store, path=path, workers=4,
                                    parallel_from_lines=1)

    assert (result.created, result.rows_read) == (36, 81)
    assert Order.objects.filter(store=store).count() == 36


def import_both_ways(tmp_path, rows, **options):
    """The file imported in one process into one store and in worker processes into another."""
    path = write_csv(tmp_path / "orders.csv", rows)
    one, many = f.make_store(), f.make_store()
    with open(path, encoding="utf-8", newline="") as stream:
        expected = import_orders_csv(actor=system_actor(one.pk), store=one, stream=stream, chunk_orders=4)
    seen: list[int] = []
    result = import_orders_csv_file(actor=system_actor(many.pk), store=many, path=path, progress=seen.append,
                                    parallel_from_lines=1, chunk_orders=4, **options)
    return path, (one, expected), (many, result), seen


def stored(store):
    return (sorted(Order.objects.filter(store=store).values_list("external_id", "buyer__external_id", "total_paid")),
            sorted(OrderLine.objects.filter(store=store).values_list("order__external_id", "line_no", "name")))


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 3])
def test_worker_processes_write_and_report_what_one_process_does(tmp_path, monkeypatch, workers):
    started: list[int] = []
    real = services._import_in_processes

    def in_processes(*args):
        started.append(len(args[2]))
        return real(*args)

    monkeypatch.setattr(services, "_import_in_processes", in_processes)

    _, (one, expected), (many, result), progress = import_both_ways(tmp_path, awkward_rows(), workers=workers)

    assert started == [workers]
    assert result == expected
    assert result.problems and result.skipped_orders
    assert stored(many) == stored(one)
    assert sum(progress) == result.rows_read == 81
    assert sorted(Buyer.objects.filter(store=many).values_list("external_id", flat=True)) == ["B0", "B1", "B2", "B3"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_importing_again_with_workers_updates_without_duplicating(tmp_path):
    path, _, (store, first), _ = import_both_ways(tmp_path, awkward_rows(), workers=2)

    again = import_orders_csv_file(actor=system_actor(store.pk), store=store, path=path, workers=2,
                                   parallel_from_lines=1)

    assert (again.created, again.updated, again.lines) == (0, first.created, first.lines)
    assert Order.objects.filter(store=store).count() == first.created
    assert OrderLine.objects.filter(store=store).count() == first.lines


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_command_reports_the_same_lines_with_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(services, "CSV_PARALLEL_LINES", 1)
    rows = awkward_rows()
    one, many = f.make_store(), f.make_store()
    path = write_csv(tmp_path / "orders.csv", rows)

    assert run(path, "--store", many.slug, "--workers", "2") == run(path, "--store", one.slug, "--workers", "1")
    assert stored(many) == stored(one)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_failing_worker_fails_the_import_and_the_others_keep_their_orders(tmp_path):
    store = f.make_store()
    path = Path(write_csv(tmp_path / "orders.csv", [row(f"O{n:03d}", 1) for n in range(400)]))
    path.write_bytes(path.read_bytes().replace(b"O399", b"O\xff99", 1))  # not UTF-8, on the last row

    with pytest.raises(UnicodeDecodeError):
        import_orders_csv_file(actor=system_actor(store.pk), store=store, path=str(path), workers=2,
                               parallel_from_lines=1)

    assert 200 <= Order.objects.filter(store=store).count() < 400  # the first slice's, all written
    code, _, _ = run(str(path), "--store", store.slug, "--workers", "2")
    assert code == 2


def test_counting_lines_counts_line_breaks(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(b"a\r\nb\nc")
    assert count_lines(str(path)) == 2


def changing_buyer_file(tmp_path):
    """One buyer over 40 orders, whose name changes at the 30th, e-mail is given once and phone every
    other order: one process, in chunks of any size, ends with the last non-empty value of each."""
    header = [*HEADER, "buyer_email", "buyer_phone"]
    rows = [[*row(f"O{n:03d}", 1, buyer_external_id="B0", buyer_name="早" if n < 30 else "晚"),
             "a@example.com" if n == 5 else "", f"1380000{n:04d}" if n % 2 == 0 else ""] for n in range(40)]
    return write_csv(tmp_path / "orders.csv", rows, header=header)


def buyer_details(store):
    return list(Buyer.objects.filter(store=store).values_list("external_id", "name", "email", "phone"))


@pytest.mark.parametrize("chunk_orders", [1, 3, 40])
def test_a_buyer_ends_with_the_last_details_given_whatever_the_chunks(tmp_path, chunk_orders):
    store = f.make_store()
    path = changing_buyer_file(tmp_path)

    with open(path, encoding="utf-8", newline="") as stream:
        import_orders_csv(actor=system_actor(store.pk), store=store, stream=stream, chunk_orders=chunk_orders)

    assert buyer_details(store) == [("B0", "晚", "a@example.com", "13800000038")]


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 4])
def test_a_buyer_in_several_slices_ends_as_after_one_process_whichever_commits_last(tmp_path, workers):
    path = changing_buyer_file(tmp_path)
    store = f.make_store()

    import_orders_csv_file(actor=system_actor(store.pk), store=store, path=path, workers=workers,
                           parallel_from_lines=1, chunk_orders=3)

    assert buyer_details(store) == [("B0", "晚", "a@example.com", "13800000038")]


def test_buyers_written_by_several_slices_are_settled_in_the_files_order():
    # As if the first slice had committed last: its details stand, and the second slice's must win.
    store = f.make_store()
    Buyer.objects.create(store=store, external_id="B0", name="早", email="a@example.com", phone="138")
    Buyer.objects.create(store=store, external_id="B1", name="同", email="", phone="")

    services._settle_buyers(store, [{"B0": ("早", "a@example.com", "138"), "B1": ("同", "", "")},
                                    {"B0": ("晚", "", "139"), "B1": ("同", "", "")}])

    assert sorted(buyer_details(store)) == [("B0", "晚", "a@example.com", "139"), ("B1", "同", "", "")]
