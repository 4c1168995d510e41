"""`core.rows.new_row` must make exactly what `Model(**values)` makes, for every model a new case writes:
the same attributes in the same order, the same defaults, the related objects cached, the same state; and
it must leave to Django whatever it does not cover (listeners, a keyword that is not a field)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db.models.signals import post_init

from aftersales.cases.models import Case, CaseLine, TimelineEntry
from aftersales.core.rows import new_row
from aftersales.notifications.models import OutboxEvent
from aftersales.sla.models import SlaClock, SlaPolicy
from aftersales.stores.models import Store
from aftersales.testing import factories as f

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 11, 0, 0, 1, tzinfo=dt.UTC)


def _same(built, made):
    """Compares everything an instance carries: its attributes (values and order) and its state."""
    assert type(built) is type(made)
    assert list(vars(built)) == list(vars(made))
    assert {k: v for k, v in vars(built).items() if k != "_state"} == {k: v for k, v in vars(made).items() if k != "_state"}
    assert (built._state.adding, built._state.db) == (made._state.adding, made._state.db)
    built_cache, made_cache = built._state.__dict__.get("fields_cache", {}), made._state.__dict__.get("fields_cache", {})
    assert list(built_cache) == list(made_cache)
    assert all(built_cache[name] is made_cache[name] for name in made_cache)


@pytest.fixture
def order():
    return f.make_order(f.make_store(case_number_prefix="NR"))


def test_a_case_is_built_as_django_builds_it(order):
    reason = order.store.reason_codes.get(code="quality")
    values = dict(pk=41, store=order.store, kind="return_refund", status="submitted", order=order, buyer=order.buyer,
                  reason=reason, channel="api", priority=2, subject="坏了", description="屏幕碎了",
                  requested_amount=Decimal("12.30"), created_at=AT, updated_at=AT, status_changed_at=AT)
    keys = (order.store_id, order.pk, order.buyer_id, reason.pk)
    built, made = new_row(Case, **values), Case(**values)
    _same(built, made)
    assert (built.store_id, built.order_id, built.buyer_id, built.reason_id) == keys
    assert built.store is order.store and built.order is order and built.reason is reason


def test_a_case_with_ids_and_no_order_is_built_as_django_builds_it(order):
    values = dict(store_id=order.store_id, kind="complaint", status="open", order=None, buyer_id=order.buyer_id,
                  reason=None, channel="web", priority=1, created_at=AT, updated_at=AT, status_changed_at=AT)
    built, made = new_row(Case, **values), Case(**values)
    _same(built, made)
    assert built.pk is None and built._state.db is None  # nothing related to take a database from


def test_lines_timeline_clocks_and_outbox_rows_are_built_as_django_builds_them(order):
    case = Case(pk=7, store=order.store, order=order, buyer=order.buyer, kind="return_refund", status="submitted",
                created_at=AT, updated_at=AT, status_changed_at=AT)
    line = order.lines.first()
    policy = SlaPolicy.objects.create(store=order.store, name="fast")
    samples = [
        (CaseLine, dict(pk=3, store_id=order.store_id, case=case, order_line=line, quantity=1)),
        (TimelineEntry, dict(store_id=order.store_id, case=case, at=AT, event="created", from_status="",
                             to_status="submitted", actor_kind="token", actor_label="token:erp", actor_user_id=None,
                             data={"channel": "api"})),
        (SlaClock, dict(store_id=order.store_id, case=case, policy=policy, target="first_response",
                        business_time=True, budget_seconds=3600, warn_seconds=2880, started_at=AT)),
        (OutboxEvent, dict(id=uuid.UUID(int=5), store_id=order.store_id, type="case.created", case_id=7,
                           payload={"case_id": 7}, created_at=AT)),
    ]
    for model, values in samples:
        _same(new_row(model, **values), model(**values))


def test_defaults_are_drawn_for_each_row():
    first = new_row(OutboxEvent, store_id=1, type="case.created", created_at=AT)
    second = new_row(OutboxEvent, store_id=1, type="case.created", created_at=AT)
    assert isinstance(first.pk, uuid.UUID) and first.pk.version == 4
    assert first.pk != second.pk
    assert first.payload == {} and first.payload is not second.payload  # a new dict each time, as Django draws it
    assert list(vars(first)) == list(vars(OutboxEvent(store_id=1, type="case.created", created_at=AT)))


def test_a_related_object_without_a_database_takes_the_rows(order):
    fresh_case = Case(store=order.store, kind="inquiry", status="open", created_at=AT, updated_at=AT,
                      status_changed_at=AT)
    twin = Case(store=order.store, kind="inquiry", status="open", created_at=AT, updated_at=AT, status_changed_at=AT)
    built = new_row(CaseLine, store=order.store, case=fresh_case, quantity=1)
    made = CaseLine(store=order.store, case=twin, quantity=1)
    assert (built._state.db, fresh_case._state.db) == (made._state.db, twin._state.db) == ("default", "default")


def test_what_it_does_not_cover_goes_to_django(order):
    # A keyword that is no field: Django's own error.
    with pytest.raises(TypeError, match="unexpected keyword arguments: 'colour'"):
        new_row(CaseLine, store_id=order.store_id, quantity=1, colour="red")
    # A relation named both ways: Django's rule (the id given last wins over the object).
    line = order.lines.first()
    other = order.lines.last()
    values = dict(store_id=order.store_id, order_line=line, order_line_id=other.pk, quantity=1)
    _same(new_row(CaseLine, **values), CaseLine(**values))
    # A model something listens to: built by Django, so the listener hears it.
    heard: list[str] = []

    def listener(sender, instance, **kwargs):
        heard.append(instance.name)

    post_init.connect(listener, sender=Store)
    try:
        new_row(Store, name="听")
    finally:
        post_init.disconnect(listener, sender=Store)
    assert heard == ["听"]


def test_an_object_of_the_wrong_model_is_refused_as_assignment_refuses_it(order):
    with pytest.raises(ValueError, match=r'"CaseLine\.case" must be a "Case" instance'):
        new_row(CaseLine, store_id=order.store_id, case=order, quantity=1)
    with pytest.raises(ValueError, match=r'"CaseLine\.case" must be a "Case" instance'):
        CaseLine(store_id=order.store_id, case=order, quantity=1)
