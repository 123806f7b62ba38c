"""A customer's timeline: what they did and what was done to them, newest first, from the
profile alone (one read): the days they ordered or browsed (the day buckets the windows keep),
their first and last order, each segment move with its reason, each experiment they were
exposed to, and each consent decision."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from audience.domain.profile import Profile

Kind = Literal["orders", "browsing", "move", "exposure", "consent", "seen"]


class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    at: AwareDatetime = Field(description="when (a day's entries: the start of that UTC day)")
    kind: Kind
    summary: str = Field(description="one line, for people")
    amount: float | None = Field(default=None, description="orders: the day's revenue (base currency)")
    count: int | None = Field(default=None, description="orders: how many; browsing: page views")


class Timeline(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    currency: str
    entries: list[TimelineEntry] = Field(description="newest first")


def timeline(profile: Profile, currency: str) -> Timeline:
    entries: list[TimelineEntry] = []
    for day, totals in profile.daily.items():
        start = datetime.combine(day, time(), UTC)
        if totals.orders:
            plural = "s" if totals.orders != 1 else ""
            said = f"{totals.orders} order{plural}, {totals.revenue:,.2f} {currency}"
            entries.append(TimelineEntry(at=start, kind="orders", amount=float(totals.revenue), count=totals.orders,
                                         summary=said))  # fmt: skip
        if totals.views:
            plural = "s" if totals.views != 1 else ""
            said = f"{totals.views} page view{plural}, {totals.visits} visit(s)"
            entries.append(TimelineEntry(at=start, kind="browsing", count=totals.views, summary=said))
    for change in profile.segment_history:
        moved = [f"{what}: {old or 'none'} → {new or 'none'}" for what, new, old in (
            ("segment", change.segment, change.previous), ("RFM cell", change.rfm, change.previous_rfm),
            ("tier", change.tier, change.previous_tier)) if new != old]  # fmt: skip
        entries.append(TimelineEntry(at=change.at, kind="move",
                                     summary=f"{'; '.join(moved) or 'placed again'} ({change.reason})"))  # fmt: skip
    for experiment, exposure in profile.exposures.items():
        said = f"exposed to experiment {experiment}, variant {exposure.variant}"
        entries.append(TimelineEntry(at=exposure.at, kind="exposure", summary=said))
    for purpose, state in profile.consent.items():
        decided = "granted" if state.granted else "refused"
        entries.append(TimelineEntry(at=state.at, kind="consent", summary=f"{purpose} {decided} ({state.source})"))
    if profile.first_seen:
        entries.append(TimelineEntry(at=profile.first_seen, kind="seen", summary="first seen"))
    entries.sort(key=lambda e: e.at, reverse=True)
    return Timeline(customer_id=profile.customer_id, currency=currency, entries=entries)
