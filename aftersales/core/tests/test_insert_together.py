"""`core.bulk_writes.insert_together`: rows of several models in one statement, each model's rows as VALUES
(a parameter per value) while the statement stays within what psycopg keeps parsed, the rest as one JSON
document each. Both forms must write exactly the rows given, and a bad value must write nothing at all."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, transaction
from psycopg import _queries

from aftersales.cases import services
from aftersales.cases.models import Case, TimelineEntry
from aftersales.core.bulk_writes import MAX_CACHED_PARAMS, insert_together
from aftersales.notifications.models import OutboxEvent
from aftersales.testing import factories as f

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="insert_together is PostgreSQL's"),
]

AT = dt.datetime(2026, 11, 11, 0, 0, 0, 123456, tzinfo=dt.UTC)


def _open_case(**extra):
    store = f.make_store()
    order = f.make_order(store, f.make_buyer(store))
    line = order.lines.order_by("line_no").first()
    assert line is not None
    return services.create_case(actor=f.staff(store), kind="return_refund", order_id=order.pk, reason_code="quality",
                                lines=[services.LineRequest(order_line_id=line.pk, quantity=1)], **extra)


def _entries(case, count):
    user = f.make_staff(case.store)
    return [TimelineEntry(store_id=case.store_id, case_id=case.pk, at=AT + dt.timedelta(microseconds=i),
                          event=f"note_{i}", from_status="" if i % 2 else "submitted", to_status="approved",
                          actor_kind="staff", actor_label="客服 小王 " + "é" * i,
                          actor_user_id=user.pk if i % 2 else None,
                          data={"i": i, "nested": {"list": [1, "二", None]}, "text": 'quote " and \\ slash'})
            for i in range(count)]


def _written(rows):
    fields = [field.attname for field in TimelineEntry._meta.concrete_fields if field.attname != "id"]
    given = [tuple(getattr(row, name) for name in fields) for row in rows]
    stored = list(TimelineEntry.objects.filter(case_id=rows[0].case_id, event__startswith="note_")
                  .order_by("at").values_list(*fields))
    return given, stored


def _statements_sent(monkeypatch):
    sent = []
    execute = psycopg.Cursor.execute

    def recording(self, query, params=None, **kwargs):
        sent.append((query, params))
        return execute(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", recording)
    return sent


def test_our_limit_is_psycopgs():
    # If psycopg changes what it keeps parsed, the split between VALUES and JSON must follow.
    assert MAX_CACHED_PARAMS == _queries.MAX_CACHED_STATEMENT_PARAMS


def test_the_write_of_a_new_case_stays_within_what_psycopg_keeps_parsed(monkeypatch):
    sent = _statements_sent(monkeypatch)
    case = _open_case(requested_amount=Decimal("12.50"))
    [(query, params)] = [(q, p) for q, p in sent if q.startswith("WITH g AS")]
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert len(query) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    # The case row, the widest, goes as VALUES; the timeline's two rows would not fit beside it.
    assert 'INSERT INTO "cases_case"' in query and "SELECT * FROM (VALUES (%s::int8" in query
    assert 'json_populate_recordset(NULL::"cases_timelineentry"' in query
    stored = Case.objects.get(pk=case.pk)
    assert stored.requested_amount == Decimal("12.50")
    assert stored.decision == case.decision and stored.created_at == case.created_at


@pytest.mark.parametrize(("count", "form"), [(1, "VALUES"), (5, "VALUES"), (6, "json_populate_recordset")])
def test_rows_read_back_exactly_as_given_in_either_form(monkeypatch, count, form):
    case = _open_case()
    rows = _entries(case, count)
    sent = _statements_sent(monkeypatch)
    # Ten columns a row: five rows (50 parameters, psycopg's limit) go as VALUES, six as one JSON document.
    assert insert_together([(TimelineEntry, rows)]) is True
    [(query, _)] = sent
    assert form in query
    given, stored = _written(rows)
    assert stored == given


def test_empty_groups_are_skipped_and_nothing_is_sent(monkeypatch):
    sent = _statements_sent(monkeypatch)
    assert insert_together([(TimelineEntry, []), (OutboxEvent, [])]) is True
    assert sent == []


@pytest.mark.parametrize("count", [1, 6])  # the long value's row as VALUES, then inside a JSON document
def test_a_value_too_long_for_its_column_writes_nothing_of_the_statement(count):
    case = _open_case()
    good = OutboxEvent(id=uuid.uuid4(), store_id=case.store_id, type="case.noted", case_id=case.pk,
                       payload={"case_id": case.pk}, created_at=AT)
    entries = _entries(case, count)
    max_length = TimelineEntry._meta.get_field("event").max_length
    assert max_length is not None
    entries[-1].event = "x" * (max_length + 1)
    entries_before, events_before = TimelineEntry.objects.count(), OutboxEvent.objects.count()
    with pytest.raises(psycopg.errors.StringDataRightTruncation), transaction.atomic():
        insert_together([(OutboxEvent, [good]), (TimelineEntry, entries)])
    assert (TimelineEntry.objects.count(), OutboxEvent.objects.count()) == (entries_before, events_before)


@pytest.mark.parametrize("count", [1, 8])
def test_none_is_written_as_null_in_either_form(count):
    case = _open_case()
    rows = [OutboxEvent(id=uuid.uuid4(), store_id=case.store_id, type="case.noted", case_id=case.pk,
                        payload={"n": n}, created_at=AT, dispatched_at=None) for n in range(count)]
    insert_together([(OutboxEvent, rows)])
    stored = OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).order_by("payload__n")
    assert [(row.payload, row.dispatched_at, row.created_at) for row in stored] == [
        ({"n": n}, None, AT) for n in range(count)]


@pytest.mark.parametrize(("count", "form"), [(1, "VALUES"), (2, "json_populate_recordset")])
def test_a_json_column_left_empty_is_sql_null_in_either_form(monkeypatch, count, form):
    # A case's decision is empty until a policy decides; empty means SQL NULL (what the ORM writes for
    # None in a nullable JSONField), never the JSON value null.
    case = _open_case()
    fields = {field.attname: getattr(case, field.attname) for field in Case._meta.concrete_fields if field.attname != "id"}
    copies = [Case(**{**fields, "number": f"COPY-{n}", "decision": None}) for n in range(count)]
    sent = _statements_sent(monkeypatch)
    insert_together([(Case, copies)])
    assert form in sent[0][0]
    stored = Case.objects.filter(store_id=case.store_id, number__startswith="COPY-")
    assert stored.count() == stored.filter(decision__isnull=True).count() == count
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cases_case WHERE number LIKE 'COPY-%%' AND decision IS NULL")
        assert cursor.fetchone()[0] == count
