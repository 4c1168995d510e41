"""Tenant-scoped reads of the refund ledger."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from aftersales.cases import selectors as case_selectors
from aftersales.core import clock
from aftersales.core.errors import NotFound
from aftersales.stores import permissions as perm
from aftersales.stores.permissions import Actor

from .models import ReconciliationReport, Refund, RefundItem, RefundStatus


def _refunds(actor: Actor) -> QuerySet[Refund]:
    actor.require(perm.CASE_READ)
    items = RefundItem.objects.order_by("id").prefetch_related("attempts")
    query = Refund.objects.filter(store_id=actor.store_id).prefetch_related(Prefetch("items", queryset=items))
    if actor.is_buyer:
        assert actor.buyer_id is not None
        query = query.filter(case__buyer_id=actor.buyer_id)
    return query


def refunds_of_case(actor: Actor, case_id: int) -> list[Refund]:
    case = case_selectors.get_case(actor, case_id)  # 404 for another store's or another buyer's case
    return list(_refunds(actor).filter(case_id=case.pk).order_by("number"))


def get_refund(actor: Actor, refund_id: int) -> Refund:
    found = _refunds(actor).filter(pk=refund_id).first()
    if found is None:
        raise NotFound("refund")
    return found


def reconciliation_reports(actor: Actor, limit: int = 30) -> list[ReconciliationReport]:
    actor.require(perm.CASE_REFUND)
    return list(ReconciliationReport.objects.filter(store_id=actor.store_id).order_by("-day", "gateway")[:limit])


def overdue_refunds(actor: Actor, limit: int = 200) -> list[Refund]:
    """Refund steps past the date the decision set and not yet paid, the most overdue first: what
    finance chases before the buyer has to."""
    actor.require(perm.CASE_REFUND)
    return list(_refunds(actor).filter(due_at__lt=clock.now()).exclude(status=RefundStatus.SUCCEEDED)
                .order_by("due_at", "id")[:limit])


def exchange_settlement_status(store_id: int, exchange_id: int) -> str:
    """Where a replacement's price difference stands: the live charge's or refund's status, "" if none."""
    from .models import Charge, ChargeStatus

    charge = (Charge.objects.filter(store_id=store_id, exchange_id=exchange_id).exclude(status=ChargeStatus.CANCELLED)
              .values_list("status", flat=True).first())
    if charge is not None:
        return charge
    refund = (Refund.objects.filter(store_id=store_id, exchange_id=exchange_id).exclude(status=RefundStatus.CANCELLED)
              .values_list("status", flat=True).first())
    return refund or ""


def charges_of_case(actor: Actor, case_id: int) -> list[Any]:
    from .models import Charge

    case = case_selectors.get_case(actor, case_id)
    return list(Charge.objects.filter(store_id=actor.store_id, case_id=case.pk).prefetch_related("attempts")
                .order_by("id"))


def get_charge(actor: Actor, charge_id: int) -> Any:
    from .models import Charge

    actor.require(perm.CASE_READ)
    query = Charge.objects.filter(store_id=actor.store_id, pk=charge_id).prefetch_related("attempts")
    if actor.is_buyer:
        assert actor.buyer_id is not None
        query = query.filter(case__buyer_id=actor.buyer_id)
    found = query.first()
    if found is None:
        raise NotFound("charge")
    return found
