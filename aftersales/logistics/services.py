"""Every write of return logistics: methods, pickups, addresses, carrier pushes and exchanges.

The case itself is only ever moved through `cases.services`; this module keeps the parcels, their
tracking events and the replacements, and decides when a carrier's news should move the case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction

from aftersales.cases import services as case_services
from aftersales.cases.models import Case, Visibility
from aftersales.cases.states import Action, Kind, Status
from aftersales.catalog.models import Product
from aftersales.core import clock
from aftersales.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from aftersales.core.events import publish_on_commit
from aftersales.orders.models import OrderLine
from aftersales.refunds import services as refund_services
from aftersales.stores import permissions as perm
from aftersales.stores.models import Store
from aftersales.stores.permissions import Actor, system_actor
from aftersales.warehouse import services as warehouse_services

from . import carriers
from .models import (
    CaseShipment,
    Direction,
    DropOffPoint,
    Exchange,
    ExchangeStatus,
    LogisticsSettings,
    Purpose,
    ReturnMethod,
    RoutingRule,
    Settlement,
    ShipmentStatus,
    TrackingEvent,
    Warehouse,
)

logger = logging.getLogger(__name__)

# The statuses in which the goods (or the device) are still on their way to the shop.
_AWAITING_GOODS = frozenset({Status.AWAITING_RETURN, Status.RETURN_IN_TRANSIT, Status.AWAITING_DEVICE,
                             Status.DEVICE_IN_TRANSIT})
_EXCEPTIONS = frozenset({ShipmentStatus.LOST, ShipmentStatus.RETURNED_TO_SENDER, ShipmentStatus.EXCEPTION})


# --- store configuration ----------------------------------------------------------------------------

def settings_for(store_id: int) -> LogisticsSettings:
    row, _ = LogisticsSettings.objects.get_or_create(
        store_id=store_id, defaults={"webhook_secret": secrets.token_urlsafe(32),
                                     "return_methods": list(ReturnMethod.values)})
    return row


def configure(*, actor: Actor, receive_on_delivery: bool | None = None, return_methods: Sequence[str] | None = None,
              rotate_secret: bool = False) -> tuple[LogisticsSettings, str | None]:
    """Returns the settings and, when rotated, the new webhook secret (shown once)."""
    actor.require(perm.STORE_ADMIN)
    row = settings_for(actor.store_id)
    if return_methods is not None:
        unknown = sorted(set(return_methods) - set(ReturnMethod.values))
        if unknown or not return_methods:
            raise ValidationFailed("unknown or no return methods", field="return_methods",
                                   code="invalid_return_method", details={"allowed": list(ReturnMethod.values)})
        row.return_methods = list(dict.fromkeys(return_methods))
    if receive_on_delivery is not None:
        row.receive_on_delivery = receive_on_delivery
    secret = None
    if rotate_secret:
        secret = row.webhook_secret = secrets.token_urlsafe(32)
    row.save()
    return row, secret


def create_warehouse(*, actor: Actor, code: str, name: str, contact_name: str, phone: str, province: str, city: str,
                     address: str, postcode: str = "", is_default: bool = False) -> Warehouse:
    actor.require(perm.STORE_ADMIN)
    with transaction.atomic():
        if Warehouse.objects.filter(store_id=actor.store_id, code=code).exists():
            raise Conflict("warehouse_exists", f"a warehouse {code!r} already exists")
        if is_default:
            Warehouse.objects.filter(store_id=actor.store_id, is_default=True).update(is_default=False)
        return Warehouse.objects.create(store_id=actor.store_id, code=code, name=name, contact_name=contact_name,
                                        phone=phone, province=province, city=city, address=address,
                                        postcode=postcode, is_default=is_default)


def add_routing_rule(*, actor: Actor, warehouse_id: int, category: str = "", province: str = "",
                     position: int = 0) -> RoutingRule:
    actor.require(perm.STORE_ADMIN)
    warehouse = Warehouse.objects.filter(store_id=actor.store_id, pk=warehouse_id).first()
    if warehouse is None:
        raise NotFound("warehouse")
    return RoutingRule.objects.create(store_id=actor.store_id, warehouse=warehouse, category=category,
                                      province=province, position=position)


def add_drop_off_point(*, actor: Actor, name: str, address: str, carrier: str = "",
                       opening_hours: str = "") -> DropOffPoint:
    actor.require(perm.STORE_ADMIN)
    return DropOffPoint.objects.create(store_id=actor.store_id, name=name, address=address, carrier=carrier,
                                       opening_hours=opening_hours)


def choose_warehouse(*, store_id: int, categories: Iterable[str], province: str = "") -> Warehouse:
    """The first rule whose conditions all hold (a category rule matches if any line is of it), else the
    store's default return address."""
    wanted = set(categories)
    for rule in RoutingRule.objects.filter(store_id=store_id).select_related("warehouse"):
        if rule.category and rule.category not in wanted:
            continue
        if rule.province and rule.province != province:
            continue
        return rule.warehouse
    default = Warehouse.objects.filter(store_id=store_id, is_default=True).first()
    if default is None:
        raise Conflict("no_return_address", "the store has no return address yet")
    return default


def case_categories(case: Case) -> list[str]:
    return list(OrderLine.objects.filter(store_id=case.store_id, case_lines__case=case)
                .values_list("category", flat=True).distinct())


def return_address_for(*, actor: Actor, case_id: int, province: str = "") -> Warehouse:
    actor.require(perm.CASE_READ)
    case = _case(actor, case_id)
    return choose_warehouse(store_id=case.store_id, categories=case_categories(case), province=province)


# --- the way back -----------------------------------------------------------------------------------

def _case(actor: Actor, case_id: int) -> Case:
    case = Case.objects.filter(store_id=actor.store_id, pk=case_id).first()
    if case is None or (actor.is_buyer and case.buyer_id != actor.buyer_id):
        raise NotFound("case")
    return case


def _check_method(store_id: int, method: str) -> None:
    if method not in settings_for(store_id).return_methods:
        raise ValidationFailed("this store does not offer that return method", field="method",
                               code="return_method_not_offered")


def _inbound_open(case: Case) -> CaseShipment | None:
    return (CaseShipment.objects.filter(store_id=case.store_id, case=case, direction=Direction.INBOUND)
            .exclude(status__in=[ShipmentStatus.LOST, ShipmentStatus.RETURNED_TO_SENDER]).first())


def _check_tracking_free(store_id: int, carrier: str, number: str, *, exclude_id: int | None = None) -> None:
    taken = CaseShipment.objects.filter(store_id=store_id, carrier=carrier, tracking_number=number)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise Conflict("tracking_number_in_use", "this tracking number is already used by another parcel",
                       details={"field": "tracking_number"})


def ship_return(*, actor: Actor, case_id: int, carrier: str, tracking_number: str,
                method: str = ReturnMethod.SELF_SHIP, drop_off_point_id: int | None = None,
                province: str = "") -> CaseShipment:
    """The buyer has sent the goods (or the device): by themselves or at a drop-off point."""
    if method not in (ReturnMethod.SELF_SHIP, ReturnMethod.DROP_OFF):
        raise ValidationFailed("use the pickup booking for a pickup", field="method", code="invalid_return_method")
    carrier, number = carriers.validate_tracking_number(carrier, tracking_number)
    now = clock.now()
    with transaction.atomic():
        case = _case(actor, case_id)
        _check_method(case.store_id, method)
        point = None
        if method == ReturnMethod.DROP_OFF:
            point = DropOffPoint.objects.filter(store_id=case.store_id, pk=drop_off_point_id or 0, active=True).first()
            if point is None:
                raise ValidationFailed("choose a drop-off point", field="drop_off_point_id", code="invalid_drop_off_point")
        if _inbound_open(case) is not None:
            raise Conflict("already_shipped", "a return parcel is already on its way for this case")
        _check_tracking_free(case.store_id, carrier, number)
        warehouse = choose_warehouse(store_id=case.store_id, categories=case_categories(case), province=province)
        case_services.transition_case(actor=actor, case_id=case.pk, action=Action.SHIP_RETURN,
                                      payload={"carrier": carrier, "tracking_number": number})
        return CaseShipment.objects.create(
            store_id=case.store_id, case=case, direction=Direction.INBOUND, purpose=Purpose.RETURN, method=method,
            status=ShipmentStatus.IN_TRANSIT, carrier=carrier, tracking_number=number, warehouse=warehouse,
            drop_off_point=point, created_at=now, updated_at=now)


def book_pickup(*, actor: Actor, case_id: int, carrier: str, address: str, contact_name: str, contact_phone: str,
                window_start: dt.datetime, window_end: dt.datetime, province: str = "") -> CaseShipment:
    """上门取件: the courier collects from the buyer in a time window. The case moves on when the courier
    has the parcel (its waybill number entered or pushed), not at booking: a booked pickup can fail."""
    code = (carrier or "").strip().upper()
    if code not in carriers.CARRIERS:
        raise ValidationFailed(f"unknown carrier {carrier!r}", field="carrier", code="unknown_carrier",
                               details={"allowed": sorted(carriers.CARRIERS)})
    if not address.strip() or not contact_phone.strip():
        raise ValidationFailed("give the pickup address and a phone", field="address", code="field_required")
    now = clock.now()
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValidationFailed("give the time window with a time zone", field="window_start", code="invalid_window")
    if not (now < window_start < window_end) or window_end - window_start > dt.timedelta(hours=12):
        raise ValidationFailed("the window must be in the future, start before it ends and last at most 12 hours",
                               field="window_start", code="invalid_window")
    with transaction.atomic():
        case = _case(actor, case_id)
        _check_method(case.store_id, ReturnMethod.PICKUP)
        if case.status not in (Status.AWAITING_RETURN, Status.AWAITING_DEVICE):
            raise Conflict("action_not_allowed", f"a pickup cannot be booked while the case is {case.status}",
                           details={"status": case.status})
        if _inbound_open(case) is not None:
            raise Conflict("already_shipped", "a return parcel is already booked for this case")
        warehouse = choose_warehouse(store_id=case.store_id, categories=case_categories(case), province=province)
        shipment = CaseShipment.objects.create(
            store_id=case.store_id, case=case, direction=Direction.INBOUND, purpose=Purpose.RETURN,
            method=ReturnMethod.PICKUP, status=ShipmentStatus.PICKUP_BOOKED, carrier=code, warehouse=warehouse,
            pickup_address=address.strip()[:255], pickup_contact=contact_name[:60], pickup_phone=contact_phone[:32],
            pickup_window_start=window_start, pickup_window_end=window_end, created_at=now, updated_at=now)
        booking = carriers.adapter_for(code).book_pickup(
            idempotency_key=str(shipment.pk), address=shipment.pickup_address, contact_name=contact_name,
            contact_phone=contact_phone, window=(window_start.isoformat(), window_end.isoformat()))
        shipment.booking_reference = booking.booking_reference
        shipment.save(update_fields=["booking_reference"])
        if booking.tracking_number:
            _collected(actor, case, shipment, booking.tracking_number)
    return shipment


def record_pickup_collected(*, actor: Actor, shipment_id: int, tracking_number: str) -> CaseShipment:
    """The courier has collected the parcel: its waybill number is now known."""
    actor.require(perm.CASE_WAREHOUSE if not actor.is_buyer else perm.CASE_BUYER)
    with transaction.atomic():
        shipment = _shipment_for_update(actor, shipment_id)
        if shipment.status != ShipmentStatus.PICKUP_BOOKED:
            raise Conflict("not_booked", "this parcel is not waiting for its pickup")
        _collected(actor, shipment.case, shipment, tracking_number)
    return shipment


def _collected(actor: Actor, case: Case, shipment: CaseShipment, tracking_number: str) -> None:
    carrier, number = carriers.validate_tracking_number(shipment.carrier, tracking_number)
    _check_tracking_free(case.store_id, carrier, number, exclude_id=shipment.pk)
    shipment.tracking_number, shipment.status, shipment.updated_at = number, ShipmentStatus.IN_TRANSIT, clock.now()
    shipment.save(update_fields=["tracking_number", "status", "updated_at"])
    # The buyer's own move, made for them: a system actor, so warehouse staff entering it may do so.
    case_services.transition_case(actor=system_actor(case.store_id, "pickup"), case_id=case.pk,
                                  action=Action.SHIP_RETURN, payload={"carrier": carrier, "tracking_number": number},
                                  rule="logistics.pickup_collected")


def _shipment_for_update(actor: Actor, shipment_id: int) -> CaseShipment:
    shipment = (CaseShipment.objects.select_for_update().select_related("case")
                .filter(store_id=actor.store_id, pk=shipment_id).first())
    if shipment is None or (actor.is_buyer and shipment.case.buyer_id != actor.buyer_id):
        raise NotFound("shipment")
    return shipment


def create_outbound(*, case: Case, purpose: str, carrier: str, tracking_number: str) -> CaseShipment:
    """A parcel from the shop to the buyer; the caller moves the case (reship or ship_back)."""
    carrier, number = carriers.validate_tracking_number(carrier, tracking_number)
    _check_tracking_free(case.store_id, carrier, number)
    now = clock.now()
    return CaseShipment.objects.create(store_id=case.store_id, case=case, direction=Direction.OUTBOUND,
                                       purpose=purpose, status=ShipmentStatus.IN_TRANSIT, carrier=carrier,
                                       tracking_number=number, created_at=now, updated_at=now)


# --- exchanges --------------------------------------------------------------------------------------

def choose_replacement(*, actor: Actor, case_id: int, order_line_id: int, sku: str) -> Exchange:
    """Reserves a replacement for a line: the same SKU or another one from the catalogue. A price
    difference is recorded with who owes it; it is settled by a charge or a refund, not here."""
    actor.require(perm.CASE_RESHIP)
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        if case.kind != Kind.EXCHANGE or case.status in Status.TERMINAL or case.status in (
                Status.RESHIPPED, Status.REFUNDING, Status.REFUNDED):
            raise Conflict("not_an_open_exchange", "replacements are chosen on an open exchange case",
                           details={"status": case.status, "kind": case.kind})
        line = case.lines.filter(store_id=case.store_id, order_line_id=order_line_id).select_related("order_line").first()
        if line is None:
            raise ValidationFailed("this line is not part of the case", field="order_line_id",
                                   code="line_not_in_case")
        original = line.order_line
        product = Product.objects.filter(store_id=case.store_id, sku=sku).first()
        if product is None and sku != original.sku:
            raise ValidationFailed(f"unknown SKU {sku!r}", field="sku", code="unknown_sku")
        # What the buyer actually paid per unit, after the order's discounts.
        paid = ((original.unit_price * original.quantity - original.discount_allocated) / original.quantity
                ).quantize(Decimal("0.01"))
        new_price = product.price if product is not None else paid
        difference = ((new_price - paid) * line.quantity).quantize(Decimal("0.01"))
        settlement = Settlement.NONE if difference == 0 else Settlement.CHARGE if difference > 0 else Settlement.REFUND
        for previous in Exchange.objects.filter(store_id=case.store_id, case=case, order_line=original,
                                                status=ExchangeStatus.RESERVED):
            _release(actor, previous)
        exchange = Exchange.objects.create(
            store_id=case.store_id, case=case, order_line=original, quantity=line.quantity, replacement_sku=sku,
            replacement_name=product.name if product is not None else original.name, original_unit_price=paid,
            replacement_unit_price=new_price, price_difference=difference, settlement=settlement,
            status=ExchangeStatus.RESERVED, created_at=clock.now())
        # Out of stock raises here and nothing above is kept: the previous choice stays reserved.
        warehouse_services.reserve_replacement(actor=actor, case=case, exchange=exchange)
        if settlement == Settlement.CHARGE and case.status == Status.RESHIPPING:
            refund_services.request_exchange_charge(actor=actor, case=case, exchange_id=exchange.pk)
        publish_on_commit("exchange.reserved", {"store_id": case.store_id, "case_id": case.pk, "sku": sku,
                                                "quantity": line.quantity, "price_difference": str(difference)})
    return exchange


def _release(actor: Actor, exchange: Exchange) -> None:
    # A difference the buyer has paid (or is paying) keeps the choice: refused with difference_already_charged.
    refund_services.cancel_exchange_charge(actor=actor, case=exchange.case, exchange_id=exchange.pk)
    Exchange.objects.filter(pk=exchange.pk).update(status=ExchangeStatus.RELEASED)
    warehouse_services.release_reservation(actor=actor, exchange_id=exchange.pk)


# An exchange case that ends here will not ship its replacement: cancelled, expired, closed without
# shipping (rejected, arbitration) or turned into a refund by an accepted counter-offer.
_GIVES_UP_EXCHANGE = frozenset({*Status.TERMINAL, Status.REFUNDING, Status.REFUNDED})


def on_case_transitioned_in_transaction(event: str, payload: dict[str, Any]) -> None:
    """In the same transaction as the case's move: an exchange whose goods passed inspection asks the
    buyer for a dearer replacement's difference; an abandoned exchange frees what it held."""
    status = payload.get("status")
    if status != Status.RESHIPPING and status not in _GIVES_UP_EXCHANGE:
        return
    held = list(Exchange.objects.filter(store_id=payload["store_id"], case_id=payload["case_id"],
                                        status=ExchangeStatus.RESERVED).select_related("case"))
    if not held:
        return
    if status == Status.RESHIPPING:
        system = system_actor(payload["store_id"], "exchange")
        for exchange in held:
            if exchange.settlement == Settlement.CHARGE:
                refund_services.request_exchange_charge(actor=system, case=exchange.case, exchange_id=exchange.pk)
        return
    system = system_actor(payload["store_id"], "exchange released")
    for exchange in held:
        # The case's move stands whatever the difference's state: one not taken yet is cancelled, one
        # taken is paid back to the buyer, and one still in flight is paid back as soon as it confirms.
        refund_services.abandon_exchange_charges(actor=system, case=exchange.case, exchange_id=exchange.pk)
        Exchange.objects.filter(pk=exchange.pk).update(status=ExchangeStatus.RELEASED)
        warehouse_services.release_reservation(actor=system, exchange_id=exchange.pk)


def on_cases_transitioned_in_transaction(event: str, payloads: list[dict[str, Any]]) -> None:
    """The bulk form, for `core.events.publish_many` (a sweep moving thousands of cases): one read finds
    the few cases holding an exchange, and only those go through the listener above."""
    relevant = [p for p in payloads if p.get("status") == Status.RESHIPPING or p.get("status") in _GIVES_UP_EXCHANGE]
    if not relevant:
        return
    holding = set(Exchange.objects.filter(case_id__in={p["case_id"] for p in relevant}, status=ExchangeStatus.RESERVED)
                  .values_list("store_id", "case_id"))
    for payload in relevant:
        if (payload["store_id"], payload["case_id"]) in holding:
            on_case_transitioned_in_transaction(event, payload)


on_case_transitioned_in_transaction.many = on_cases_transitioned_in_transaction  # type: ignore[attr-defined]


def reship_exchange(*, actor: Actor, case_id: int, carrier: str, tracking_number: str) -> CaseShipment:
    """Ships the reserved replacements in one parcel and moves the case to reshipped."""
    actor.require(perm.CASE_RESHIP)
    with transaction.atomic():
        case = case_services.get_case_for_update(actor=actor, case_id=case_id)
        reserved = list(Exchange.objects.filter(store_id=case.store_id, case=case, status=ExchangeStatus.RESERVED))
        if not reserved:
            raise Conflict("no_replacement_reserved", "choose the replacement before shipping it")
        unpaid = [e.pk for e in reserved if e.settlement == Settlement.CHARGE
                  and not refund_services.charge_paid(store_id=case.store_id, exchange_id=e.pk)]
        if unpaid:
            raise Conflict("difference_not_paid", "the buyer has not paid the replacement's difference yet",
                           details={"exchange_ids": unpaid})
        shipment = create_outbound(case=case, purpose=Purpose.EXCHANGE, carrier=carrier,
                                   tracking_number=tracking_number)
        case_services.transition_case(actor=actor, case_id=case.pk, action=Action.RESHIP,
                                      payload={"carrier": shipment.carrier,
                                               "tracking_number": shipment.tracking_number})
        Exchange.objects.filter(pk__in=[e.pk for e in reserved]).update(status=ExchangeStatus.SHIPPED,
                                                                        shipment=shipment)
        for exchange in reserved:
            warehouse_services.consume_reservation(actor=actor, exchange_id=exchange.pk)
            if exchange.settlement == Settlement.REFUND:
                # The cheaper replacement is on its way: the difference goes back through the ledger.
                refund_services.refund_exchange_difference(
                    actor=system_actor(case.store_id, "exchange difference"), case=case, exchange_id=exchange.pk)
        publish_on_commit("exchange.shipped", {"store_id": case.store_id, "case_id": case.pk,
                                               "skus": [e.replacement_sku for e in reserved]})
    return shipment


# --- carrier pushes ---------------------------------------------------------------------------------

class PushRejected(DomainError):
    """A push we refuse; always logged, because a carrier that keeps failing is a silent outage."""

    def __init__(self, code: str, message: str, status: int = 400, **details: Any):
        super().__init__(code, message, details=details, status=status)


@dataclass(frozen=True)
class ParsedEvent:
    at: dt.datetime
    status: str
    description: str
    location: str


@dataclass(frozen=True)
class ParsedPush:
    carrier: str
    tracking_number: str
    events: tuple[ParsedEvent, ...]


# The aggregator's overall state codes (its `lastResult.state`): 0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签,
# 5 派件, 6 退回, 7 转投, 8 清关, 14 拒签. The per-event `status` is the same in words.
_AGGREGATOR_STATES = {
    "0": ShipmentStatus.IN_TRANSIT, "1": ShipmentStatus.IN_TRANSIT, "2": ShipmentStatus.EXCEPTION,
    "3": ShipmentStatus.DELIVERED, "4": ShipmentStatus.RETURNED_TO_SENDER, "5": ShipmentStatus.IN_TRANSIT,
    "6": ShipmentStatus.RETURNED_TO_SENDER, "7": ShipmentStatus.IN_TRANSIT, "8": ShipmentStatus.IN_TRANSIT,
    "14": ShipmentStatus.RETURNED_TO_SENDER,
}
_AGGREGATOR_WORDS = {
    "在途": ShipmentStatus.IN_TRANSIT, "揽收": ShipmentStatus.IN_TRANSIT, "疑难": ShipmentStatus.EXCEPTION,
    "签收": ShipmentStatus.DELIVERED, "退签": ShipmentStatus.RETURNED_TO_SENDER, "派件": ShipmentStatus.IN_TRANSIT,
    "退回": ShipmentStatus.RETURNED_TO_SENDER, "转投": ShipmentStatus.IN_TRANSIT, "拒签": ShipmentStatus.RETURNED_TO_SENDER,
}
_GENERIC_STATUSES = frozenset(ShipmentStatus.values) - {ShipmentStatus.PICKUP_BOOKED, ShipmentStatus.AWAITING_DROP_OFF}


def aggregator_signature(param: str, secret: str) -> str:
    # The aggregator format signs with upper-case MD5(param + key); it is that format's scheme, not our
    # choice, and the secret is per store and long, so a forgery still needs the secret.
    return hashlib.md5((param + secret).encode()).hexdigest().upper()  # noqa: S324


def generic_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _local_time(raw: Any, tz: ZoneInfo, field: str) -> dt.datetime:
    if not isinstance(raw, str):
        raise PushRejected("malformed_push", f"{field} is missing", field=field)
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise PushRejected("malformed_push", f"{field} is not a time", field=field) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def parse_aggregator(body: bytes, content_type: str, secret: str, tz: ZoneInfo,
                     form: Mapping[str, str] | None = None) -> ParsedPush:
    """`param` (a JSON string) and `sign`, form-encoded or as a JSON object. `param.lastResult` has `com`
    (company code), `nu` (number), `state` and `data`: events newest first, each with `time`, `context`,
    and optionally `status` and `areaName`."""
    try:
        if content_type.startswith("application/json"):
            outer = json.loads(body)
            if not isinstance(outer, dict):
                raise ValueError("not an object")
            param_raw, sign = outer.get("param"), outer.get("sign")
            if isinstance(param_raw, dict):
                raise PushRejected("malformed_push", "param must be the JSON text that was signed", field="param")
        elif form is not None:  # multipart, already parsed by the framework
            param_raw, sign = form.get("param"), form.get("sign")
        else:
            fields = parse_qs(body.decode(), keep_blank_values=True)
            param_raw, sign = (fields.get("param") or [""])[0] or None, (fields.get("sign") or [""])[0] or None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushRejected("malformed_push", "the body is neither a form nor JSON") from exc
    if not isinstance(param_raw, str) or not isinstance(sign, str):
        raise PushRejected("malformed_push", "param and sign are required", field="param")
    if not hmac.compare_digest(sign.upper(), aggregator_signature(param_raw, secret)):
        raise PushRejected("invalid_signature", "the signature does not match", status=401)
    try:
        param = json.loads(param_raw)
        last = param["lastResult"]
        company, number, state, data = str(last["com"]), str(last["nu"]), str(last.get("state", "0")), last["data"]
        if not isinstance(data, list):
            raise TypeError("data is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise PushRejected("malformed_push", "param.lastResult with com, nu and data[] is required",
                           field="param.lastResult") from exc
    carrier = carriers.AGGREGATOR_COMPANY_CODES.get(company.lower(), company.upper())
    events = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("context"), str):
            raise PushRejected("malformed_push", "each event needs time and context", field=f"data[{index}]")
        words = str(item.get("status") or "")
        status = _AGGREGATOR_WORDS.get(words, ShipmentStatus.IN_TRANSIT)
        if index == 0:  # the newest event carries the overall state
            status = _AGGREGATOR_STATES.get(state, status)
        events.append(ParsedEvent(at=_local_time(item.get("ftime") or item.get("time"), tz, f"data[{index}].time"),
                                  status=status, description=item["context"][:500],
                                  location=str(item.get("areaName") or "")[:120]))
    return ParsedPush(carrier=carrier, tracking_number=carriers.normalise_tracking_number(number),
                      events=tuple(events))


def parse_generic(body: bytes, signature: str, secret: str, tz: ZoneInfo) -> ParsedPush:
    """`{"carrier", "tracking_number", "events": [{"at", "status", "description", "location"}]}`, signed
    with `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with the store's secret>`."""
    if not hmac.compare_digest(signature or "", generic_signature(body, secret)):
        raise PushRejected("invalid_signature", "the signature does not match", status=401)
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise PushRejected("malformed_push", "the body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise PushRejected("malformed_push", "carrier, tracking_number and events[] are required", field="events")
    events = []
    for index, item in enumerate(payload["events"]):
        if not isinstance(item, dict) or item.get("status") not in _GENERIC_STATUSES:
            raise PushRejected("malformed_push", "each event needs a known status", field=f"events[{index}].status",
                               allowed=sorted(_GENERIC_STATUSES))
        events.append(ParsedEvent(at=_local_time(item.get("at"), tz, f"events[{index}].at"), status=item["status"],
                                  description=str(item.get("description") or "")[:500],
                                  location=str(item.get("location") or "")[:120]))
    return ParsedPush(carrier=str(payload.get("carrier") or "").upper(),
                      tracking_number=carriers.normalise_tracking_number(str(payload.get("tracking_number") or "")),
                      events=tuple(events))


def receive_push(*, store_slug: str, fmt: str, body: bytes, content_type: str = "", signature: str = "",
                 form: Mapping[str, str] | None = None) -> int:
    """Verifies, parses and applies one carrier push. Returns how many events were new."""
    store = Store.objects.filter(slug=store_slug).first()
    try:
        if store is None:
            raise PushRejected("not_found", "store not found", status=404)
        secret = settings_for(store.pk).webhook_secret
        tz = ZoneInfo(store.timezone)
        if fmt == "aggregator":
            push = parse_aggregator(body, content_type, secret, tz, form)
        elif fmt == "generic":
            push = parse_generic(body, signature, secret, tz)
        else:
            raise PushRejected("not_found", "unknown push format", status=404)
        return _apply_push(store, push, source=fmt)
    except DomainError as exc:
        logger.warning("carrier push rejected: %s", exc.code,
                       extra={"store_slug": store_slug, "format": fmt, "code": exc.code, "details": exc.details})
        raise


def _fingerprint(event: ParsedEvent) -> str:
    return hashlib.sha256(f"{event.at.isoformat()}|{event.status}|{event.description}".encode()).hexdigest()


def _apply_push(store: Store, push: ParsedPush, *, source: str) -> int:
    now = clock.now()
    with transaction.atomic():
        shipment = (CaseShipment.objects.select_for_update().select_related("case")
                    .filter(store_id=store.pk, carrier=push.carrier, tracking_number=push.tracking_number).first())
        if shipment is None:
            raise PushRejected("unknown_shipment", "no parcel with this carrier and number", status=404,
                               carrier=push.carrier, tracking_number=push.tracking_number)
        known = set(TrackingEvent.objects.filter(store_id=store.pk, shipment=shipment)
                    .values_list("fingerprint", flat=True))
        fresh = []
        for event in push.events:
            fingerprint = _fingerprint(event)
            if fingerprint in known:
                continue
            known.add(fingerprint)
            fresh.append(TrackingEvent(store_id=store.pk, shipment=shipment, at=event.at, status=event.status,
                                       description=event.description, location=event.location, source=source,
                                       fingerprint=fingerprint, received_at=now))
        try:
            with transaction.atomic():
                TrackingEvent.objects.bulk_create(fresh)
        except IntegrityError as exc:  # a concurrent copy of this push got there first (the shipment lock
            raise Conflict("push_in_progress", "the same push is being processed") from exc  # makes this rare)
        if fresh:
            latest = max(push.events, key=lambda e: e.at)
            _advance(shipment, latest, now)
    return len(fresh)


def _advance(shipment: CaseShipment, latest: ParsedEvent, now: dt.datetime) -> None:
    """What the newest news means for the parcel and the case. Terminal parcel states are kept: a late
    in-transit event after delivery does not undo the delivery."""
    if shipment.status in (ShipmentStatus.DELIVERED, ShipmentStatus.LOST, ShipmentStatus.RETURNED_TO_SENDER):
        return
    previous, shipment.status, shipment.updated_at = shipment.status, latest.status, now
    if latest.status == ShipmentStatus.DELIVERED:
        shipment.delivered_at = latest.at
    shipment.save(update_fields=["status", "updated_at", "delivered_at"])
    case = shipment.case
    system = system_actor(case.store_id, "carrier")
    if latest.status == ShipmentStatus.DELIVERED:
        _on_delivered(shipment, case, system)
    elif latest.status in _EXCEPTIONS and previous != latest.status:
        _raise_exception(shipment, case, system, latest)


def _on_delivered(shipment: CaseShipment, case: Case, system: Actor) -> None:
    if shipment.direction == Direction.INBOUND:
        if case.status in _AWAITING_GOODS and settings_for(case.store_id).receive_on_delivery:
            case_services.transition_case(actor=system, case_id=case.pk, action=Action.MARK_RECEIVED,
                                          rule="logistics.delivered",
                                          payload={"note": f"{shipment.carrier} {shipment.tracking_number}"})
        return
    if shipment.purpose == Purpose.EXCHANGE:
        Exchange.objects.filter(store_id=case.store_id, shipment=shipment).update(status=ExchangeStatus.DELIVERED)
    if case.status in (Status.RESHIPPED, Status.SHIPPING_BACK):
        case_services.transition_case(actor=system, case_id=case.pk, action=Action.CLOSE,
                                      rule="logistics.outbound_delivered")


_EXCEPTION_TEXT = {
    ShipmentStatus.LOST: ("承运商报告包裹丢失", "the carrier reports the parcel lost"),
    ShipmentStatus.RETURNED_TO_SENDER: ("包裹被退回寄件人", "the parcel is being returned to its sender"),
    ShipmentStatus.EXCEPTION: ("物流异常(疑难件)", "the carrier reports a problem with the parcel"),
}


def _raise_exception(shipment: CaseShipment, case: Case, system: Actor, latest: ParsedEvent) -> None:
    """An agent must act (claim with the carrier, contact the buyer): an internal note, which is also a
    timeline entry and counts as activity for the SLA."""
    zh, en = _EXCEPTION_TEXT[ShipmentStatus(latest.status)]
    body = (f"物流异常 / Logistics exception: {zh} / {en}. {shipment.carrier} {shipment.tracking_number}"
            f" — {latest.description}")
    case_services.post_message(actor=system, case_id=case.pk, body=body, visibility=Visibility.INTERNAL)
    publish_on_commit("logistics.exception", {"store_id": case.store_id, "case_id": case.pk,
                                              "shipment_id": shipment.pk, "status": latest.status})


def events_payload(events: Sequence[TrackingEvent]) -> list[Mapping[str, Any]]:
    return [{"at": e.at, "status": e.status, "description": e.description, "location": e.location} for e in events]


def attach_return_slip(*, actor: Actor, case_id: int, province: str = "") -> int:
    """Renders the return slip and files it on the case, so the notification to the buyer can carry it.
    Returns the attachment's id."""
    from .labels import render_return_slip
    from .selectors import return_slip

    slip = return_slip(actor, case_id, province)
    with transaction.atomic():
        attachment = case_services.add_attachment(actor=actor, case_id=case_id, content=render_return_slip(slip),
                                                  filename=slip_filename(slip.case_number))
        case = Case.objects.get(store_id=actor.store_id, pk=case_id)
        # The notifications app mails the slip to the buyer on this event: keep the payload's shape.
        publish_on_commit("case.return_label_ready", {
            "store_id": case.store_id, "case_id": case.pk, "number": case.number, "kind": case.kind,
            "status": case.status, "case_number": case.number, "attachment_id": attachment.pk,
            "buyer_id": case.buyer_id})
    return attachment.pk


def slip_filename(case_number: str) -> str:
    return f"return-slip-{case_number}.pdf"


# The statuses in which the buyer is told to send the goods (or the device) back.
_SEND_BACK = frozenset({Status.AWAITING_RETURN, Status.AWAITING_DEVICE})


def on_case_transitioned(event: str, payload: dict[str, Any]) -> None:
    """After a case is approved for a return, its slip is made and filed once, so the buyer's
    notification can carry it. Runs after the commit: rendering a PDF must not hold the case's lock,
    and a store without a return address yet only misses the slip (it can be attached later)."""
    if payload.get("status") not in _SEND_BACK:
        return
    case = Case.objects.filter(store_id=payload["store_id"], pk=payload["case_id"]).first()
    if case is None or case.attachments.filter(original_name=slip_filename(case.number)).exists():
        return
    try:
        attach_return_slip(actor=system_actor(case.store_id, "return slip"), case_id=case.pk)
    except DomainError as exc:
        logger.info("no return slip for %s: %s", case.number, exc.code, extra={"case_id": case.pk})
