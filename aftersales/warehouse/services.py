"""Every write of the warehouse: receiving, inspection, disposition and the inventory export.

The case moves only through `cases.services.transition_case`; photos are filed through
`add_attachment`, so they are checked like any evidence and visible on the case.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, CaseLine, Visibility
from aftersales.cases.states import Action, Kind, Status
from aftersales.core import clock
from aftersales.core.errors import Conflict, NotFound, ValidationFailed
from aftersales.core.events import publish_on_commit
from aftersales.logistics.models import CaseShipment, Direction, Exchange, Warehouse
from aftersales.orders.models import OrderLine
from aftersales.stores import permissions as perm
from aftersales.stores.permissions import Actor

from .checklists import checks_for
from .models import (
    Check,
    Disposition,
    Grade,
    Inspection,
    InspectionResult,
    LineDisposition,
    MovementKind,
    Receipt,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockReservation,
)

_AWAITING_GOODS = frozenset({Status.AWAITING_RETURN, Status.RETURN_IN_TRANSIT, Status.AWAITING_DEVICE,
                             Status.DEVICE_IN_TRANSIT})
MAX_PHOTOS = 12


@dataclass(frozen=True)
class Photo:
    content: bytes
    filename: str


def _find_case(actor: Actor, code: str) -> Case:
    """A scan is the case number (from the return slip) or the tracking number on the parcel."""
    code = "".join(code.split())
    if not code:
        raise ValidationFailed("scan a case or tracking number", field="code", code="field_required")
    case = Case.objects.filter(store_id=actor.store_id, number=code).first()
    if case is None:
        shipment = (CaseShipment.objects.filter(store_id=actor.store_id, tracking_number=code.upper(),
                                                direction=Direction.INBOUND).select_related("case").first())
        case = shipment.case if shipment is not None else None
    if case is None:
        raise NotFound("case or parcel")
    return case


def receive(*, actor: Actor, code: str) -> Case:
    """Scan a parcel in. Goods still on their way are marked received; a return (or exchange) then goes
    straight to inspection, a repair device to the service desk."""
    actor.require(perm.CASE_WAREHOUSE)
    with transaction.atomic():
        case = _find_case(actor, code)
        if case.status in _AWAITING_GOODS:
            case = case_services.transition_case(actor=actor, case_id=case.pk, action=Action.MARK_RECEIVED,
                                                 payload={"note": f"scanned {code}"})
        elif case.status not in (Status.RECEIVED, Status.DEVICE_RECEIVED):
            raise Conflict("not_expected", f"this case is {case.status}: no parcel is expected for it",
                           details={"status": case.status, "number": case.number})
        Receipt.objects.create(store_id=case.store_id, case=case, scanned_code=code[:64], received_by=actor.label,
                               received_at=clock.now())
        if case.kind in (Kind.RETURN_REFUND, Kind.EXCHANGE) and case.status == Status.RECEIVED:
            case = case_services.transition_case(actor=actor, case_id=case.pk, action=Action.START_INSPECTION)
    return case


def checklist_for(*, actor: Actor, case_id: int) -> list[str]:
    actor.require(perm.CASE_READ)
    case = Case.objects.filter(store_id=actor.store_id, pk=case_id).first()
    if case is None or (actor.is_buyer and case.buyer_id != actor.buyer_id):
        raise NotFound("case")
    return checks_for(case.store_id, _categories(case))


def _categories(case: Case) -> list[str]:
    return sorted(set(OrderLine.objects.filter(store_id=case.store_id, case_lines__case=case)
                      .values_list("category", flat=True)))


_FAILURE_TEXT = {
    Check.COMPLETE: ("配件或赠品不全", "parts or accessories are missing"),
    Check.SEAL: ("封条已破损", "the seal is broken"),
    Check.TAGS: ("吊牌已剪除或缺失", "the tags are removed or missing"),
    Check.ACTIVATION: ("商品已激活", "the item has been activated"),
    Check.DAMAGE: ("存在人为损坏", "the item is damaged beyond trying it"),
    Check.WRONG_ITEM: ("退回的不是我们售出的商品", "the item returned is not the one we sold"),
    Check.EMPTY_PARCEL: ("包裹为空", "the parcel was empty"),
}


def record_inspection(*, actor: Actor, case_id: int, checklist: Mapping[str, bool], grade: str, notes: str = "",
                      photos: Sequence[Photo] = ()) -> Inspection:
    """Every check of the case's checklist must be answered. All passed → the case goes on (refund or
    reship); any failed → it fails, and the buyer is told which checks failed, with the photos, and
    that they may accept a partial refund or escalate. A failure needs at least one photo: the buyer
    is entitled to see what we saw."""
    actor.require(perm.CASE_WAREHOUSE)
    if grade not in Grade.values:
        raise ValidationFailed("unknown grade", field="grade", code="invalid_grade", details={"allowed": Grade.values})
    if len(photos) > MAX_PHOTOS:
        raise ValidationFailed("too many photos", field="photos", code="too_many_photos",
                               details={"max": MAX_PHOTOS})
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        if case.status != Status.INSPECTING:
            raise Conflict("action_not_allowed", f"the case is {case.status}, not being inspected",
                           details={"status": case.status})
        required = checks_for(case.store_id, _categories(case))
        unknown = sorted(set(checklist) - set(Check.values))
        if unknown:
            raise ValidationFailed("unknown checks", field="checklist", code="invalid_checklist_item",
                                   details={"unknown": unknown, "allowed": list(Check.values)})
        missing = [c for c in required if c not in checklist]
        if missing:
            raise ValidationFailed("answer every check of this case's checklist", field="checklist",
                                   code="checklist_incomplete", details={"missing": missing})
        if any(not isinstance(value, bool) for value in checklist.values()):
            raise ValidationFailed("each check is true (passed) or false", field="checklist",
                                   code="invalid_checklist_item")
        failed = [c for c in Check.values if checklist.get(c) is False]
        result = InspectionResult.FAILED if failed else InspectionResult.PASSED
        if failed and not photos:
            raise ValidationFailed("a failed inspection needs photos", field="photos", code="photos_required")
        photo_ids = [case_services.add_attachment(actor=actor, case_id=case.pk, content=p.content,
                                                  filename=p.filename).pk for p in photos]
        inspection = Inspection.objects.create(
            store_id=case.store_id, case=case, result=result, checklist=dict(checklist), failed_checks=failed,
            grade=grade, notes=notes[:5000], photo_ids=photo_ids, inspector=actor.label, inspected_at=clock.now())
        case_services.transition_case(actor=actor, case_id=case.pk, action=Action.RECORD_INSPECTION,
                                      outcome=result, payload={"notes": notes[:2000], "grade": grade})
        if failed:
            case_services.post_message(actor=_speaker(actor), case_id=case.pk, body=_failure_message(failed, photo_ids),
                                       visibility=Visibility.PUBLIC)
    return inspection


def _speaker(actor: Actor) -> Actor:
    # Warehouse staff may not write to buyers themselves; the message is the shop's, stating facts the
    # inspector recorded, so it is sent as the system on the inspector's behalf.
    if actor.can(perm.CASE_REPLY):
        return actor
    return perm.system_actor(actor.store_id, f"warehouse inspection ({actor.label})")


def _failure_message(failed: Sequence[str], photo_ids: Sequence[int]) -> str:
    zh = "；".join(_FAILURE_TEXT[Check(c)][0] for c in failed)
    en = "; ".join(_FAILURE_TEXT[Check(c)][1] for c in failed)
    photos = ", ".join(f"#{pk}" for pk in photo_ids)
    return (f"验货未通过：{zh}。验货照片见附件 {photos}。您可以接受部分退款，或申请平台介入。\n"
            f"The inspection failed: {en}. See the photos attached ({photos}). You may accept a partial "
            f"refund, or escalate to the platform.")


@dataclass(frozen=True)
class LineDecision:
    case_line_id: int
    disposition: str


def set_dispositions(*, actor: Actor, case_id: int, decisions: Sequence[LineDecision],
                     warehouse_code: str = "") -> list[LineDisposition]:
    """What becomes of each inspected line; each decision is an inventory adjustment, announced once
    the transaction commits (the shop's stock system listens for `inventory.adjusted`)."""
    actor.require(perm.CASE_WAREHOUSE)
    if not decisions:
        raise ValidationFailed("decide at least one line", field="lines", code="lines_required")
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        inspection = Inspection.objects.filter(store_id=case.store_id, case=case).first()
        if inspection is None:
            raise Conflict("not_inspected", "inspect the goods before deciding what becomes of them")
        lines = {line.pk: line for line in CaseLine.objects.filter(store_id=case.store_id, case=case)
                 .select_related("order_line")}
        decided = set(LineDisposition.objects.filter(store_id=case.store_id, inspection=inspection)
                      .values_list("case_line_id", flat=True))
        now, rows = clock.now(), []
        for index, decision in enumerate(decisions):
            field = f"lines[{index}]"
            line = lines.get(decision.case_line_id)
            if line is None:
                raise ValidationFailed("this line is not part of the case", field=f"{field}.case_line_id",
                                       code="line_not_in_case")
            if decision.disposition not in Disposition.values:
                raise ValidationFailed("unknown disposition", field=f"{field}.disposition",
                                       code="invalid_disposition", details={"allowed": Disposition.values})
            if line.pk in decided:
                raise Conflict("already_disposed", "this line has already been decided",
                               details={"case_line_id": line.pk})
            decided.add(line.pk)
            rows.append(LineDisposition(store_id=case.store_id, inspection=inspection, case_line=line,
                                        sku=line.order_line.sku, quantity=line.quantity,
                                        disposition=decision.disposition, warehouse_code=warehouse_code[:20],
                                        decided_by=actor.label, decided_at=now))
        LineDisposition.objects.bulk_create(rows)
        restock_to = _restock_warehouse(case, warehouse_code) if any(
            r.disposition == Disposition.RESTOCK for r in rows) else None
        for row in rows:
            if row.disposition == Disposition.RESTOCK and restock_to is not None:
                row.warehouse_code = restock_to.code
                LineDisposition.objects.filter(pk=row.pk).update(warehouse_code=restock_to.code)
                stock = _stock_for_update(case.store_id, restock_to, row.sku, create=True)
                _move(stock, MovementKind.RESTOCK, on_hand=row.quantity, case=case, actor=actor,
                      reason=f"{case.number} restock")
        publish_on_commit("inventory.adjusted", {
            "store_id": case.store_id, "case_id": case.pk, "number": case.number,
            "adjustments": [{"sku": r.sku, "quantity": r.quantity, "disposition": r.disposition,
                             "sellable_delta": _sellable_delta(r), "warehouse": r.warehouse_code} for r in rows]})
    return rows


def _restock_warehouse(case: Case, code: str) -> Warehouse:
    """Where restocked goods go: the warehouse named, else the one the parcel was sent to, else the
    store's default return address."""
    if code:
        named = Warehouse.objects.filter(store_id=case.store_id, code=code).first()
        if named is None:
            raise ValidationFailed(f"unknown warehouse {code!r}", field="warehouse_code", code="unknown_warehouse")
        return named
    shipment = (CaseShipment.objects.filter(store_id=case.store_id, case=case, direction=Direction.INBOUND,
                                            warehouse__isnull=False).select_related("warehouse").order_by("-id").first())
    if shipment is not None and shipment.warehouse is not None:
        return shipment.warehouse
    default = Warehouse.objects.filter(store_id=case.store_id, is_default=True).first()
    if default is None:
        raise Conflict("no_warehouse", "the store has no warehouse to restock into")
    return default


def _sellable_delta(row: LineDisposition) -> int:
    # Only restocked goods go back on sale; the rest move to other stock (refurbishment, vendor, scrap).
    return row.quantity if row.disposition == Disposition.RESTOCK else 0


CSV_HEADER = ["decided_at", "case_number", "sku", "quantity", "disposition", "sellable_delta", "warehouse",
              "grade", "decided_by"]


def inventory_adjustments_csv(*, actor: Actor, since: dt.datetime, until: dt.datetime) -> str:
    actor.require(perm.CASE_WAREHOUSE)
    if since >= until:
        raise ValidationFailed("since must be before until", field="since", code="invalid_range")
    rows = (LineDisposition.objects.filter(store_id=actor.store_id, decided_at__gte=since, decided_at__lt=until)
            .select_related("inspection__case").order_by("decided_at", "id"))
    lines: list[tuple[dt.datetime, int, list[object]]] = [
        (row.decided_at, 0, [row.decided_at.isoformat(), row.inspection.case.number, row.sku, row.quantity,
                             row.disposition, _sellable_delta(row), row.warehouse_code, row.inspection.grade,
                             row.decided_by]) for row in rows]
    # Counts, corrections and shipped replacements change what is on the shelf too; restocks are already
    # there as their disposition, and reservations move no goods.
    movements = (StockMovement.objects.filter(store_id=actor.store_id, at__gte=since, at__lt=until,
                                              kind__in=_SHELF_MOVES).select_related("stock__warehouse", "case"))
    lines.extend((m.at, 1, [m.at.isoformat(), m.case.number if m.case else "", m.stock.sku, abs(m.on_hand_delta),
                            m.kind, m.on_hand_delta, m.stock.warehouse.code, "", m.actor]) for m in movements)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for _, _, line in sorted(lines, key=lambda t: (t[0], t[1])):
        writer.writerow(line)
    return out.getvalue()


# --- stock ------------------------------------------------------------------------------------------

_SHELF_MOVES = (MovementKind.COUNT, MovementKind.ADJUST, MovementKind.SHIP)


def _warehouse(actor: Actor, warehouse_id: int) -> Warehouse:
    found = Warehouse.objects.filter(store_id=actor.store_id, pk=warehouse_id).first()
    if found is None:
        raise NotFound("warehouse")
    return found


def _clean_sku(sku: str) -> str:
    sku = (sku or "").strip()
    if not sku or len(sku) > 64:
        raise ValidationFailed("give a SKU of at most 64 characters", field="sku", code="invalid_sku")
    return sku


def _stock_for_update(store_id: int, warehouse: Warehouse, sku: str, *, create: bool) -> StockLevel:
    if create:
        try:
            with transaction.atomic():
                StockLevel.objects.get_or_create(store_id=store_id, warehouse=warehouse, sku=sku,
                                                 defaults={"updated_at": clock.now()})
        except IntegrityError:
            pass  # created by a concurrent request; the lock below waits for it
    return StockLevel.objects.select_for_update().get(store_id=store_id, warehouse=warehouse, sku=sku)


def _move(stock: StockLevel, kind: str, *, actor: Actor, on_hand: int = 0, reserved: int = 0,
          case: Case | None = None, reason: str = "") -> StockMovement:
    """Applies one change to a locked stock row and writes its history; the row's CHECKs refuse a level
    below zero or more reserved than on hand."""
    stock.on_hand += on_hand
    stock.reserved += reserved
    stock.updated_at = clock.now()
    try:
        with transaction.atomic():
            stock.save(update_fields=["on_hand", "reserved", "updated_at"])
    except IntegrityError as exc:
        raise Conflict("insufficient_stock", "the stock level cannot go below zero or below what is reserved",
                       details={"sku": stock.sku, "warehouse_id": stock.warehouse_id}) from exc
    return StockMovement.objects.create(
        store_id=stock.store_id, stock=stock, kind=kind, on_hand_delta=on_hand, reserved_delta=reserved,
        on_hand_after=stock.on_hand, reserved_after=stock.reserved, case=case, reason=reason[:200],
        actor=actor.label[:120], at=stock.updated_at)


def _announce(stock: StockLevel, movement: StockMovement) -> None:
    # The same event as a disposition, so the shop's stock system hears of every change on the shelf.
    publish_on_commit("inventory.adjusted", {
        "store_id": stock.store_id, "case_id": movement.case_id, "number": movement.case.number if movement.case else "",
        "adjustments": [{"sku": stock.sku, "quantity": abs(movement.on_hand_delta), "disposition": movement.kind,
                         "sellable_delta": movement.on_hand_delta, "warehouse": stock.warehouse.code}]})


def set_stock(*, actor: Actor, warehouse_id: int, sku: str, on_hand: int, reason: str = "") -> StockLevel:
    """A stock count: the warehouse now holds `on_hand` units. Refused below what is reserved."""
    actor.require(perm.CASE_WAREHOUSE)
    sku = _clean_sku(sku)
    if on_hand < 0:
        raise ValidationFailed("a count cannot be negative", field="on_hand", code="invalid_quantity")
    with transaction.atomic():
        warehouse = _warehouse(actor, warehouse_id)
        stock = _stock_for_update(actor.store_id, warehouse, sku, create=True)
        if on_hand < stock.reserved:
            raise Conflict("below_reserved", "the count is below the units reserved for replacements",
                           details={"reserved": stock.reserved})
        delta = on_hand - stock.on_hand
        movement = _move(stock, MovementKind.COUNT, actor=actor, on_hand=delta, reason=reason or "count")
        if delta:
            _announce(stock, movement)
    return stock


def adjust_stock(*, actor: Actor, warehouse_id: int, sku: str, delta: int, reason: str) -> StockLevel:
    """A correction by `delta` units (goods found, damaged, written off), with the reason."""
    actor.require(perm.CASE_WAREHOUSE)
    sku = _clean_sku(sku)
    if delta == 0:
        raise ValidationFailed("an adjustment changes the level", field="delta", code="invalid_quantity")
    if not reason.strip():
        raise ValidationFailed("say why the stock is adjusted", field="reason", code="field_required")
    with transaction.atomic():
        warehouse = _warehouse(actor, warehouse_id)
        stock = _stock_for_update(actor.store_id, warehouse, sku, create=True)
        _announce(stock, _move(stock, MovementKind.ADJUST, actor=actor, on_hand=delta, reason=reason.strip()))
    return stock


def reserve_replacement(*, actor: Actor, case: Case, exchange: Exchange) -> StockReservation:
    """Holds the replacement's units for an exchange, in the caller's transaction. The store's default
    warehouse is preferred, then the others in a fixed order; every row of the SKU is locked in id order,
    so two reservations never deadlock, and the second to come sees what the first took."""
    rows = list(StockLevel.objects.select_for_update().filter(store_id=case.store_id, sku=exchange.replacement_sku)
                .select_related("warehouse").order_by("id"))
    rows.sort(key=lambda r: (not r.warehouse.is_default, r.pk))
    stock = next((r for r in rows if r.available >= exchange.quantity), None)
    if stock is None:
        raise Conflict("out_of_stock", "the replacement is out of stock",
                       details={"sku": exchange.replacement_sku, "requested": exchange.quantity,
                                "available": sum(max(r.available, 0) for r in rows)})
    _move(stock, MovementKind.RESERVE, actor=actor, reserved=exchange.quantity, case=case,
          reason=f"exchange {exchange.pk}")
    return StockReservation.objects.create(store_id=case.store_id, stock=stock, exchange=exchange, case=case,
                                           quantity=exchange.quantity, created_at=clock.now())


def _close_reservation(actor: Actor, exchange_id: int, status: str) -> StockReservation | None:
    reservation = (StockReservation.objects.select_for_update().filter(exchange_id=exchange_id,
                                                                       status=ReservationStatus.RESERVED).first())
    if reservation is None:
        return None
    stock = StockLevel.objects.select_for_update().select_related("warehouse").get(pk=reservation.stock_id)
    case = Case.objects.get(pk=reservation.case_id)
    if status == ReservationStatus.CONSUMED:
        _announce(stock, _move(stock, MovementKind.SHIP, actor=actor, on_hand=-reservation.quantity,
                               reserved=-reservation.quantity, case=case, reason=f"exchange {exchange_id}"))
    else:
        _move(stock, MovementKind.RELEASE, actor=actor, reserved=-reservation.quantity, case=case,
              reason=f"exchange {exchange_id}")
    reservation.status, reservation.closed_at = status, clock.now()
    reservation.save(update_fields=["status", "closed_at"])
    return reservation


def consume_reservation(*, actor: Actor, exchange_id: int) -> StockReservation | None:
    """The replacement left the warehouse: the held units leave the shelf."""
    return _close_reservation(actor, exchange_id, ReservationStatus.CONSUMED)


def release_reservation(*, actor: Actor, exchange_id: int) -> StockReservation | None:
    """The exchange was given up (another replacement chosen, the case cancelled): the units are free."""
    return _close_reservation(actor, exchange_id, ReservationStatus.RELEASED)
