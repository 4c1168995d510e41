"""The facts a policy decision is made from, and the parser that turns JSON into them.

Facts are frozen dataclasses with slots: the engine runs tens of thousands of decisions a second
(Double-11 re-evaluations, what-if previews in the console), so the hot path stays free of
pydantic and of the ORM. `facts_from_dict` is the one door for untrusted input: it checks types,
signs and cross-references and names the offending field with a dotted path, so an API client or a
CLI user can fix the right line. `validate_facts` repeats the cross-field checks for facts built in
code (importers, tests), because a quantity above the order or payments that do not add up would
otherwise turn into a wrong refund instead of an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZERO = Decimal("0")


class FactsError(ValueError):
    """Facts the engine cannot decide on. `field` is a dotted path such as ``order.lines[1].unit_price``."""

    def __init__(self, field: str, message: str, *, code: str = "invalid_facts") -> None:
        super().__init__(f"{field}: {message}")
        self.code = code
        self.field = field
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


class Jurisdiction(StrEnum):
    CN = "CN"
    EU = "EU"
    UK = "UK"
    US = "US"


class PlatformMode(StrEnum):
    NONE = "none"
    TAOBAO = "taobao"
    JD = "jd"
    WECHAT = "wechat"


class RequestKind(StrEnum):
    RETURN_REFUND = "return_refund"
    REFUND_ONLY = "refund_only"
    EXCHANGE = "exchange"
    REPAIR = "repair"


class Reason(StrEnum):
    NO_REASON = "no_reason"
    QUALITY = "quality"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    MISSING_PARTS = "missing_parts"
    SIZE = "size"
    LATE_DELIVERY = "late_delivery"
    PRICE_DROP = "price_drop"


# A change of mind about size is still a change of mind: it is handled as a no-reason return.
NO_REASON_REASONS = frozenset({Reason.NO_REASON, Reason.SIZE})
# The goods (or their delivery) do not conform: the seller answers for it and pays the freight.
SELLER_FAULT_REASONS = frozenset(
    {Reason.QUALITY, Reason.NOT_AS_DESCRIBED, Reason.WRONG_ITEM, Reason.DAMAGED_IN_TRANSIT, Reason.MISSING_PARTS}
)


class Confirmation(StrEnum):
    """How the buyer confirmed at checkout that an item is not returnable without reason.

    Only ``explicit`` counts: S3 Art 20(2) and S4 Art 19(2) require a salient step that is not a
    default-consent option, so a pre-ticked box is no confirmation at all.
    """

    NONE = "none"
    PRE_TICKED = "pre_ticked"
    EXPLICIT = "explicit"


class PaymentMethod(StrEnum):
    ALIPAY = "alipay"
    WECHAT = "wechat"
    CARD = "card"
    UNIONPAY = "unionpay"
    PAYPAL = "paypal"
    BANK_TRANSFER = "bank_transfer"
    BALANCE = "balance"
    COUPON = "coupon"
    POINTS = "points"
    STORE_CREDIT = "store_credit"
    GIFT_CARD = "gift_card"


# S3 Art 15: points, vouchers and coupons used to pay go back in the same form, not as cash.
IN_KIND_METHODS = frozenset(
    {PaymentMethod.COUPON, PaymentMethod.POINTS, PaymentMethod.STORE_CREDIT, PaymentMethod.GIFT_CARD}
)
# S3 Art 16 speaks of credit-card fees; UnionPay cards are cards too.
CARD_METHODS = frozenset({PaymentMethod.CARD, PaymentMethod.UNIONPAY})


class FeeBearer(StrEnum):
    BUYER = "buyer"
    MERCHANT = "merchant"


class Category(StrEnum):
    FOOD = "food"
    HEALTH_FOOD = "health_food"
    COSMETICS = "cosmetics"
    MEDICAL_DEVICE = "medical_device"
    CONTRACEPTIVE = "contraceptive"
    ELECTRONICS = "electronics"
    MOBILE_PHONE = "mobile_phone"
    COMPUTER = "computer"
    HOME_APPLIANCE = "home_appliance"
    APPAREL = "apparel"
    SHOES = "shoes"
    HATS = "hats"
    BAGS = "bags"
    TOYS = "toys"
    HOME_TEXTILES = "home_textiles"
    HOME_GOODS = "home_goods"
    BOOKS = "books"
    AUDIO_VIDEO = "audio_video"
    SOFTWARE = "software"
    PERIODICALS = "periodicals"
    JEWELLERY = "jewellery"
    GENERAL = "general"


# S3 Art 9 judges "intact" differently per group of goods.
SEALED_CONSUMABLES = frozenset(
    {Category.FOOD, Category.HEALTH_FOOD, Category.COSMETICS, Category.MEDICAL_DEVICE, Category.CONTRACEPTIVE}
)
ELECTRONICS = frozenset({Category.ELECTRONICS, Category.MOBILE_PHONE, Category.COMPUTER, Category.HOME_APPLIANCE})
SOFT_GOODS = frozenset(
    {
        Category.APPAREL,
        Category.SHOES,
        Category.HATS,
        Category.BAGS,
        Category.TOYS,
        Category.HOME_TEXTILES,
        Category.HOME_GOODS,
    }
)
# S1 Art 23(3): for these durable goods the merchant carries the burden of proof for 6 months.
DURABLE_GOODS = frozenset({Category.COMPUTER, Category.HOME_APPLIANCE, Category.ELECTRONICS})


@dataclass(frozen=True, slots=True)
class SanbaoCatalogue:
    """A product listed in a 三包 catalogue (S9 appendix, S11, S12)."""

    code: str
    warranty_months: int
    # A fraction per day: 0.1 %/day is Decimal("0.001").
    daily_depreciation_rate: Decimal


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    sku: str
    category: Category
    quantity: int
    unit_price: Decimal
    # Line-level discounts (item coupons, 单品优惠) in money for the whole line; order-level 满减 is not in here.
    discount_allocated: Decimal = ZERO
    is_gift: bool = False
    gift_declared_value: Decimal | None = None
    # The paid line this gift came with; None means it came with the order as a whole.
    gift_for_line: str | None = None
    customised: bool = False
    perishable: bool = False
    digital_download: bool = False
    sealed_media: bool = False
    periodical: bool = False
    # The three kinds of goods S3 Art 7 lets a store exclude, but only with the buyer's confirmation.
    hygiene_sensitive: bool = False
    activation_devalues: bool = False
    near_expiry_disclosed: bool = False
    defect_disclosed: bool = False
    nonreturnable_confirmed: Confirmation = Confirmation.NONE
    sanbao_catalogue: SanbaoCatalogue | None = None
    warranty_months: int = 0

    @property
    def net_amount(self) -> Decimal:
        """What the line cost after its own discounts, before order-level 满减."""
        return self.unit_price * self.quantity - self.discount_allocated


@dataclass(frozen=True, slots=True)
class Payment:
    method: PaymentMethod
    amount: Decimal
    fee: Decimal = ZERO
    fee_borne_by: FeeBearer = FeeBearer.BUYER


@dataclass(frozen=True, slots=True)
class FullReduction:
    """满减: spend `threshold`, get `amount` off the order."""

    threshold: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    currency: str
    lines: tuple[OrderLine, ...]
    payments: tuple[Payment, ...]
    shipping_fee: Decimal = ZERO
    free_shipping_threshold: Decimal | None = None
    # What shipping would have cost without 包邮; needed to claw it back under S3 Art 18(2).
    standard_shipping_fee: Decimal | None = None
    full_reductions: tuple[FullReduction, ...] = ()
    placed_at: dt.datetime | None = None
    shipped_at: dt.datetime | None = None
    signed_at: dt.datetime | None = None
    installed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class RequestLine:
    line_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class GoodsState:
    """What the buyer reports (or the warehouse finds) about the goods being returned.

    `packaging_opened` is recorded only to make explicit that it never matters: opening to inspect
    does not make goods "not intact" (S3 Art 8(3), S4 Art 19(3)).
    """

    packaging_opened: bool = False
    seal_broken: bool = False
    tags_removed: bool = False
    soiled: bool = False
    activated: bool = False
    used_beyond_inspection: bool = False
    parts_missing: bool = False
    gift_returned: bool = True


@dataclass(frozen=True, slots=True)
class Request:
    kind: RequestKind
    reason: Reason
    lines: tuple[RequestLine, ...]
    notice_at: dt.datetime
    goods: GoodsState = GoodsState()
    # S9 Art 13: a 三包 return after failed repairs is charged depreciation only if the same model exists.
    same_model_available: bool = True
    # For price_drop: today's price of one unit.
    current_unit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RepairRecord:
    started_on: dt.date
    finished_on: dt.date
    failed: bool
    line_id: str | None = None

    @property
    def days(self) -> int:
        return (self.finished_on - self.started_on).days


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    exchanged_on: dt.date
    line_id: str | None = None


@dataclass(frozen=True, slots=True)
class History:
    repairs: tuple[RepairRecord, ...] = ()
    exchanges: tuple[ExchangeRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class StorePromises:
    """What the store promises beyond the law. Promises bind the store (S4 Art 12)."""

    no_reason_days: int | None = None
    free_return_shipping: bool = False
    shipping_insurance: bool = False
    shipping_insurance_cap: Decimal | None = None
    price_protection_days: int | None = None
    extended_warranty_months: int = 0
    # None: on in law-floor mode, off on platforms, which run a fixed clock (S6 Art 203; S16).
    extend_on_public_holiday: bool | None = None
    # US has no statutory return (S25): the store's own policy is the only source of a return right.
    store_return_policy: bool = False


@dataclass(frozen=True, slots=True)
class StoreSettings:
    jurisdiction: Jurisdiction
    platform_mode: PlatformMode = PlatformMode.NONE
    timezone: str = "Asia/Shanghai"
    promises: StorePromises = StorePromises()
    # Settings a store may want but the law voids (S1 Art 26, S3 Art 30, S5 Art 21): never applied, flagged.
    no_reason_returns_disabled: bool = False
    extra_excluded_categories: tuple[Category, ...] = ()


@dataclass(frozen=True, slots=True)
class Facts:
    order: Order
    request: Request
    store: StoreSettings
    history: History = History()
    # S22 Art 10: without withdrawal information the EU period runs 12 months longer.
    eu_withdrawal_info_given: bool = True


# --------------------------------------------------------------------------------------------
# Validation shared by the parser and by `evaluate`.


def validate_facts(facts: Facts) -> None:
    """Raise FactsError for facts that are well-typed but inconsistent.

    Runs on every evaluation, so the common case (nothing wrong) is a quick screen; the dotted path
    is only formatted when something is wrong. Comparisons are Decimal to Decimal (ZERO), which is
    measurably faster than Decimal to int.
    """
    order = facts.order
    if not order.lines:
        raise FactsError("order.lines", "an order needs at least one line")
    seen: dict[str, OrderLine] = {}
    for index, line in enumerate(order.lines):
        if line.line_id in seen:
            raise FactsError(f"order.lines[{index}].line_id", f"duplicate line id {line.line_id!r}")
        seen[line.line_id] = line
        if (
            line.quantity <= 0
            or line.unit_price < ZERO
            or line.discount_allocated < ZERO
            or line.warranty_months < 0
            or (line.gift_declared_value is not None and line.gift_declared_value < ZERO)
            or line.discount_allocated > line.unit_price * line.quantity
            or line.sanbao_catalogue is not None
        ):
            _check_line(index, line)
    for index, line in enumerate(order.lines):
        if line.gift_for_line is not None and line.gift_for_line not in seen:
            raise FactsError(f"order.lines[{index}].gift_for_line", f"no order line {line.gift_for_line!r}")
    for index, payment in enumerate(order.payments):
        if payment.amount < ZERO:
            raise FactsError(f"order.payments[{index}].amount", "must not be negative")
        if payment.fee < ZERO:
            raise FactsError(f"order.payments[{index}].fee", "must not be negative")
    if order.shipping_fee < 0:
        raise FactsError("order.shipping_fee", "must not be negative")
    if order.free_shipping_threshold is not None and order.free_shipping_threshold < 0:
        raise FactsError("order.free_shipping_threshold", "must not be negative")
    if order.standard_shipping_fee is not None and order.standard_shipping_fee < 0:
        raise FactsError("order.standard_shipping_fee", "must not be negative")
    for index, reduction in enumerate(order.full_reductions):
        if reduction.threshold < 0 or reduction.amount < 0 or reduction.amount > reduction.threshold:
            raise FactsError(f"order.full_reductions[{index}]", "needs 0 ≤ amount ≤ threshold")
    _check_aware(order.placed_at, "order.placed_at")
    _check_aware(order.shipped_at, "order.shipped_at")
    _check_aware(order.signed_at, "order.signed_at")
    _check_aware(order.installed_at, "order.installed_at")

    expected = order_total(order)
    paid = sum((p.amount for p in order.payments), ZERO)
    if paid != expected:
        raise FactsError(
            "order.payments",
            f"payments add up to {paid} but lines, 满减 and shipping make {expected}",
        )

    request = facts.request
    if request.notice_at.utcoffset() is None:
        raise FactsError("request.notice_at", "must carry a time zone offset")
    if not request.lines:
        raise FactsError("request.lines", "name at least one order line")
    asked: dict[str, int] = {}
    for index, wanted in enumerate(request.lines):
        ordered = seen.get(wanted.line_id)
        if ordered is None:
            raise FactsError(f"request.lines[{index}].line_id", f"no order line {wanted.line_id!r}")
        if wanted.quantity <= 0:
            raise FactsError(f"request.lines[{index}].quantity", "must be a positive whole number")
        total = asked[wanted.line_id] = asked.get(wanted.line_id, 0) + wanted.quantity
        if total > ordered.quantity:
            raise FactsError(
                f"request.lines[{index}].quantity", f"asks for {total} but the order has {ordered.quantity}"
            )
    if request.current_unit_price is not None and request.current_unit_price < 0:
        raise FactsError("request.current_unit_price", "must not be negative")

    for index, repair in enumerate(facts.history.repairs):
        if repair.finished_on < repair.started_on:
            raise FactsError(f"history.repairs[{index}].finished_on", "is before started_on")

    promises = facts.store.promises
    if promises.no_reason_days is not None and promises.no_reason_days < 0:
        raise FactsError("store.promises.no_reason_days", "must not be negative")
    if promises.price_protection_days is not None and promises.price_protection_days < 0:
        raise FactsError("store.promises.price_protection_days", "must not be negative")
    if promises.shipping_insurance_cap is not None and promises.shipping_insurance_cap < 0:
        raise FactsError("store.promises.shipping_insurance_cap", "must not be negative")
    if promises.extended_warranty_months < 0:
        raise FactsError("store.promises.extended_warranty_months", "must not be negative")
    _zone(facts.store.timezone)

    needs_signing = order.shipped_at is not None or request.kind is not RequestKind.REFUND_ONLY
    if order.signed_at is None and needs_signing and request.reason is not Reason.PRICE_DROP:
        # Every window the engine computes runs from delivery (S3 Art 10(2), S2 Art 51, S22 Art 9(2)).
        # Only a refund on an order that has not shipped can be decided without it.
        raise FactsError("order.signed_at", "the signing (delivery) time is needed to decide this request")


def order_total(order: Order) -> Decimal:
    """What the buyer owed: paid lines after line discounts, minus the best 满减, plus shipping."""
    subtotal = ZERO
    for line in order.lines:
        if not line.is_gift:
            subtotal += line.unit_price * line.quantity - line.discount_allocated
    return subtotal - best_full_reduction(subtotal, order.full_reductions) + order.shipping_fee


def best_full_reduction(subtotal: Decimal, reductions: tuple[FullReduction, ...]) -> Decimal:
    best = ZERO
    for reduction in reductions:
        if subtotal >= reduction.threshold and reduction.amount > best:
            best = reduction.amount
    return best


def _check_line(index: int, line: OrderLine) -> None:
    path = f"order.lines[{index}]"
    if line.quantity <= 0:
        raise FactsError(f"{path}.quantity", "must be a positive whole number")
    if line.unit_price < ZERO:
        raise FactsError(f"{path}.unit_price", "must not be negative")
    if line.discount_allocated < ZERO:
        raise FactsError(f"{path}.discount_allocated", "must not be negative")
    if line.discount_allocated > line.unit_price * line.quantity:
        raise FactsError(f"{path}.discount_allocated", "is larger than the line's price")
    if line.gift_declared_value is not None and line.gift_declared_value < ZERO:
        raise FactsError(f"{path}.gift_declared_value", "must not be negative")
    if line.warranty_months < 0:
        raise FactsError(f"{path}.warranty_months", "must not be negative")
    catalogue = line.sanbao_catalogue
    if catalogue is not None and (catalogue.warranty_months < 0 or catalogue.daily_depreciation_rate < ZERO):
        raise FactsError(f"{path}.sanbao_catalogue", "warranty months and depreciation rate must not be negative")


def _check_aware(moment: dt.datetime | None, field: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise FactsError(field, "must carry a time zone offset")


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    # lru_cache keeps only successes: an unknown name raises every time, as it should.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FactsError("store.timezone", f"unknown time zone {name!r}") from exc


# --------------------------------------------------------------------------------------------
# JSON → Facts. Decimals and datetimes arrive as strings; numbers are accepted for decimals too,
# but floats are converted through their text so 0.1 stays 0.1.

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def facts_from_dict(data: Mapping[str, Any]) -> Facts:
    """Parse JSON-shaped facts. Raises FactsError naming the first bad field."""
    root = _mapping(data, "", {"order", "request", "store", "history", "eu_withdrawal_info_given"})
    facts = Facts(
        order=_order(_required(root, "order", ""), "order"),
        request=_request(_required(root, "request", ""), "request"),
        store=_store(_required(root, "store", ""), "store"),
        history=_history(root.get("history"), "history"),
        eu_withdrawal_info_given=_bool(root.get("eu_withdrawal_info_given", True), "eu_withdrawal_info_given"),
    )
    validate_facts(facts)
    return facts


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FactsError(path or "facts", "must be an object")
    unknown = sorted(str(key) for key in set(value) - allowed)
    if unknown:
        # Rejecting unknown keys catches typos ("singed_at") that would otherwise silently change a decision.
        raise FactsError(_join(path, unknown[0]), "unknown field")
    return value


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise FactsError(_join(path, key), "is required")
    return obj[key]


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise FactsError(path, "must be a decimal amount")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int | str | Decimal):
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise FactsError(path, f"{value!r} is not a decimal amount") from exc
        if not result.is_finite():
            raise FactsError(path, "must be a finite amount")
        return result
    raise FactsError(path, "must be a decimal amount")


def _money(value: Any, path: str) -> Decimal:
    result = _decimal(value, path)
    if result < 0:
        raise FactsError(path, "must not be negative")
    return result


def _opt(obj: Mapping[str, Any], key: str, path: str, parse: Callable[[Any, str], T]) -> T | None:
    value = obj.get(key)
    return None if value is None else parse(value, _join(path, key))


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FactsError(path, "must be a whole number")
    return value


def _count(value: Any, path: str) -> int:
    result = _int(value, path)
    if result < 0:
        raise FactsError(path, "must not be negative")
    return result


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise FactsError(path, "must be true or false")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise FactsError(path, "must be a non-empty string")
    return value


def _enum(kind: type[E], value: Any, path: str) -> E:
    try:
        return kind(value)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in kind)
        raise FactsError(path, f"unknown value {value!r}; expected one of: {allowed}") from exc


def _datetime(value: Any, path: str) -> dt.datetime:
    if not isinstance(value, str):
        raise FactsError(path, "must be an ISO 8601 date-time string")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise FactsError(path, f"{value!r} is not an ISO 8601 date-time") from exc
    if moment.utcoffset() is None:
        raise FactsError(path, "must carry a time zone offset, e.g. 2026-03-01T23:50:00+08:00")
    return moment


def _date(value: Any, path: str) -> dt.date:
    if not isinstance(value, str):
        raise FactsError(path, "must be an ISO 8601 date string")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise FactsError(path, f"{value!r} is not an ISO 8601 date") from exc


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FactsError(path, "must be a list")
    return value


_LINE_KEYS = {
    "line_id",
    "sku",
    "category",
    "quantity",
    "unit_price",
    "discount_allocated",
    "is_gift",
    "gift_declared_value",
    "gift_for_line",
    "customised",
    "perishable",
    "digital_download",
    "sealed_media",
    "periodical",
    "hygiene_sensitive",
    "activation_devalues",
    "near_expiry_disclosed",
    "defect_disclosed",
    "nonreturnable_confirmed",
    "sanbao_catalogue",
    "warranty_months",
}
_LINE_FLAGS = (
    "is_gift",
    "customised",
    "perishable",
    "digital_download",
    "sealed_media",
    "periodical",
    "hygiene_sensitive",
    "activation_devalues",
    "near_expiry_disclosed",
    "defect_disclosed",
)


def _line(value: Any, path: str) -> OrderLine:
    obj = _mapping(value, path, _LINE_KEYS)
    flags = {name: _bool(obj.get(name, False), _join(path, name)) for name in _LINE_FLAGS}
    catalogue = None
    if obj.get("sanbao_catalogue") is not None:
        cpath = _join(path, "sanbao_catalogue")
        cobj = _mapping(obj["sanbao_catalogue"], cpath, {"code", "warranty_months", "daily_depreciation_rate"})
        catalogue = SanbaoCatalogue(
            code=_str(_required(cobj, "code", cpath), _join(cpath, "code")),
            warranty_months=_count(_required(cobj, "warranty_months", cpath), _join(cpath, "warranty_months")),
            daily_depreciation_rate=_money(
                _required(cobj, "daily_depreciation_rate", cpath), _join(cpath, "daily_depreciation_rate")
            ),
        )
    quantity = _int(_required(obj, "quantity", path), _join(path, "quantity"))
    if quantity <= 0:
        raise FactsError(_join(path, "quantity"), "must be a positive whole number")
    return OrderLine(
        line_id=_str(_required(obj, "line_id", path), _join(path, "line_id")),
        sku=_str(_required(obj, "sku", path), _join(path, "sku")),
        category=_enum(Category, _required(obj, "category", path), _join(path, "category")),
        quantity=quantity,
        unit_price=_money(_required(obj, "unit_price", path), _join(path, "unit_price")),
        discount_allocated=_money(obj.get("discount_allocated", "0"), _join(path, "discount_allocated")),
        gift_declared_value=_opt(obj, "gift_declared_value", path, _money),
        gift_for_line=_opt(obj, "gift_for_line", path, _str),
        nonreturnable_confirmed=_enum(
            Confirmation, obj.get("nonreturnable_confirmed", "none"), _join(path, "nonreturnable_confirmed")
        ),
        sanbao_catalogue=catalogue,
        warranty_months=_count(obj.get("warranty_months", 0), _join(path, "warranty_months")),
        **flags,
    )


def _payment(value: Any, path: str) -> Payment:
    obj = _mapping(value, path, {"method", "amount", "fee", "fee_borne_by"})
    return Payment(
        method=_enum(PaymentMethod, _required(obj, "method", path), _join(path, "method")),
        amount=_money(_required(obj, "amount", path), _join(path, "amount")),
        fee=_money(obj.get("fee", "0"), _join(path, "fee")),
        fee_borne_by=_enum(FeeBearer, obj.get("fee_borne_by", "buyer"), _join(path, "fee_borne_by")),
    )


def _reduction(value: Any, path: str) -> FullReduction:
    obj = _mapping(value, path, {"threshold", "amount"})
    return FullReduction(
        threshold=_money(_required(obj, "threshold", path), _join(path, "threshold")),
        amount=_money(_required(obj, "amount", path), _join(path, "amount")),
    )


def _order(value: Any, path: str) -> Order:
    obj = _mapping(
        value,
        path,
        {
            "order_id",
            "currency",
            "lines",
            "payments",
            "shipping_fee",
            "free_shipping_threshold",
            "standard_shipping_fee",
            "full_reductions",
            "placed_at",
            "shipped_at",
            "signed_at",
            "installed_at",
        },
    )
    lines = _list(_required(obj, "lines", path), _join(path, "lines"))
    payments = _list(obj.get("payments"), _join(path, "payments"))
    reductions = _list(obj.get("full_reductions"), _join(path, "full_reductions"))
    return Order(
        order_id=_str(_required(obj, "order_id", path), _join(path, "order_id")),
        currency=_str(obj.get("currency", "CNY"), _join(path, "currency")),
        lines=tuple(_line(item, f"{path}.lines[{i}]") for i, item in enumerate(lines)),
        payments=tuple(_payment(item, f"{path}.payments[{i}]") for i, item in enumerate(payments)),
        shipping_fee=_money(obj.get("shipping_fee", "0"), _join(path, "shipping_fee")),
        free_shipping_threshold=_opt(obj, "free_shipping_threshold", path, _money),
        standard_shipping_fee=_opt(obj, "standard_shipping_fee", path, _money),
        full_reductions=tuple(_reduction(item, f"{path}.full_reductions[{i}]") for i, item in enumerate(reductions)),
        placed_at=_opt(obj, "placed_at", path, _datetime),
        shipped_at=_opt(obj, "shipped_at", path, _datetime),
        signed_at=_opt(obj, "signed_at", path, _datetime),
        installed_at=_opt(obj, "installed_at", path, _datetime),
    )


_GOODS_FLAGS = (
    "packaging_opened",
    "seal_broken",
    "tags_removed",
    "soiled",
    "activated",
    "used_beyond_inspection",
    "parts_missing",
    "gift_returned",
)


def _request(value: Any, path: str) -> Request:
    obj = _mapping(
        value, path, {"kind", "reason", "lines", "notice_at", "goods", "same_model_available", "current_unit_price"}
    )
    lines = []
    for i, item in enumerate(_list(_required(obj, "lines", path), _join(path, "lines"))):
        lpath = f"{path}.lines[{i}]"
        lobj = _mapping(item, lpath, {"line_id", "quantity"})
        lines.append(
            RequestLine(
                line_id=_str(_required(lobj, "line_id", lpath), _join(lpath, "line_id")),
                quantity=_int(_required(lobj, "quantity", lpath), _join(lpath, "quantity")),
            )
        )
    goods = GoodsState()
    if obj.get("goods") is not None:
        gpath = _join(path, "goods")
        gobj = _mapping(obj["goods"], gpath, set(_GOODS_FLAGS))
        defaults = {"gift_returned": True}
        goods = GoodsState(
            **{
                name: _bool(gobj.get(name, defaults.get(name, False)), _join(gpath, name))
                for name in _GOODS_FLAGS
            }
        )
    return Request(
        kind=_enum(RequestKind, _required(obj, "kind", path), _join(path, "kind")),
        reason=_enum(Reason, _required(obj, "reason", path), _join(path, "reason")),
        lines=tuple(lines),
        notice_at=_datetime(_required(obj, "notice_at", path), _join(path, "notice_at")),
        goods=goods,
        same_model_available=_bool(obj.get("same_model_available", True), _join(path, "same_model_available")),
        current_unit_price=_opt(obj, "current_unit_price", path, _money),
    )


def _history(value: Any, path: str) -> History:
    if value is None:
        return History()
    obj = _mapping(value, path, {"repairs", "exchanges"})
    repairs = []
    for i, item in enumerate(_list(obj.get("repairs"), _join(path, "repairs"))):
        rpath = f"{path}.repairs[{i}]"
        robj = _mapping(item, rpath, {"started_on", "finished_on", "failed", "line_id"})
        repairs.append(
            RepairRecord(
                started_on=_date(_required(robj, "started_on", rpath), _join(rpath, "started_on")),
                finished_on=_date(_required(robj, "finished_on", rpath), _join(rpath, "finished_on")),
                failed=_bool(robj.get("failed", False), _join(rpath, "failed")),
                line_id=_opt(robj, "line_id", rpath, _str),
            )
        )
    exchanges = []
    for i, item in enumerate(_list(obj.get("exchanges"), _join(path, "exchanges"))):
        epath = f"{path}.exchanges[{i}]"
        eobj = _mapping(item, epath, {"exchanged_on", "line_id"})
        exchanges.append(
            ExchangeRecord(
                exchanged_on=_date(_required(eobj, "exchanged_on", epath), _join(epath, "exchanged_on")),
                line_id=_opt(eobj, "line_id", epath, _str),
            )
        )
    return History(repairs=tuple(repairs), exchanges=tuple(exchanges))


_PROMISE_FLAGS = ("free_return_shipping", "shipping_insurance", "store_return_policy")


def _store(value: Any, path: str) -> StoreSettings:
    obj = _mapping(
        value,
        path,
        {
            "jurisdiction",
            "platform_mode",
            "timezone",
            "promises",
            "no_reason_returns_disabled",
            "extra_excluded_categories",
        },
    )
    promises = StorePromises()
    if obj.get("promises") is not None:
        ppath = _join(path, "promises")
        pobj = _mapping(
            obj["promises"],
            ppath,
            {
                "no_reason_days",
                "shipping_insurance_cap",
                "price_protection_days",
                "extended_warranty_months",
                "extend_on_public_holiday",
                *_PROMISE_FLAGS,
            },
        )
        promises = StorePromises(
            no_reason_days=_opt(pobj, "no_reason_days", ppath, _count),
            shipping_insurance_cap=_opt(pobj, "shipping_insurance_cap", ppath, _money),
            price_protection_days=_opt(pobj, "price_protection_days", ppath, _count),
            extended_warranty_months=_count(
                pobj.get("extended_warranty_months", 0), _join(ppath, "extended_warranty_months")
            ),
            extend_on_public_holiday=_opt(pobj, "extend_on_public_holiday", ppath, _bool),
            **{name: _bool(pobj.get(name, False), _join(ppath, name)) for name in _PROMISE_FLAGS},
        )
    categories = _list(obj.get("extra_excluded_categories"), _join(path, "extra_excluded_categories"))
    timezone = _str(obj.get("timezone", "Asia/Shanghai"), _join(path, "timezone"))
    _zone(timezone)
    return StoreSettings(
        jurisdiction=_enum(Jurisdiction, _required(obj, "jurisdiction", path), _join(path, "jurisdiction")),
        platform_mode=_enum(PlatformMode, obj.get("platform_mode", "none"), _join(path, "platform_mode")),
        timezone=timezone,
        promises=promises,
        no_reason_returns_disabled=_bool(
            obj.get("no_reason_returns_disabled", False), _join(path, "no_reason_returns_disabled")
        ),
        extra_excluded_categories=tuple(
            _enum(Category, item, f"{path}.extra_excluded_categories[{i}]") for i, item in enumerate(categories)
        ),
    )
