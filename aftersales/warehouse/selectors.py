"""Store-scoped reads of receipts, inspections and dispositions."""

from __future__ import annotations

from aftersales.cases import selectors as case_selectors
from aftersales.core.errors import NotFound
from aftersales.stores.permissions import Actor

from .models import Inspection


def case_inspection(actor: Actor, case_id: int) -> Inspection:
    case = case_selectors.get_case(actor, case_id)
    inspection = Inspection.objects.filter(store_id=actor.store_id, case=case).first()
    if inspection is None:
        raise NotFound("inspection")
    return inspection
