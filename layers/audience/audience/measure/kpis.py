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
- ``members``: members who allow personalization (what ``GET /v1/segments`` serves as ``size``:
  the same count as the membership index, taken in the same scan, so a request reads it instead
  of counting the index).

The document also holds the ``population`` (every countable customer: what a tier's share is a
share of), and each segment's daily moves in and out over the last ``FLOW_DAYS`` days, from the
members' segment histories (the moves the segment events announced). ``trends`` keeps one point
per day the job ran.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from audience.domain.profile import Profile
from audience.domain.segments import events_for

POPULATION = "all"  # the tally of every countable customer (no segment id lacks a "kind:" prefix)
FLOW_DAYS = 30  # the daily moves kept: what the segment histories still hold
TREND_DAYS = 400  # the daily points kept


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
    members: int = 0  # who allow personalization: the membership index's count

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
                   revenue30d_squares=Decimal(sums["revenue30d_squares"]),
                   members=int(sums.get("members", 0)))  # fmt: skip

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
            "members": self.members,
        }


def tally(profiles: Iterable[Profile], now: datetime) -> dict[str, Tally]:
    """segment id -> the tally of its members among ``profiles`` (the live ones): the figures of
    those who allow analytics, the count of those who allow personalization; ``POPULATION``:
    everyone's."""
    found: dict[str, Tally] = {}
    for profile in profiles:
        if profile.merged_into is not None:
            continue
        counted, member = profile.allows("analytics"), profile.allows("personalization")
        for segment in [*profile.segment_ids(), POPULATION]:
            held = found.setdefault(segment, Tally())
            if counted:
                held.add(profile, now)
            held.members += member
    return found


def flows(profiles: Iterable[Profile], now: datetime) -> Counter[str]:
    """``"<segment id>|<day>|in"`` (or ``out``) -> the customers who entered (left) the segment
    that day, over the last ``FLOW_DAYS`` days, from the moves each history holds (customers who
    allow analytics)."""
    since = now - timedelta(days=FLOW_DAYS)
    found: Counter[str] = Counter()
    for profile in profiles:
        if profile.merged_into is not None or not profile.allows("analytics"):
            continue
        for change in profile.segment_history:
            if change.at < since:
                continue
            for event in events_for(profile.customer_id, change):
                way = "in" if event.detail_type == "Audience Entered" else "out"
                found[f"{event.detail.segment_id}|{change.at.date().isoformat()}|{way}"] += 1
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
    members: int | None = Field(default=None, description="who allow personalization (none: measured by an older job)")


@dataclass(frozen=True)
class Measured:
    """The stored document, read: every segment's KPIs, the population's, the daily moves."""

    segments: dict[str, SegmentKpis]
    population: SegmentKpis | None = None
    moves: dict[str, int] | None = None  # "<segment id>|<day>|in|out" -> customers

    def get(self, segment: str) -> SegmentKpis | None:
        return self.segments.get(segment)


NOTHING_MEASURED = Measured({})


def stored_kpis(text: str | None) -> Measured:
    """Every segment's KPIs from the stored document (nothing before the first measure)."""
    if text is None:
        return NOTHING_MEASURED
    document = json.loads(text)
    at = document["asOf"]
    population = document.get("population")
    return Measured(
        {s: SegmentKpis.model_validate({**k, "asOf": at}) for s, k in document["segments"].items()},
        SegmentKpis.model_validate({**population, "asOf": at}) if population else None,
        document.get("moves"),
    )


def kpis(tallies: dict[str, Tally], now: datetime, moves: Counter[str] | None = None) -> dict[str, Any]:
    """The stored document ``GET /v1/segments`` reads (one object: a request reads it whole)."""
    population = tallies.get(POPULATION, Tally())
    return {
        "asOf": now.isoformat(),
        "population": population.to_json(),
        "segments": {s: t.to_json() for s, t in sorted(tallies.items()) if s != POPULATION},
        "moves": dict(sorted((moves or Counter()).items())),
    }


def trend_point(figures: dict[str, Any]) -> dict[str, Any]:
    """The day's point of the trends document: each segment's members and customers."""
    return {
        "asOf": figures["asOf"],
        "population": figures["population"]["customers"],
        "segments": {s: [k["members"], k["customers"]] for s, k in figures["segments"].items()},
    }


def with_point(trends: str | None, figures: dict[str, Any], day: date) -> dict[str, Any]:
    """The trends document with the day's point (a second run the same day replaces it)."""
    days: dict[str, Any] = json.loads(trends)["days"] if trends else {}
    days[day.isoformat()] = trend_point(figures)
    return {"days": dict(sorted(days.items())[-TREND_DAYS:])}
