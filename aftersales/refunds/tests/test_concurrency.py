"""Racing requests on PostgreSQL: the proofs that a refund is paid once however many ask at once."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection, connections

from aftersales.cases import services as case_services
from aftersales.cases.models import Case
from aftersales.core.errors import DomainError
from aftersales.orders.models import Payment
from aftersales.refunds import services
from aftersales.refunds.models import LineRefundTotal, Refund, RefundItem, SandboxGatewayRefund, ShippingRefundTotal
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f

from .helpers import refunding_case

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: SQLite has one writer at a time and ignores SELECT ... FOR UPDATE, "
                              "so it cannot show transactions racing for the row locks"),
    pytest.mark.django_db(transaction=True),
]

RACERS = 32


def _race(work) -> list[Any]:
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except DomainError as exc:
            results[index] = exc.code
        except Exception as exc:  # anything else fails the test with its name, instead of vanishing in a thread
            results[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_32_simultaneous_refund_requests_for_one_case_pay_exactly_once():
    store = f.make_store()
    case = refunding_case(store)
    people = [f.staff(store, "finance") for _ in range(RACERS)]

    results = _race(lambda i: case_services.transition_case(actor=people[i], case_id=case.pk, action="refund").status)

    refused = [r for r in results if r != "refunded"]
    assert (results.count("refunded"), len(refused)) == (1, RACERS - 1)
    # Those that came after the payment find the case refunded; any that came between find it requested.
    assert set(refused) <= {"action_not_allowed", "refund_already_requested"}
    assert (Refund.objects.count(), RefundItem.objects.count()) == (1, 1)
    assert list(SandboxGatewayRefund.objects.values_list("amount", "status")) == [(Decimal("99.00"), "succeeded")]
    assert LineRefundTotal.objects.get().committed == Decimal("99.00")
    assert Case.objects.values_list("status", "refund_amount").get(pk=case.pk) == ("refunded", Decimal("99.00"))


def test_32_simultaneous_partial_requests_never_pass_what_was_paid():
    store = f.make_store()
    case = refunding_case(store)
    people = [f.staff(store, "finance") for _ in range(RACERS)]

    # Each asks for 10.00 as a non-final step: only nine fit in the 99.00 paid for the line.
    results = _race(lambda i: services.request_refund(actor=people[i], case_id=case.pk, amount=Decimal("10.00"),
                                                      final=False).amount)

    assert results.count(Decimal("10.00")) == 9
    assert results.count("amount_exceeds_paid") == RACERS - 9
    assert LineRefundTotal.objects.get().committed == Decimal("90.00")
    assert SandboxGatewayRefund.objects.filter(status="succeeded").count() == 9


def test_cases_of_one_order_racing_for_its_shipping_fee_refund_it_once():
    store = f.make_store()
    first = refunding_case(store)
    order = first.order
    assert order is not None
    order.shipping_fee = Decimal("8.00")
    order.save(update_fields=["shipping_fee"])
    Payment.objects.filter(order=order).update(amount=order.total_paid + Decimal("8.00"))
    system = system_actor(store.pk)
    # Three cases on one order (each T-shirt, the phone): their case locks do not serialise them.
    with time_machine.travel(f.SIGNED_AT + dt.timedelta(days=4), tick=False):
        first_line = first.lines.get()
        others = [case_services.create_case(actor=system, kind="return_refund", order_id=order.pk,
                                            reason_code="quality",
                                            lines=[case_services.LineRequest(order_line_id=line.pk, quantity=1)])
                  for line in (first_line.order_line, order.lines.get(line_no=2))]
    cases = [first, *others]
    people = [f.staff(store, "finance") for _ in cases]
    barrier = threading.Barrier(len(cases))
    results: list[Any] = [None] * len(cases)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = services.request_shipping_refund(actor=people[index], case_id=cases[index].pk,
                                                              leg="outbound", amount=Decimal("5.00")).amount
        except DomainError as exc:
            results[index] = exc.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(map(str, results)) == ["5.00", "amount_exceeds_ceiling", "amount_exceeds_ceiling"]
    assert ShippingRefundTotal.objects.values_list("committed", flat=True).get() == Decimal("5.00")
    assert SandboxGatewayRefund.objects.filter(status="succeeded").count() == 1


def test_a_charge_confirmed_while_its_exchange_is_given_up_and_retried_is_paid_back_once(settings):
    from aftersales.logistics.tests.helpers import warehouse
    from aftersales.refunds.gateways import sandbox
    from aftersales.refunds.models import Charge, ChargeRefund

    from .helpers import charged_exchange

    # The sandbox confirms an hour later: the charge stays in flight until its callback is posted below.
    settings.AFTERSALES_SANDBOX_GATEWAY = {"callback_delay_seconds": 3600, "duplicate_callbacks": 1}
    store = f.make_store()
    warehouse(store)
    charge = charged_exchange(store)
    assert Charge.objects.get(pk=charge.pk).status == "processing"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    [(body, headers)] = sandbox.due_callbacks(now=later)
    people = [f.staff(store, "admin") for _ in range(RACERS)]

    # Three triggers racing: the case is switched to a refund, the charge's confirmation arrives (many
    # copies), and finance retries the payback.
    def work(index: int) -> Any:
        if index % 4 == 0:
            return case_services.transition_case(actor=people[index], case_id=charge.case_id, action="convert",
                                                 outcome="return").status
        if index % 4 == 1:
            return services.retry_charge_refund(actor=people[index], charge_id=charge.pk).refunded
        return services.handle_callback(gateway_name="sandbox", body=body, headers=headers)

    results = _race(work)

    converts, retries, callbacks = results[0::4], results[1::4], [r for i, r in enumerate(results) if i % 4 > 1]
    assert sorted(converts, key=str) == ["action_not_allowed"] * (RACERS // 4 - 1) + ["refunding"]
    assert callbacks.count(True) == 1 and callbacks.count(False) == len(callbacks) - 1
    assert set(retries) <= {"not_found", "already_refunded", Decimal("10.00")}
    # Whatever the order, the payback's own confirmation comes once more and changes nothing twice.
    for late_body, late_headers in sandbox.due_callbacks(now=later + dt.timedelta(hours=2)):
        services.handle_callback(gateway_name="sandbox", body=late_body, headers=late_headers)
    payback = ChargeRefund.objects.get()
    assert (payback.status, payback.amount, Charge.objects.get().refunded) == (
        "succeeded", Decimal("10.00"), Decimal("10.00"))
    assert sorted(SandboxGatewayRefund.objects.values_list("kind", "amount", "status")) == [
        ("charge", Decimal("10.00"), "succeeded"), ("refund", Decimal("10.00"), "succeeded")]
