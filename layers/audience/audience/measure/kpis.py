"""Each segment's key figures, from its members' profiles (customers who refused analytics are
not counted):

- ``customers``: members;
- ``conversion30d``: the share who ordered in the last 30 days;
- ``revenuePerCustomer``: net revenue (orders less refunds, base currency) per member, lifetime;
- ``averageOrderValue``: gross revenue over orders, lifetime;
- ``retention90d``: of the members who were already buyers 90 days ago, the share who ordered in
  the last 90 days (the usual period retention; ``retentionBase`` says how many it is of);
- ``revenue30dPerCustomer`` and ``revenue30dVariance``: each member's revenue (orders) in the
  last 30 days, its mean and variance (an experiment's planning reads them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from audience.domain.profile import Profile


@dataclass
class Tally:
    """One segment's running sums; tallies of disjoint parts add up."""

    customers: int = 0
    converted30d: int = 0
    revenue: Decimal = Decimal(0)
    net_revenue: Decimal = Decimal(0)
    orders: int = 0
    retention_base: int = 0
    retained: int = 0
    revenue30d: Decimal = Decimal(0)  # exact, so the sums are the same however the scan was cut
    revenue30d_squares: Decimal = Decimal(0)

    def add(self, profile: Profile, now: datetime) -> None:
        self.customers += 1
        recent = profile.window(30, now)
        self.converted30d += recent["orders"] > 0
        spent = Decimal(str(recent["revenue"]))
        self.revenue30d += spent
        self.revenue30d_squares += spent**2
        self.revenue += profile.revenue
        self.net_revenue += profile.revenue - profile.refunded
        self.orders += profile.orders
        if profile.first_order_at is not None and profile.first_order_at <= now - timedelta(days=90):
            self.retention_base += 1
            self.retained += profile.window(90, now)["orders"] > 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))

    def dump(self) -> dict[str, str]:
        """The running sums, exactly (a fanned-out part's, for the worker that adds them up)."""
        return {name: str(value) for name, value in self.__dict__.items()}

    @classmethod
    def load(cls, sums: dict[str, str]) -> Tally:
        return cls(customers=int(sums["customers"]), converted30d=int(sums["converted30d"]),
                   revenue=Decimal(sums["revenue"]), net_revenue=Decimal(sums["net_revenue"]),
                   orders=int(sums["orders"]), retention_base=int(sums["retention_base"]),
                   retained=int(sums["retained"]), revenue30d=Decimal(sums["revenue30d"]),
                   revenue30d_squares=Decimal(sums["revenue30d_squares"]))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        n = self.customers
        return {
            "customers": n,
            "conversion30d": self.converted30d / n if n else None,
            "revenuePerCustomer": float(self.net_revenue) / n if n else None,
            "averageOrderValue": float(self.revenue) / self.orders if self.orders else None,
            "retention90d": self.retained / self.retention_base if self.retention_base else None,
            "retentionBase": self.retention_base,
            "revenue30dPerCustomer": float(self.revenue30d) / n if n else None,
            "revenue30dVariance": float(max(self.revenue30d_squares - self.revenue30d**2 / n, Decimal(0)) / (n - 1))
            if n > 1
            else None,
        }


def tally(profiles: Iterable[Profile], now: datetime) -> dict[str, Tally]:
    """segment id -> the tally of its members among ``profiles`` (the live, countable ones)."""
    found: dict[str, Tally] = {}
    for profile in profiles:
        if profile.merged_into is None and profile.allows("analytics"):
            for segment in profile.segment_ids():
                found.setdefault(segment, Tally()).add(profile, now)
    return found


class SegmentKpis(BaseModel):
    """A segment's key figures (see the module's docstring for their definitions)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    as_of: AwareDatetime = Field(alias="asOf", description="when the measure job computed them")
    customers: int
    conversion30d: float | None = Field(description="share who ordered in the last 30 days")
    revenue_per_customer: float | None = Field(alias="revenuePerCustomer", description="net revenue, lifetime")
    average_order_value: float | None = Field(alias="averageOrderValue")
    retention90d: float | None = Field(description="of those who were buyers 90 days ago, the share who ordered since")
    retention_base: int = Field(alias="retentionBase")
    revenue30d_per_customer: float | None = Field(
        default=None, alias="revenue30dPerCustomer", description="revenue in the last 30 days, per member"
    )
    revenue30d_variance: float | None = Field(
        default=None, alias="revenue30dVariance", description="its variance across members (experiments' planning)"
    )


def stored_kpis(text: str | None) -> dict[str, SegmentKpis]:
    """Every segment's KPIs from the stored document (none before the first measure)."""
    if text is None:
        return {}
    document = json.loads(text)
    return {s: SegmentKpis.model_validate({**k, "asOf": document["asOf"]}) for s, k in document["segments"].items()}


def kpis(tallies: dict[str, Tally], now: datetime) -> dict[str, Any]:
    """The stored document ``GET /v1/segments/{id}`` reads."""
    return {"asOf": now.isoformat(), "segments": {s: t.to_json() for s, t in sorted(tallies.items())}}
