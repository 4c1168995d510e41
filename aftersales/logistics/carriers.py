"""Carriers: tracking-number formats and the adapter interface real carrier integrations plug into.

Tracking-number formats. Only EMS international items follow a published standard (UPU S10: two
letters, eight digits, a mod-11 check digit, the two-letter country code). The other patterns are
OUR HEURISTIC, written from the shapes of numbers the carriers currently issue and print on their
waybills; the carriers publish no format. They are deliberately a little loose (a range of lengths)
so that a real number is never refused, while a number typed for the wrong carrier, a phone number
or an order number usually is. When a carrier changes its numbering, change the pattern here.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from aftersales.core.errors import ValidationFailed


@dataclass(frozen=True)
class CarrierFormat:
    code: str
    name_zh: str
    pattern: re.Pattern[str]
    source: str


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


CARRIERS: dict[str, CarrierFormat] = {
    fmt.code: fmt
    for fmt in (
        # Waybills since 2019 carry "SF" + 13 digits; older all-digit waybills had 12 digits.
        CarrierFormat("SF", "顺丰速运", _re(r"^(SF\d{13}|\d{12})$"), "heuristic"),
        # "JD" + a letter for the service line (JDV..., JDX...) + 11 to 13 digits.
        CarrierFormat("JD", "京东物流", _re(r"^JD[A-Z0-9]{1,2}\d{10,13}$"), "heuristic"),
        CarrierFormat("YTO", "圆通速递", _re(r"^YT\d{13,16}$"), "heuristic"),
        CarrierFormat("ZTO", "中通快递", _re(r"^[2-7]\d{11,14}$"), "heuristic"),
        CarrierFormat("STO", "申通快递", _re(r"^[2-9]\d{11,14}$"), "heuristic"),
        CarrierFormat("YUNDA", "韵达快递", _re(r"^[1-4]\d{12,14}$"), "heuristic"),
        # Domestic EMS: 13 digits starting with 1 (heuristic); international: UPU S10 (checked below).
        CarrierFormat("EMS", "中国邮政 EMS", _re(r"^(1\d{12}|[A-Z]{2}\d{9}[A-Z]{2})$"), "UPU S10 / heuristic"),
    )
}

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def s10_check_digit_ok(number: str) -> bool:
    """UPU S10: the ninth digit checks the first eight (weights 8 6 4 2 3 5 9 7, mod 11)."""
    digits = [int(c) for c in number[2:11]]
    remainder = 11 - sum(d * w for d, w in zip(digits[:8], _S10_WEIGHTS, strict=True)) % 11
    expected = {10: 0, 11: 5}.get(remainder, remainder)
    return digits[8] == expected


def normalise_tracking_number(raw: str) -> str:
    return "".join(raw.split()).upper()


def validate_tracking_number(carrier: str, tracking_number: str) -> tuple[str, str]:
    """Returns (carrier code, normalised number) or raises with a code the client can act on."""
    code = (carrier or "").strip().upper()
    fmt = CARRIERS.get(code)
    if fmt is None:
        raise ValidationFailed(f"unknown carrier {carrier!r}", field="carrier", code="unknown_carrier",
                               details={"allowed": sorted(CARRIERS)})
    number = normalise_tracking_number(tracking_number or "")
    valid = bool(fmt.pattern.match(number))
    if valid and code == "EMS" and number[0].isalpha():
        valid = s10_check_digit_ok(number)
    if not valid:
        raise ValidationFailed(f"this is not a {fmt.name_zh} tracking number", field="tracking_number",
                               code="invalid_tracking_number", details={"carrier": code})
    return code, number


@dataclass(frozen=True)
class PickupBooking:
    booking_reference: str
    tracking_number: str = ""


class CarrierAdapter(Protocol):
    """What a real carrier integration provides. `book_pickup` is called inside our transaction, so an
    adapter that calls out should be quick and idempotent on `idempotency_key` (our shipment id)."""

    code: str

    def book_pickup(self, *, idempotency_key: str, address: str, contact_name: str, contact_phone: str,
                    window: tuple[str, str]) -> PickupBooking: ...


class ManualCarrier:
    """The default: no integration, the shop books the pickup by phone or in the carrier's app and the
    reference here is ours, so staff and buyer can quote it. The tracking number arrives with the
    first push or when the courier's waybill is entered."""

    def __init__(self, code: str):
        self.code = code

    def book_pickup(self, *, idempotency_key: str, address: str, contact_name: str, contact_phone: str,
                    window: tuple[str, str]) -> PickupBooking:
        return PickupBooking(booking_reference=f"PU-{self.code}-{secrets.token_hex(5).upper()}")


_adapters: dict[str, CarrierAdapter] = {}


def register_adapter(adapter: CarrierAdapter) -> None:
    _adapters[adapter.code] = adapter


def unregister_adapter(code: str) -> None:
    _adapters.pop(code, None)


def adapter_for(code: str) -> CarrierAdapter:
    return _adapters.get(code) or ManualCarrier(code)


# The aggregator format names carriers by pinyin company codes; ours are the short codes above.
AGGREGATOR_COMPANY_CODES = {
    "shunfeng": "SF", "jd": "JD", "jingdong": "JD", "yuantong": "YTO", "zhongtong": "ZTO", "shentong": "STO",
    "yunda": "YUNDA", "ems": "EMS", "youzhengguonei": "EMS",
}
