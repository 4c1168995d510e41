"""The shapes of the orders API, and the one set of field rules that the JSON and CSV imports share.

Unknown fields are refused, so a typo in the shop's feed never passes silently. The limits follow the
columns (lengths, non-negative money with two decimals) so that what passes here always fits the
tables: a row the database would refuse is a validation error with a field, not a 500.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, SkipValidation
from pydantic_core import PydanticCustomError

from aftersales.catalog.models import Category

from .models import CheckoutConfirmation, PaymentMethod

MAX_BATCH = 1000
MAX_LINES_PER_ORDER = 500

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]


# Enough to catch a phone number or a name in the e-mail column; Django's full validator costs ~15µs
# an order, a tenth of the whole import's budget, for addresses we only ever display.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if value and not _EMAIL.match(value):
        raise PydanticCustomError("invalid_email", "not a valid e-mail address")
    return value


# Literals rather than the model's enums: pydantic checks a literal in its core, an enum in Python, and
# this runs for every line of an import. The asserts keep them in step with the models.
CategoryName = Literal["apparel", "electronics", "appliances", "fresh_food", "food", "cosmetics", "books",
                       "periodicals", "media", "digital", "home", "toys", "jewellery", "customised", "other"]
ConfirmationName = Literal["none", "pre_ticked", "explicit"]
PaymentMethodName = Literal["alipay", "wechat", "card", "balance", "coupon", "points", "store_credit", "stripe"]
assert list(CategoryName.__args__) == Category.values  # type: ignore[attr-defined]
assert list(ConfirmationName.__args__) == CheckoutConfirmation.values  # type: ignore[attr-defined]
assert list(PaymentMethodName.__args__) == PaymentMethod.values  # type: ignore[attr-defined]


class StrictSchema(BaseModel):
    # Plain pydantic rather than ninja.Schema: its ORM-reading wrapper costs ~25µs a row, which a
    # 200,000-line import cannot afford. Enum fields come out as their plain string values; text is
    # stripped, since a trailing space in an order number is a classic source of "duplicate" orders.
    model_config = ConfigDict(extra="forbid", use_enum_values=True, str_strip_whitespace=True)


class BuyerIn(StrictSchema):
    external_id: str = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=120)
    email: Annotated[str, Field(default="", max_length=254), AfterValidator(_email)] = ""
    phone: str = Field(default="", max_length=32)


class LineIn(StrictSchema):
    line_no: int = Field(ge=1, le=32767)
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    category: CategoryName = "other"
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Money
    discount_allocated: Money = Decimal("0")
    is_gift: bool = False
    gift_declared_value: Money | None = None
    customised: bool = False
    perishable: bool = False
    digital_download: bool = False
    sealed_media: bool = False
    periodical: bool = False
    nonreturnable_confirmation: ConfirmationName = "none"
    near_expiry_disclosed: bool = False
    sanbao_catalogue: str = Field(default="", max_length=40)
    warranty_months: int = Field(default=0, ge=0, le=1200)


class PaymentIn(StrictSchema):
    method: PaymentMethodName
    amount: Money
    fee: Money = Decimal("0")
    fee_paid_by_buyer: bool = False
    reference: str = Field(default="", max_length=100)


class ShipmentIn(StrictSchema):
    carrier: str = Field(default="", max_length=40)
    tracking_number: str = Field(default="", max_length=64)
    shipped_at: AwareDatetime | None = None
    signed_at: AwareDatetime | None = None


class OrderHeaderIn(StrictSchema):
    """An order without its lines, payments and shipments: what the CSV repeats on every row."""

    external_id: str = Field(min_length=1, max_length=64)
    buyer: BuyerIn
    placed_at: AwareDatetime
    # None means "the store's currency"; a three-letter ISO 4217 code otherwise.
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    shipping_fee: Money = Decimal("0")
    free_shipping_threshold: Money | None = None
    channel: str = Field(default="online", min_length=1, max_length=20)


class OrderIn(OrderHeaderIn):
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES_PER_ORDER)
    payments: list[PaymentIn] = Field(default_factory=list, max_length=20)
    shipments: list[ShipmentIn] = Field(default_factory=list, max_length=50)


class ImportIn(StrictSchema):
    # Each order is validated on its own by the service so that one bad order is reported with its
    # index instead of failing the whole request; SkipValidation keeps the documented shape in the
    # OpenAPI document while leaving the raw objects to the service.
    orders: list[SkipValidation[OrderIn]] = Field(
        description=f"Up to {MAX_BATCH} orders; more is refused with 422 batch_too_large."
    )


class ImportErrorOut(Schema):
    index: int
    external_id: str | None
    code: str
    field: str
    message: str


class ImportResultOut(Schema):
    created: int
    updated: int
    errors: list[ImportErrorOut]


class BuyerOut(Schema):
    id: int
    external_id: str
    name: str


class LineOut(Schema):
    id: int
    line_no: int
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: Decimal
    discount_allocated: Decimal
    is_gift: bool
    gift_declared_value: Decimal | None
    customised: bool
    perishable: bool
    digital_download: bool
    sealed_media: bool
    periodical: bool
    nonreturnable_confirmation: str
    near_expiry_disclosed: bool
    sanbao_catalogue: str
    warranty_months: int


class PaymentOut(Schema):
    id: int
    method: str
    amount: Decimal
    fee: Decimal
    fee_paid_by_buyer: bool
    reference: str


class ShipmentOut(Schema):
    id: int
    carrier: str
    tracking_number: str
    shipped_at: dt.datetime | None
    signed_at: dt.datetime | None


class OrderOut(Schema):
    id: int
    external_id: str
    buyer: BuyerOut
    placed_at: dt.datetime
    currency: str
    shipping_fee: Decimal
    free_shipping_threshold: Decimal | None
    total_paid: Decimal
    channel: str
    imported_at: dt.datetime


class OrderDetailOut(OrderOut):
    lines: list[LineOut]
    payments: list[PaymentOut]
    shipments: list[ShipmentOut]


class OrderPage(Schema):
    items: list[OrderOut]
    next_cursor: str | None

