"""Synthetic customers drawn from known segments, for model tests and the training benchmark."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from audience.domain.profile import DayTotals, Profile

NOW = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass(frozen=True)
class Archetype:
    name: str
    recency_days: float  # median
    orders: float
    order_value: float
    events: float
    tenure_days: float


ARCHETYPES = (
    Archetype("champions", 4, 25, 120, 400, 900),
    Archetype("lapsed one-off", 400, 1, 25, 6, 500),
    Archetype("regulars", 35, 7, 45, 90, 700),
    Archetype("big spenders", 200, 3, 900, 40, 600),  # all beyond the 90-day window
)


def customers(n: int, seed: int = 1, shift: float = 1.0, now: datetime = NOW) -> tuple[list[Profile], list[int]]:
    """``n`` profiles and the index of the archetype each was drawn from. ``shift`` scales every
    customer's recency (2.0: everyone has been away twice as long): a deliberate drift."""
    drawn = list(draw(n, seed, shift, now))
    return [p for p, _ in drawn], [k for _, k in drawn]


def draw(n: int, seed: int = 1, shift: float = 1.0, now: datetime = NOW) -> Iterator[tuple[Profile, int]]:
    """The profiles one at a time, each with its archetype (a million need not be held at once)."""
    rng = random.Random(seed)
    for i in range(n):
        kind = rng.randrange(len(ARCHETYPES))
        a = ARCHETYPES[kind]
        orders = max(1, round(a.orders * rng.lognormvariate(0, 0.15)))
        recency = a.recency_days * rng.lognormvariate(0, 0.15) * shift
        tenure = max(recency + 1, a.tenure_days * rng.lognormvariate(0, 0.15))
        value = Decimal(str(round(a.order_value * rng.lognormvariate(0, 0.15), 2)))
        last = now - timedelta(days=recency)
        first_order = last - timedelta(days=(tenure - recency) * 0.8) if orders > 1 else last
        revenue = value * orders
        daily = {last.date(): DayTotals(orders=1, revenue=value)} if recency < 90 else {}
        profile = Profile.model_construct(
            customer_id=f"c{seed}-{i:07d}",
            merged_into=None,
            known=True,
            identities=[],
            first_seen=now - timedelta(days=tenure),
            last_seen=last,
            event_counts={"track": round(a.events * rng.lognormvariate(0, 0.15))},
            track_counts={},
            orders=orders,
            revenue=revenue,
            refunds=0,
            refunded=Decimal(0),
            first_order_at=first_order,
            last_order_at=last,
            daily=daily,
            hours=[0] * 24,
            category_spend={},
            seconds_on_site=0,
            clicks=0,
            max_scroll_depth=None,
            last_page_at=None,
            content_views={},
            products={},
            exposures={},
            traits={},
            context={},
            groups={},
            unsubscribed_at=None,
            consent={},
            ledger={},
            segments=None,
            tier=None,
            predictions=None,
            segment_history=[],
            outbox=[],  # every field given: a default_factory costs model_construct an inspect.signature call
            seen=[],
            applied={},
            version=0,
        )
        yield profile, kind
