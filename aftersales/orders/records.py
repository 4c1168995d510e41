"""A validated order as plain values in column order: what both imports produce and the writer takes.

The JSON import gets its orders from pydantic (schemas.OrderIn); the CSV import builds most of them
without pydantic, because a model per line is the largest cost of a large file (see importers.py).
Both hand the writer the same shape, so there is one writer and one set of cross-field rules.
Tuples rather than objects: a 200,000-line file makes 200,000 of them, and COPY takes tuples as they
are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any

from .schemas import LineIn, OrderIn, PaymentIn, ShipmentIn

# The columns of a line, payment and shipment tuple, in order; the names are the models' fields.
LINE_FIELDS: list[str] = list(LineIn.model_fields)
PAYMENT_FIELDS: list[str] = list(PaymentIn.model_fields)
SHIPMENT_FIELDS: list[str] = list(ShipmentIn.model_fields)

LINE_NO, QUANTITY, UNIT_PRICE, DISCOUNT = (LINE_FIELDS.index(name) for name in
                                           ("line_no", "quantity", "unit_price", "discount_allocated"))
SHIPPED_AT, SIGNED_AT = SHIPMENT_FIELDS.index("shipped_at"), SHIPMENT_FIELDS.index("signed_at")

line_values = attrgetter(*LINE_FIELDS)
payment_values = attrgetter(*PAYMENT_FIELDS)
shipment_values = attrgetter(*SHIPMENT_FIELDS)


@dataclass(slots=True)
class OrderRecord:
    external_id: str
    buyer: tuple[str, str, str, str]  # external_id, name, email, phone
    placed_at: dt.datetime
    currency: str | None  # None: the store's currency
    shipping_fee: Decimal
    free_shipping_threshold: Decimal | None
    channel: str
    lines: list[tuple[Any, ...]]
    payments: list[tuple[Any, ...]]
    shipments: list[tuple[Any, ...]]

    @classmethod
    def from_schema(cls, order: OrderIn) -> OrderRecord:
        buyer = order.buyer
        return cls(
            order.external_id, (buyer.external_id, buyer.name, buyer.email, buyer.phone), order.placed_at,
            order.currency, order.shipping_fee, order.free_shipping_threshold, order.channel,
            [line_values(line) for line in order.lines], [payment_values(p) for p in order.payments],
            [shipment_values(s) for s in order.shipments],
        )

    def total_paid(self) -> Decimal:
        # What the buyer paid is what the payments say, coupons and points included, since the refund
        # split works from the same payments; an order sent without payments is taken at its lines'
        # paid amounts plus shipping.
        if self.payments:
            return sum((p[1] for p in self.payments), Decimal("0"))
        return self.shipping_fee + sum(
            (line[UNIT_PRICE] * line[QUANTITY] - line[DISCOUNT] for line in self.lines), Decimal("0")
        )
