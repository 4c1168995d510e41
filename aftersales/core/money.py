"""Money is Decimal with a currency, rounded once, at the edge, to the currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CURRENCIES = {"CNY": 2, "EUR": 2, "GBP": 2, "USD": 2, "JPY": 0}
CURRENCY_CHOICES = [(code, code) for code in CURRENCIES]
ZERO = Decimal("0")


def quantize(amount: Decimal, currency: str = "CNY") -> Decimal:
    places = CURRENCIES.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
