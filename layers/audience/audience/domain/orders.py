"""Order exports, cleaned: each line to a clean ``OrderLine`` (dates to UTC, amounts signed,
non-product lines marked, countries to ISO 3166), then lines grouped into orders per customer
(``imports`` reads the file and accounts for every row; ``customers`` does the same for CRM
exports)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

from audience.domain.imports import ORDER_FIELDS, ColumnMapping, FileCleaner, Reject, decimal, iso_country, source_id
from audience.domain.money import Currencies


class OrderLine(NamedTuple):
    """A clean order line (a tuple: half a million of them are made per file)."""

    line: int
    order_id: str
    customer_id: str
    at: datetime
    amount: Decimal  # in ``currency``; negative for a return or cancellation
    currency: str
    is_cancellation: bool
    is_product: bool
    category: str | None
    country: str | None
    product_id: str | None = None  # (the product's code and name: recommendations' interactions)
    product_name: str | None = None


class OrderFileCleaner(FileCleaner[OrderLine]):
    """Order lines: dates to UTC, amounts (returns and cancellations negative), non-product
    lines marked, countries to ISO 3166."""

    def __init__(self, mapping: ColumnMapping, currencies: Currencies, on_reject: Callable[[Reject], None]) -> None:
        super().__init__(mapping, on_reject)
        self.currencies = currencies
        self._cancellation_prefixes = tuple(mapping.cancellation_prefixes)
        self._non_products = frozenset(mapping.non_product_codes)
        self._pick: Any = None
        self._known: set[str] = set()

    def _knows(self, currency: str) -> bool:
        if self.currencies.knows(currency):
            self._known.add(currency)
        return currency in self._known

    def _start(self, columns: list[str], index: dict[str, int]) -> None:
        # Hot path (500k rows a file): fields are picked in C by one itemgetter, no per-field calls.
        self._pick = itemgetter(*(index.get(f, -1) for f in ORDER_FIELDS))

    def _clean(self, line: int, columns: list[str], values: list[str], utf8: bool) -> OrderLine | None:
        order_id, customer, date, quantity, price, total, currency, product_id, name, category, country = self._pick(
            [*values, ""]  # a column the file lacks reads as "" (index -1)
        )
        order_id, customer_id = order_id.strip(), source_id(customer.strip())
        reasons: list[str] = [] if utf8 else ["not valid UTF-8"]
        if not order_id:
            reasons.append("order id missing")
        if not customer_id:
            reasons.append("customer id missing")
        at = self._date(date.strip())
        if at is None:
            reasons.append(f"date {date!r} not understood")
        is_cancellation = order_id.startswith(self._cancellation_prefixes)
        amount = _amount(quantity, price, total, is_cancellation, reasons)
        currency = currency.strip().upper() or self.mapping.currency
        if currency not in self._known and not self._knows(currency):  # converted per order: fewer roundings
            reasons.append(f"no exchange rate from {currency} to {self.currencies.base}")
        if reasons:
            self._reject(line, columns, values, reasons)
            return None
        is_product = product_id.strip() not in self._non_products
        code = iso_country(country.strip())
        if country and code is None:
            self.accounting.countries_unknown += 1
        self.accounting.non_product_lines += not is_product
        self.accounting.cancellation_lines += is_cancellation
        assert at is not None and amount is not None
        return OrderLine(
            line,
            order_id,
            customer_id,
            at,
            amount,
            currency,
            is_cancellation,
            is_product,
            category or None,
            code,
            product_id.strip() or None,
            name.strip() or None,
        )


@dataclass
class ImportedOrder:
    """One order (or cancellation) of one customer, from its lines."""

    order_id: str
    customer_id: str
    at: datetime
    amount: Decimal  # base currency; for a refund, the amount refunded (positive)
    is_refund: bool
    category_spend: dict[str, Decimal] = field(default_factory=dict)
    lines: int = 0
    products: dict[str, tuple[str | None, str | None, Decimal]] = field(
        default_factory=dict
    )  # id: name, category, spend


def orders_by_customer(lines: Iterable[OrderLine], currencies: Currencies) -> dict[str, list[ImportedOrder]]:
    """Group clean lines into orders. An order whose lines net below zero (returns, or a
    cancellation invoice) is a refund of that amount. Non-product lines (postage, fees) count in
    the order's amount, not in its category spend. Amounts convert to the base currency once per
    order."""
    orders: dict[tuple[str, str], tuple[ImportedOrder, str]] = {}
    for line in lines:
        key = (line.customer_id, line.order_id)
        if key not in orders:
            orders[key] = (ImportedOrder(line.order_id, line.customer_id, line.at, Decimal(0), line.is_cancellation),
                           line.currency)  # fmt: skip
        order = orders[key][0]
        if line.at < order.at:
            order.at = line.at
        order.amount += line.amount
        order.lines += 1
        if line.is_product and line.amount > 0 and line.product_id:
            _, _, spend = order.products.get(line.product_id, (None, None, Decimal(0)))
            order.products[line.product_id] = (line.product_name, line.category, spend + line.amount)
        elif line.is_product and line.category and line.amount > 0:  # a line with no product id
            order.category_spend[line.category] = order.category_spend.get(line.category, Decimal(0)) + line.amount
    result: dict[str, list[ImportedOrder]] = {}
    for order, currency in orders.values():
        order.is_refund = order.is_refund or order.amount < 0
        order.amount = currencies.to_base(abs(order.amount), currency)
        order.category_spend = {c: currencies.to_base(s, currency) for c, s in order.category_spend.items()}
        order.products = {p: (n, c, currencies.to_base(s, currency)) for p, (n, c, s) in order.products.items()}
        result.setdefault(order.customer_id, []).append(order)
    return result


def _amount(quantity: str, price: str, total: str, is_cancellation: bool, reasons: list[str]) -> Decimal | None:
    """The line's amount: its total, or quantity times unit price; appends why when it has none."""
    if total:
        value = decimal(total)
        if value is None:
            reasons.append(f"total {total!r} is not a number")
        return value
    units, unit_price = decimal(quantity), decimal(price)
    if units is None:
        reasons.append(f"quantity {quantity!r} is not a number")
    elif units == 0:
        reasons.append("quantity is zero")
    elif is_cancellation and units > 0:
        reasons.append("a cancellation with a positive quantity")
    if unit_price is None:
        reasons.append(f"price {price!r} is not a number")
    elif unit_price <= 0:
        reasons.append("price must be positive")
    return None if units is None or unit_price is None else units * unit_price
