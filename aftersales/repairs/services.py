"""Every write of repairs: service centres, repair orders, diagnosis and quotes, the result, 三包
conversion after a second failed repair, and shipping the device back.

The case moves only through `cases.services.transition_case`; this module keeps what the case table
does not: which attempt this is, the parts and labour, and how long the device was away.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, Visibility
from aftersales.cases.states import Action, Kind, Status
from aftersales.core import clock
from aftersales.core.errors import Conflict, NotFound, ValidationFailed
from aftersales.core.events import publish_on_commit
from aftersales.logistics import services as logistics
from aftersales.logistics.models import Purpose
from aftersales.policies.facts import RepairRecord
from aftersales.stores import permissions as perm
from aftersales.stores.models import Store
from aftersales.stores.permissions import Actor

from .models import CentreKind, QuoteStatus, RepairOrder, RepairOutcome, ServiceCentre

# 三包: after two failed repairs of the same fault the buyer may choose an exchange or a return.
FAILED_REPAIRS_BEFORE_CONVERSION = 2


def create_service_centre(*, actor: Actor, name: str, kind: str, address: str = "", phone: str = "") -> ServiceCentre:
    actor.require(perm.STORE_ADMIN)
    if kind not in CentreKind.values:
        raise ValidationFailed("unknown kind", field="kind", code="invalid_kind", details={"allowed": CentreKind.values})
    return ServiceCentre.objects.create(store_id=actor.store_id, name=name, kind=kind, address=address, phone=phone)


def _order_for_update(actor: Actor, repair_order_id: int) -> RepairOrder:
    order = (RepairOrder.objects.select_for_update().select_related("case")
             .filter(store_id=actor.store_id, pk=repair_order_id).first())
    if order is None or (actor.is_buyer and order.case.buyer_id != actor.buyer_id):
        raise NotFound("repair order")
    return order


def _local_today(store_id: int) -> dt.date:
    return clock.local_date(clock.now(), Store.objects.get(pk=store_id).timezone)


def open_repair_order(*, actor: Actor, case_id: int, service_centre_id: int, fault_code: str) -> RepairOrder:
    """Starts an attempt: the first on a received device (the case goes to diagnosing), or the next
    after a failed one (the case stays in repairing)."""
    actor.require(perm.CASE_REPAIR)
    fault_code = fault_code.strip()
    if not fault_code:
        raise ValidationFailed("name the fault", field="fault_code", code="field_required")
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        if case.kind != Kind.REPAIR:
            raise Conflict("not_a_repair", "repair orders belong to repair cases", details={"kind": case.kind})
        centre = ServiceCentre.objects.filter(store_id=case.store_id, pk=service_centre_id, active=True).first()
        if centre is None:
            raise ValidationFailed("unknown service centre", field="service_centre_id", code="invalid_service_centre")
        previous = RepairOrder.objects.filter(store_id=case.store_id, case=case).order_by("-attempt").first()
        if previous is not None and previous.outcome == RepairOutcome.OPEN:
            raise Conflict("repair_open", "finish the open repair order first", details={"repair_order_id": previous.pk})
        if case.status == Status.DEVICE_RECEIVED:
            case_services.transition_case(actor=actor, case_id=case.pk, action=Action.START_DIAGNOSIS)
        elif not (case.status == Status.REPAIRING and previous is not None and previous.outcome == RepairOutcome.FAILED):
            raise Conflict("action_not_allowed", f"a repair cannot start while the case is {case.status}",
                           details={"status": case.status})
        line = case.lines.filter(store_id=case.store_id).order_by("id").first()
        if line is None:
            raise Conflict("no_device", "the case names no order line")
        return RepairOrder.objects.create(
            store_id=case.store_id, case=case, order_line_id=line.order_line_id, service_centre=centre,
            attempt=(previous.attempt + 1) if previous else 1, fault_code=fault_code[:40], created_at=clock.now(),
            started_on=_local_today(case.store_id) if previous else None)


def _amount(raw: Any, field: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{field} is not a number", field=field, code="invalid_amount") from exc
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValidationFailed(f"{field} must be zero or more with at most two decimals", field=field,
                               code="invalid_amount")
    return value


def diagnose(*, actor: Actor, repair_order_id: int, diagnosis: str, covered: bool,
             parts: Sequence[dict[str, Any]] = (), labour_amount: Decimal | str = "0") -> RepairOrder:
    """Covered (in warranty, not excluded): the repair starts at no cost. Not covered: the buyer gets a
    quote of parts plus labour to accept or decline."""
    actor.require(perm.CASE_REPAIR)
    if not diagnosis.strip():
        raise ValidationFailed("write the diagnosis", field="diagnosis", code="field_required")
    labour = _amount(labour_amount, "labour_amount")
    clean_parts, parts_total = [], Decimal("0")
    for index, part in enumerate(parts):
        name = str(part.get("name") or "").strip()
        quantity = part.get("quantity", 1)
        if not name or not isinstance(quantity, int) or quantity < 1:
            raise ValidationFailed("each part needs a name and a quantity of at least 1", field=f"parts[{index}]",
                                   code="invalid_part")
        price = _amount(part.get("unit_price", "0"), f"parts[{index}].unit_price")
        clean_parts.append({"name": name[:120], "sku": str(part.get("sku") or "")[:64], "quantity": quantity,
                            "unit_price": str(price)})
        parts_total += price * quantity
    with transaction.atomic():
        order = _order_for_update(actor, repair_order_id)
        if order.outcome != RepairOutcome.OPEN or order.covered is not None:
            raise Conflict("already_diagnosed", "this repair order has been diagnosed")
        order.diagnosis, order.covered, order.parts = diagnosis.strip(), covered, clean_parts
        order.parts_amount, order.labour_amount = parts_total, labour
        case = order.case
        if covered:
            if case.status == Status.DIAGNOSING:
                case_services.transition_case(actor=actor, case_id=case.pk, action=Action.DIAGNOSE, outcome="covered",
                                              payload={"note": order.diagnosis[:500]})
            order.started_on = order.started_on or _local_today(case.store_id)
        else:
            if case.status != Status.DIAGNOSING:
                raise Conflict("action_not_allowed", "a quote is given while diagnosing", details={"status": case.status})
            order.quote_amount = parts_total + labour
            if order.quote_amount <= 0:
                raise ValidationFailed("a repair that is not covered needs a price", field="labour_amount",
                                       code="invalid_amount")
            order.quote_status = QuoteStatus.PENDING
            case_services.transition_case(actor=actor, case_id=case.pk, action=Action.QUOTE,
                                          payload={"amount": str(order.quote_amount), "diagnosis": order.diagnosis})
        order.save()
    return order


def answer_quote(*, actor: Actor, repair_order_id: int, accept: bool) -> RepairOrder:
    """The buyer accepts (the repair starts) or declines (the device is shipped back unrepaired)."""
    with transaction.atomic():
        order = _order_for_update(actor, repair_order_id)
        if order.quote_status != QuoteStatus.PENDING:
            raise Conflict("no_quote_pending", "there is no quote waiting for an answer")
        case_services.transition_case(actor=actor, case_id=order.case_id,
                                      action=Action.ACCEPT_QUOTE if accept else Action.DECLINE_QUOTE)
        order.quote_status = QuoteStatus.ACCEPTED if accept else QuoteStatus.DECLINED
        if accept:
            order.started_on = _local_today(order.store_id)
        else:
            order.outcome = RepairOutcome.NOT_REPAIRED
        order.save()
    return order


def finish_repair(*, actor: Actor, repair_order_id: int, success: bool, note: str = "") -> RepairOrder:
    """Records the result and how many days the repair took. A second failed repair of the same fault
    on the same device offers the buyer an exchange or a return (the staff then `convert`)."""
    actor.require(perm.CASE_REPAIR)
    with transaction.atomic():
        order = _order_for_update(actor, repair_order_id)
        case = order.case
        if order.outcome != RepairOutcome.OPEN or case.status != Status.REPAIRING or order.started_on is None:
            raise Conflict("action_not_allowed", "this repair is not in progress", details={"status": case.status})
        order.finished_on = _local_today(order.store_id)
        # At least a day: a device handed in and back the same day still spent that day in repair.
        order.repair_days = max(1, (order.finished_on - order.started_on).days)
        order.outcome = RepairOutcome.REPAIRED if success else RepairOutcome.FAILED
        order.save()
        if success:
            case_services.transition_case(actor=actor, case_id=case.pk, action=Action.MARK_REPAIRED,
                                          payload={"note": note} if note else None)
        elif failed_attempts(case, order.fault_code) >= FAILED_REPAIRS_BEFORE_CONVERSION:
            case_services.post_message(
                actor=_speaker(actor), case_id=case.pk, visibility=Visibility.PUBLIC,
                body=("同一故障已两次维修未修复，根据三包规定，您可以选择换货或退货。\n"
                      "The same fault could not be repaired twice: under the 三包 rules you may choose an "
                      "exchange or a return."))
            publish_on_commit("repair.conversion_offered", {"store_id": case.store_id, "case_id": case.pk,
                                                            "fault_code": order.fault_code})
    return order


def _speaker(actor: Actor) -> Actor:
    return actor if actor.can(perm.CASE_REPLY) else perm.system_actor(actor.store_id, f"repairs ({actor.label})")


def failed_attempts(case: Case, fault_code: str) -> int:
    return RepairOrder.objects.filter(store_id=case.store_id, case__order_id=case.order_id or 0, fault_code=fault_code,
                                      outcome=RepairOutcome.FAILED).count()


def convert(*, actor: Actor, case_id: int, to: str) -> Case:
    """Exchange or return after repeated failed repairs (or an unrepairable device)."""
    actor.require(perm.CASE_REPAIR)
    if to not in ("exchange", "return"):
        raise ValidationFailed("convert to exchange or return", field="to", code="invalid_outcome")
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        last = RepairOrder.objects.filter(store_id=case.store_id, case=case).order_by("-attempt").first()
        unrepairable = last is not None and case.status == Status.DIAGNOSING
        if not unrepairable and (last is None or failed_attempts(case, last.fault_code) < FAILED_REPAIRS_BEFORE_CONVERSION):
            raise Conflict("conversion_not_due", "conversion needs two failed repairs of the same fault "
                           "or an unrepairable device")
        result = case_services.transition_case(actor=actor, case_id=case.pk, action=Action.CONVERT, outcome=to)
        if last is not None and last.outcome == RepairOutcome.OPEN:
            last.outcome = RepairOutcome.CONVERTED
            last.save(update_fields=["outcome"])
    return result


def ship_back(*, actor: Actor, case_id: int, carrier: str, tracking_number: str) -> Any:
    """The repaired device goes back to the buyer; the case closes when the carrier reports delivery."""
    actor.require(perm.CASE_REPAIR)
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        # A declined quote has already moved the case to shipping_back: only the parcel is missing.
        declined = case.status == Status.SHIPPING_BACK and not case.shipments.filter(
            store_id=case.store_id, purpose=Purpose.REPAIR_BACK).exists()
        if case.status != Status.REPAIRED and not declined:
            raise Conflict("action_not_allowed", f"the device cannot be shipped back while the case is {case.status}",
                           details={"status": case.status})
        shipment = logistics.create_outbound(case=case, purpose=Purpose.REPAIR_BACK, carrier=carrier,
                                             tracking_number=tracking_number)
        if not declined:
            case_services.transition_case(actor=actor, case_id=case.pk, action=Action.SHIP_BACK,
                                          payload={"carrier": shipment.carrier,
                                                   "tracking_number": shipment.tracking_number})
    return shipment


def repair_history(*, store_id: int, order_line_id: int) -> tuple[RepairRecord, ...]:
    """The finished repairs of one order line, as the policy engine's History.repairs wants them."""
    rows = RepairOrder.objects.filter(store_id=store_id, order_line_id=order_line_id, started_on__isnull=False,
                                      finished_on__isnull=False).order_by("started_on", "id")
    return tuple(RepairRecord(started_on=r.started_on, finished_on=r.finished_on,
                              failed=r.outcome == RepairOutcome.FAILED, line_id=str(order_line_id))
                 for r in rows if r.started_on is not None and r.finished_on is not None)
