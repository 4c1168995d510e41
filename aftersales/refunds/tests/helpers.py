"""Shared set-up for the refund tests: a store, an order, a case waiting in `refunding`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import time_machine

from aftersales.cases import services as case_services
from aftersales.cases.models import Case
from aftersales.orders.models import Payment
from aftersales.stores.permissions import system_actor
from aftersales.testing import factories as f


def refunding_case(store, *, quantity=1, lines=(0,), payments=None, buyer=None) -> Case:
    """A quality return of the T-shirts (2 × 99.00) and/or the phone (2999.00), received, inspected and
    waiting in `refunding`.

    `payments` replaces the order's single Alipay payment: [(method, amount), ...].
    """
    order = f.make_order(store, buyer)
    if payments is not None:
        Payment.objects.filter(order=order).delete()
        for method, amount in payments:
            Payment.objects.create(store=store, order=order, method=method, amount=Decimal(amount),
                                   reference=f"{method}-{order.pk}")
    else:
        Payment.objects.filter(order=order).update(reference=f"alipay-{order.pk}")
    order_lines = list(order.lines.order_by("line_no"))
    system = system_actor(store.pk)
    # Asked four days after delivery, well inside every window, so the policy engine opens the return.
    with time_machine.travel(f.SIGNED_AT + dt.timedelta(days=4), tick=False):
        case = case_services.create_case(
            actor=system, kind="return_refund", order_id=order.pk, reason_code="quality",
            lines=[case_services.LineRequest(order_line_id=order_lines[i].pk, quantity=quantity if i == 0 else 1)
                   for i in lines])
    for action, outcome, payload in (("approve", None, {}), ("ship_return", None, {"carrier": "SF", "tracking_number": "SF1"}),
                                     ("mark_received", None, {}), ("start_inspection", None, {}),
                                     ("record_inspection", "passed", {})):
        case_services.transition_case(actor=system, case_id=case.pk, action=action, outcome=outcome, payload=payload)
    case.refresh_from_db()
    assert case.status == "refunding"
    return case


def charged_exchange(store, buyer=None, *, price: str = "109.00"):
    """The buyer's exchange of a T-shirt (paid 99.00) for a dearer one, goods inspected: its charge.
    The store needs a default warehouse."""
    from aftersales.catalog.models import Product
    from aftersales.logistics import services as logistics_services
    from aftersales.logistics.models import Warehouse
    from aftersales.refunds.models import Charge
    from aftersales.warehouse import services as warehouse_services

    admin = f.staff(store, "admin")
    sku = f"TSHIRT-XL-{store.pk}"
    Product.objects.create(store=store, sku=sku, name="T恤 XL", price=Decimal(price))
    depot = Warehouse.objects.get(store=store, is_default=True)
    warehouse_services.set_stock(actor=admin, warehouse_id=depot.pk, sku=sku, on_hand=1)
    order = f.make_order(store, buyer)
    line = order.lines.order_by("line_no")[0]
    case = case_services.create_case(actor=admin, kind="exchange", order_id=order.pk, reason_code="quality",
                                     lines=[case_services.LineRequest(order_line_id=line.pk, quantity=1)])
    case_services.transition_case(actor=admin, case_id=case.pk, action="approve")
    warehouse_services.receive(actor=admin, code=case.number)
    case_services.transition_case(actor=admin, case_id=case.pk, action="record_inspection", outcome="passed")
    exchange = logistics_services.choose_replacement(actor=admin, case_id=case.pk, order_line_id=line.pk, sku=sku)
    return Charge.objects.get(store=store, exchange=exchange)
