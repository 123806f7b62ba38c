"""Every customer's order days as flat numpy columns, and what the value models need from them
as of any day: the BTYD statistics, the churn features and what happened afterwards.

The same quantities as ``OrderHistory`` in ``value/spec.py`` computes for one customer in plain
Python (the tests hold the two equal), for a million customers at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from audience.value.spec import OrderHistory

Vector = NDArray[np.float64]


@dataclass(frozen=True)
class AsOf:
    """Per customer, as of one day (NaN where the customer had no order by then)."""

    buyer: NDArray[np.bool_]
    x: Vector
    t_x: Vector
    big_t: Vector
    zbar: Vector  # mean spend of the repeat order days (0 without repeats)
    features: NDArray[np.float64]  # CHURN_FEATURES, one row per customer


@dataclass(frozen=True)
class OrderLog:
    """Order days (distinct per customer) sorted by customer then day, with the spend on each."""

    owner: NDArray[np.int64]
    day: NDArray[np.int64]
    spend: Vector
    customers: int

    @classmethod
    def of(cls, histories: Sequence[OrderHistory]) -> OrderLog:
        sizes = np.array([len(h.days) for h in histories], dtype=np.int64)
        owner = np.repeat(np.arange(len(histories), dtype=np.int64), sizes)
        day = np.fromiter((d for h in histories for d in h.days), dtype=np.int64, count=int(sizes.sum()))
        spend = np.fromiter((s for h in histories for s in h.spend), dtype=float, count=int(sizes.sum()))
        return cls(owner, day, spend, len(histories))

    def orders_between(self, start: int, end: int) -> Vector:
        """Order days in (start, end] per customer."""
        inside = (self.day > start) & (self.day <= end)
        return np.bincount(self.owner[inside], minlength=self.customers).astype(float)

    def spend_between(self, start: int, end: int) -> Vector:
        """Spend on the order days in (start, end] per customer."""
        inside = (self.day > start) & (self.day <= end)
        return np.bincount(self.owner[inside], weights=self.spend[inside], minlength=self.customers).astype(float)

    def as_of(self, today: int) -> AsOf:
        keep = self.day <= today
        owner, day, spend = self.owner[keep], self.day[keep], self.spend[keep]
        n_customers = self.customers
        n = np.bincount(owner, minlength=n_customers).astype(float)
        total = np.bincount(owner, weights=spend, minlength=n_customers)
        recent = today - day < 90
        n_90 = np.bincount(owner[recent], minlength=n_customers).astype(float)
        spend_90 = np.bincount(owner[recent], weights=spend[recent], minlength=n_customers)
        first, last, first_spend = (np.full(n_customers, np.nan) for _ in range(3))
        if len(owner):
            starts = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
            ends = np.append(starts[1:], len(owner)) - 1
            first[owner[starts]], last[owner[starts]] = day[starts], day[ends]
            first_spend[owner[starts]] = spend[starts]
        buyer = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(buyer, n - 1, np.nan)
            zbar = np.where(n > 1, (total - first_spend) / (n - 1), 0.0)
            gaps = np.where(n > 1, (last - first) / (n - 1), np.nan)
            features = np.column_stack([today - last, np.where(buyer, n, np.nan), today - first,
                                        np.where(buyer, total, np.nan), total / n, np.where(buyer, n_90, np.nan),
                                        np.where(buyer, spend_90, np.nan), gaps])  # fmt: skip
        return AsOf(buyer, x, last - first, today - first, np.where(buyer, zbar, np.nan), features)
