"""The features segments are learned from, computed from a profile as of a moment.

Plain Python (no numpy): the stream function computes one profile's features to score it,
and the retrain function a million of them. ``None`` is a missing value (no order yet, one
order only): the model imputes it and flags it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from audience.domain.profile import Profile

FEATURES = (
    "recency_days",  # since the last order
    "frequency",  # orders
    "monetary",  # net revenue (refunds taken off), base currency
    "average_order_value",
    "days_between_orders",  # mean inter-purchase time
    "revenue_90d",
    "engagement",  # events of any kind
    "tenure_days",  # since first seen
)
# Money and counts are skewed: their logarithm (of 1 + x) is what distances should compare.
SKEWED = frozenset({"recency_days", "frequency", "monetary", "average_order_value", "days_between_orders",
                    "revenue_90d", "engagement", "tenure_days"})  # fmt: skip

Row = tuple[float | None, ...]


def features(profile: Profile, as_of: datetime) -> Row:
    """One profile's features, in ``FEATURES`` order."""
    orders = profile.orders
    net = float(profile.revenue - profile.refunded)
    return (
        _days(as_of, profile.last_order_at),
        float(orders),
        max(net, 0.0),
        float(profile.revenue / orders) if orders else None,
        profile.mean_days_between_orders,
        float(sum((t.revenue for d, t in profile.daily.items() if (as_of.date() - d).days < 90), Decimal(0))),
        float(sum(profile.event_counts.values())),
        _days(as_of, profile.first_seen),
    )


def rfm_inputs(row: Sequence[float | None]) -> tuple[float | None, float, float]:
    """Recency, frequency and monetary value from a feature row."""
    return row[0], float(row[1] or 0), float(row[2] or 0)


def _days(as_of: datetime, moment: datetime | None) -> float | None:
    return max((as_of - moment).total_seconds() / 86400, 0.0) if moment else None
