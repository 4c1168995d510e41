"""Opening a case on PostgreSQL reads in two statements and writes in one (`order_claims`,
`core.bulk_writes.insert_together`). These tests hold that path to the plain ORM path it replaces: the
same reads, the same rows written, and no more claimed than was bought when requests race."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from aftersales.cases import order_claims, services
from aftersales.cases.models import Case, CaseLine, TimelineEntry
from aftersales.core.errors import ValidationFailed
from aftersales.notifications.models import OutboxEvent
from aftersales.policies.models import StorePolicy
from aftersales.sla.models import SlaClock, SlaPolicy
from aftersales.testing import factories as f

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-round-trip path is PostgreSQL's")

NOW = dt.datetime(2026, 11, 4, 3, 0, tzinfo=dt.UTC)  # within the 7 days after signing (factories.SIGNED_AT)


def _values(instance):
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def _request(order, quantity=1):
    line = order.lines.order_by("line_no").first()
    return [services.LineRequest(order_line_id=line.pk, quantity=quantity)]


@pytest.mark.django_db
@pytest.mark.parametrize("with_policy", [True, False])
def test_the_two_statement_reads_equal_the_orm_reads(with_policy):
    store = f.make_store(platform_mode="jd")
    if with_policy:
        StorePolicy.objects.create(store=store, auto_approve_eligible=True)
    order = f.make_order(store)
    agent = f.staff(store)
    first, second = order.lines.order_by("line_no")
    services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="size",
                         lines=[services.LineRequest(order_line_id=first.pk, quantity=1)])
    # A cancelled case frees what it claimed: it must not count.
    gone = services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="quality",
                                lines=[services.LineRequest(order_line_id=second.pk, quantity=1)])
    Case.objects.filter(pk=gone.pk).update(status="cancelled")

    from django.db import transaction

    with transaction.atomic():
        orm = order_claims._read_with_orm(agent, order.pk, "quality")
        locked = order_claims._read_on_postgres(agent, order.pk, "quality", 2, locked=True)
    unlocked = order_claims._read_on_postgres(agent, order.pk, "quality", 2, locked=False)

    for fast in (locked, unlocked):
        assert _values(fast.order) == _values(orm.order)
        assert _values(fast.order.store) == _values(orm.order.store)
        assert _values(fast.order.buyer) == _values(orm.order.buyer)
        assert (_values(fast.order.store.policy) if with_policy else None) == \
            (_values(orm.order.store.policy) if with_policy else None)
        if not with_policy:
            with pytest.raises(StorePolicy.DoesNotExist):
                fast.order.store.policy  # noqa: B018 (the absence is cached, as select_related leaves it)
        assert [(pk, _values(line)) for pk, line in fast.lines.items()] == \
            [(pk, _values(line)) for pk, line in orm.lines.items()]
        assert dict(fast.claimed) == dict(orm.claimed) == {first.pk: 1, second.pk: 0}
        assert fast.reason is not None and orm.reason is not None
        assert _values(fast.reason) == _values(orm.reason) and fast.reason.code == "quality"
        assert [p.amount for p in fast.payments or []] == [Decimal("3197.00")]
        assert [s.carrier for s in fast.shipments or []] == ["SF"]
        assert fast.timeouts == ("jd", {})
        assert fast.ids is not None and len(fast.ids.case_line_ids) == 2
    assert locked.ids is not None and unlocked.ids is not None
    assert (locked.ids.case_serial, unlocked.ids.case_serial) == (3, 4)  # each read draws its own
    # The unlocked read carries the order row's version, which is the row's xmin as it stands.
    assert locked.version is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM orders_order WHERE id = %s", [order.pk])
        assert unlocked.version == cursor.fetchone()[0]
    assert orm.ids is None


@pytest.mark.django_db
def test_a_case_written_in_one_statement_equals_one_written_by_the_orm(monkeypatch):
    store = f.make_store()
    StorePolicy.objects.create(store=store, auto_approve_eligible=True)
    SlaPolicy.objects.create(store=store, name="all", first_response_minutes=120, resolution_minutes=2880,
                             business_time=False)
    agent = f.staff(store)
    buyer = f.make_buyer(store)
    orders = [f.make_order(store, buyer), f.make_order(store, buyer)]

    def open_case(order):
        with time_machine.travel(NOW, tick=False):
            return services.create_case(actor=agent, kind="return_refund", order_id=order.pk,
                                        reason_code="no_reason", lines=_request(order, 2))

    fast = open_case(orders[0])
    # The same request through the portable reads, which leave the writes to the ORM.
    monkeypatch.setattr(order_claims, "_read_on_postgres",
                        lambda actor, order_id, reason_code, line_count, locked: order_claims._read_with_orm(
                            actor, order_id, reason_code))
    plain = open_case(orders[1])

    def case_row(case):
        row = _values(Case.objects.get(pk=case.pk))
        return {k: v for k, v in row.items() if k not in ("id", "number", "order_id")}

    assert fast.status == plain.status == "awaiting_return"  # decided and approved on the spot
    assert case_row(fast)["decision"]["refund"] == case_row(plain)["decision"]["refund"]
    fast_row, plain_row = case_row(fast), case_row(plain)
    fast_row["decision"].pop("order_id", None)
    plain_row["decision"].pop("order_id", None)
    assert fast_row == plain_row

    def lines(case):
        return list(CaseLine.objects.filter(case=case).values_list("order_line__line_no", "quantity", "store_id"))

    def timeline(case):
        return list(TimelineEntry.objects.filter(case=case).order_by("id").values_list(
            "event", "from_status", "to_status", "actor_kind", "actor_label", "at"))

    def clocks(case):
        return list(SlaClock.objects.filter(case=case).order_by("target").values_list(
            "target", "budget_seconds", "started_at", "due_at", "met_at", "running_since"))

    def outbox(case):
        return [(row.type, {k: v for k, v in row.payload.items() if k not in ("case_id", "number")})
                for row in OutboxEvent.objects.filter(case_id=case.pk)]

    assert lines(fast) == lines(plain) == [(1, 2, store.pk)]
    assert timeline(fast) == timeline(plain)
    assert [event for event, *_ in timeline(fast)] == ["created", "submit", "approve"]
    assert clocks(fast) == clocks(plain)
    assert [target for target, *_ in clocks(fast)] == ["first_response", "resolution"]
    assert outbox(fast) == outbox(plain) == [("case.created", {
        "store_id": store.pk, "kind": "return_refund", "status": "awaiting_return", "source_event": "case.created"})]
    # What the API answers with comes from the objects in hand, which must be the rows as stored.
    assert [line.pk for line in fast.written_lines] == list(CaseLine.objects.filter(case=fast).values_list("pk", flat=True))


@pytest.mark.django_db
def test_an_unknown_order_or_reason_writes_nothing():
    store, other = f.make_store(), f.make_store()
    foreign = f.make_order(other)
    order = f.make_order(store)
    agent = f.staff(store)
    with pytest.raises(services.NotFound):
        services.create_case(actor=agent, kind="return_refund", order_id=foreign.pk, reason_code="size",
                             lines=_request(foreign))
    with pytest.raises(ValidationFailed) as refused:
        services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="nonsense",
                             lines=_request(order))
    assert refused.value.code == "invalid_reason"
    assert (Case.objects.count(), CaseLine.objects.count(), TimelineEntry.objects.count(),
            OutboxEvent.objects.count()) == (0, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_racing_requests_never_claim_more_than_was_bought():
    store = f.make_store()
    order = f.make_order(store, lines=[{"sku": "CUP", "name": "杯子", "quantity": 3, "unit_price": Decimal("20.00"),
                                        "category": "home"}])
    agent = f.staff(store)
    line_id = order.lines.get().pk
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def claim_one() -> None:
        try:
            barrier.wait(timeout=10)
            services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="size",
                                 lines=[services.LineRequest(order_line_id=line_id, quantity=1)])
            outcome = "created"
        except ValidationFailed as refused:
            outcome = refused.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=claim_one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["created"] * 3 + ["quantity_exceeds_available"] * 7
    assert sorted(CaseLine.objects.values_list("quantity", flat=True)) == [1, 1, 1]
    assert len(set(Case.objects.values_list("number", flat=True))) == 3


@pytest.mark.django_db
def test_the_decision_stays_compressed_in_the_case_row():
    store = f.make_store()
    order = f.make_order(store)
    agent = f.staff(store)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'cases_case'::regclass")
        toast = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {toast}")
        chunks_before = cursor.fetchone()[0]
        case = services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="quality",
                                    lines=_request(order))
        cursor.execute("SELECT octet_length(decision::text), pg_column_size(decision), pg_column_compression(decision) "
                       "FROM cases_case WHERE id = %s", [case.pk])
        text_length, stored_size, method = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {toast}")
        chunks_after = cursor.fetchone()[0]
    assert text_length > 3000  # big enough that PostgreSQL's default would have moved it out of the row
    assert stored_size < text_length * 0.7 and method == "lz4"
    assert chunks_after == chunks_before
    assert Case.objects.get(pk=case.pk).decision == case.decision


def _after_the_unlocked_read(monkeypatch, meanwhile):
    """Runs `meanwhile` (committed on its own) right after create_case's unlocked read, as a request
    on another connection might; returns the reads made, in order."""
    real_read = order_claims.read
    reads: list[bool] = []

    def read(actor, order_id, **kwargs):
        claim = real_read(actor, order_id, **kwargs)
        reads.append(kwargs.get("locked", True))
        if not kwargs.get("locked", True) and len(reads) == 1:
            meanwhile()
        return claim

    monkeypatch.setattr(order_claims, "read", read)
    return reads


@pytest.mark.django_db(transaction=True)
def test_a_case_opened_on_the_order_meanwhile_is_seen_before_anything_is_written(monkeypatch):
    store = f.make_store()
    order = f.make_order(store, lines=[{"sku": "CUP", "name": "杯子", "quantity": 1, "unit_price": Decimal("20.00"),
                                        "category": "home"}])
    agent = f.staff(store)
    line_id = order.lines.get().pk

    def open_one():
        return services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="size",
                                    lines=[services.LineRequest(order_line_id=line_id, quantity=1)])

    # The other request takes the only unit after this one read that it was free.
    reads = _after_the_unlocked_read(monkeypatch, lambda: other.append(open_one()))
    other: list[Case] = []
    with pytest.raises(ValidationFailed) as refused:
        open_one()
    assert refused.value.code == "quantity_exceeds_available"
    # The stale write was refused by the order's version, and the locked read saw the other case.
    assert reads == [False, False, True]  # this one unlocked, the other unlocked (and written), this one locked
    assert list(Case.objects.values_list("pk", flat=True)) == [other[0].pk]
    assert list(CaseLine.objects.values_list("quantity", flat=True)) == [1]
    assert TimelineEntry.objects.exclude(case=other[0]).count() == 0
    assert OutboxEvent.objects.exclude(case_id=other[0].pk).count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_order_resent_meanwhile_sends_the_case_the_careful_way(monkeypatch):
    store = f.make_store()
    order = f.make_order(store)
    agent = f.staff(store)

    def resend():  # any change to the order row makes a new version of it
        with connection.cursor() as cursor:
            cursor.execute("UPDATE orders_order SET currency = currency WHERE id = %s", [order.pk])

    reads = _after_the_unlocked_read(monkeypatch, resend)
    case = services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="size",
                                lines=_request(order))
    assert reads == [False, True]
    assert list(Case.objects.values_list("pk", "number")) == [(case.pk, case.number)]
    assert CaseLine.objects.filter(case=case).count() == 1


@pytest.mark.django_db(transaction=True)
def test_after_commit_listeners_find_the_case_written():
    from aftersales.core import events

    store = f.make_store()
    order = f.make_order(store)
    agent = f.staff(store)
    seen: list[tuple[bool, bool]] = []

    def listener(event, payload):
        seen.append((Case.objects.filter(pk=payload["case_id"]).exists(),
                     OutboxEvent.objects.filter(case_id=payload["case_id"]).exists()))

    events.subscribe("case.created", listener)
    try:
        services.create_case(actor=agent, kind="return_refund", order_id=order.pk, reason_code="size",
                             lines=_request(order))
    finally:
        events.unsubscribe("case.created", listener)
    # Opened outside any transaction, the case commits with its one statement; the listener runs after it.
    assert seen == [(True, True)]
