"""Amounts in the stack's base currency."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

CENT = Decimal("0.01")


class UnknownCurrency(ValueError):
    pass


@dataclass(frozen=True)
class Currencies:
    """The base currency and how many base units one unit of each other currency is worth.

    Rates are a configured table (template parameter ``CurrencyRates``), applied when the
    event is folded: profiles hold one comparable monetary figure, not a basket of currencies.
    """

    base: str = "USD"
    rates: dict[str, Decimal] = field(default_factory=dict)

    def knows(self, currency: str) -> bool:
        return currency == self.base or currency in self.rates

    def to_base(self, amount: Decimal, currency: str) -> Decimal:
        if currency == self.base:
            return amount
        try:
            return (amount * self.rates[currency]).quantize(CENT)
        except KeyError:
            known = ", ".join(sorted({self.base, *self.rates}))
            raise UnknownCurrency(f"no exchange rate from {currency} to {self.base} (known: {known})") from None
