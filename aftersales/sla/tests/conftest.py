from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from aftersales.cases import services as case_services
from aftersales.cases.services import LineRequest
from aftersales.sla.models import SlaPolicy
from aftersales.testing import factories as f

SH = ZoneInfo("Asia/Shanghai")


def sh(*args):
    return dt.datetime(*args).replace(tzinfo=SH)


class Travel:
    """Moves the clock the services read (django.utils.timezone.now) to a given moment and keeps it there."""

    def __init__(self):
        self._traveller = None

    def to(self, moment):
        if self._traveller is not None:
            self._traveller.stop()
        self._traveller = time_machine.travel(moment, tick=False)
        self._traveller.start()
        return moment

    def stop(self):
        if self._traveller is not None:
            self._traveller.stop()
            self._traveller = None


@pytest.fixture
def travel():
    t = Travel()
    yield t
    t.stop()


@pytest.fixture
def store():
    return f.make_store()


def make_policy(store, **fields):
    fields.setdefault("name", "default")
    fields.setdefault("first_response_minutes", 60)
    return SlaPolicy.objects.create(store=store, **fields)


def open_inquiry(store, buyer=None, **extra):
    buyer = buyer or f.make_buyer(store)
    return case_services.create_case(actor=f.buyer_of(buyer), kind="inquiry", subject="where is my parcel", **extra)


def open_return(store, order=None, kind="return_refund"):
    order = order or f.make_order(store)
    line = order.lines.order_by("line_no").first()
    buyer = order.buyer
    case = case_services.create_case(actor=f.buyer_of(buyer), kind=kind, order_id=order.pk,
                                     lines=[LineRequest(line.pk, 1)], reason_code="quality")
    return case
