"""What a segmentation does over time, from the buyers' order days: how often a customer who
barely moved changes segment from one month to the next, and how differently the segments
retain their members.

The profile keeps its aggregates only as of now, so the past is rebuilt from each buyer's order
days and the spend on each (the value model's input): recency in days, frequency in order days
(several orders on one day count once, where the profile counts orders) and spend. Only recency,
frequency and spend are rebuilt: the segments are learned from those three alone.

- **Membership churn**: the model as trained (its stored ranks and centres, as the daily rescore
  places customers between retrains) at the end of each of the last twelve 30-day months; among
  the buyers whose three ranks all moved less than a decile in the month, the share whose segment
  changed. A segmentation whose borders cut through crowds redraws customers who did nothing.
- **Retention by segment**: a model with the same k fitted on the buyers as they were ``horizon``
  days ago (nothing after that day is read to fit it), then each segment's share of members who
  ordered in the ``horizon`` days after: the gap between the best and the worst segment says how
  much the segments tell apart who stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from audience.segmentation.features import FEATURES
from audience.segmentation.training import (
    RFM_COLUMNS,
    Matrix,
    Trained,
    TrainingConfig,
    buyers,
    model,
    model_space,
    name_segments,
    rfm_boundaries,
)

MONTH_DAYS = 30
MONTHS = 12
RANK_STEP = 0.1  # "moved less than a decile": each of the three ranks, 0 to 1
MEMBERSHIP_GOAL = 0.10  # at most this share of the customers who barely moved change segment
HORIZON_DAYS = 90
MIN_BUYERS = 50  # fewer at a month's start: the month is left out


class OrderDays(Protocol):
    """A buyer's order days (day ordinals, sorted, distinct) and the spend on each."""

    @property
    def days(self) -> Sequence[int]: ...

    @property
    def spend(self) -> Sequence[float]: ...


@dataclass(frozen=True)
class Ledger:
    """Every customer's order days as flat columns (customer ``owner[i]`` ordered on ``day[i]``)."""

    owner: NDArray[np.int64]
    day: NDArray[np.int64]
    spend: NDArray[np.float64]
    customers: int

    @classmethod
    def of(cls, orders: Sequence[OrderDays | None]) -> Ledger:
        sizes = np.array([len(o.days) if o else 0 for o in orders], dtype=np.int64)
        owner = np.repeat(np.arange(len(orders), dtype=np.int64), sizes)
        day = np.array([d for o in orders if o for d in o.days], dtype=np.int64)
        spend = np.array([s for o in orders if o for s in o.spend], dtype=float)
        return cls(owner, day, spend, len(orders))

    def rows(self, today: int) -> Matrix:
        """Rows of ``FEATURES`` as of day ``today``: recency, frequency (order days) and spend;
        NaN elsewhere (and for a customer with no order by then)."""
        keep = self.day <= today
        owner, day = self.owner[keep], self.day[keep]
        n = np.bincount(owner, minlength=self.customers).astype(float)
        last = np.full(self.customers, -np.inf)
        np.maximum.at(last, owner, day.astype(float))
        rows = np.full((self.customers, len(FEATURES)), np.nan)
        bought = n > 0
        recency, frequency, monetary = RFM_COLUMNS
        rows[bought, recency] = today - last[bought]
        rows[bought, frequency] = n[bought]
        rows[bought, monetary] = np.bincount(owner, weights=self.spend[keep], minlength=self.customers)[bought]
        return rows

    def ordered_between(self, start: int, end: int) -> NDArray[np.bool_]:
        """Whether each customer has an order day in (start, end]."""
        inside = (self.day > start) & (self.day <= end)
        return np.bincount(self.owner[inside], minlength=self.customers) > 0


def membership_churn(pipeline: Pipeline, ledger: Ledger, today: int, months: int = MONTHS) -> dict[str, Any]:
    """Month by month over the last ``months`` months: the buyers at the month's start, those whose
    ranks all moved less than ``RANK_STEP`` ("steady"), how many of those changed segment, and
    how many of all changed; pooled over the months."""
    table: list[dict[str, Any]] = []
    first = int(ledger.day.min()) if len(ledger.day) else today
    for i in range(months, 0, -1):
        start, end = today - i * MONTH_DAYS, today - (i - 1) * MONTH_DAYS
        before, after = ledger.rows(start), ledger.rows(end)
        present = buyers(before)
        if start < first or present.sum() < MIN_BUYERS:
            continue
        z0, z1 = model_space(pipeline, before[present]), model_space(pipeline, after[present])
        segments = pipeline[-1]
        changed = segments.predict(z0) != segments.predict(z1)
        steady = np.abs(z1 - z0).max(axis=1) < RANK_STEP
        table.append({"start": _iso(start), "end": _iso(end), "buyers": int(present.sum()),
                      "steady": int(steady.sum()), "steady_changed": int((changed & steady).sum()),
                      "changed": int(changed.sum())})  # fmt: skip
    steady_total = sum(m["steady"] for m in table)
    everyone = sum(m["buyers"] for m in table)
    return {
        "rank_step": RANK_STEP,
        "goal": MEMBERSHIP_GOAL,
        "churn": sum(m["steady_changed"] for m in table) / steady_total if steady_total else None,
        "all_churn": sum(m["changed"] for m in table) / everyone if everyone else None,
        "months": table,
    }


def retention_by_segment(
    ledger: Ledger, today: int, k: int, config: TrainingConfig, horizon: int = HORIZON_DAYS
) -> dict[str, Any] | None:
    """A ``k``-segment model fitted on the buyers as of ``today - horizon``, and each segment's
    share of members who ordered in the ``horizon`` days after; None when too few buyers."""
    cut = today - horizon
    rows = ledger.rows(cut)
    present = buyers(rows)
    if present.sum() < max(MIN_BUYERS, 2 * k):
        return None
    fitted = model(k, config).fit(rows[present])
    labels = fitted.predict(rows)
    names, _ = name_segments(rows, model_space(fitted, rows), labels, k + 1, rfm_boundaries(rows, config.rf_segments))
    retained = ledger.ordered_between(cut, today)
    segments: list[dict[str, Any]] = []
    for i in range(k):
        members = present & (labels == i)
        if members.any():
            segments.append({"name": names[i], "customers": int(members.sum()),
                             "retained": float(retained[members].mean())})  # fmt: skip
    best = max(segments, key=lambda s: s["retained"])
    worst = min(segments, key=lambda s: s["retained"])
    return {
        "cutoff": _iso(cut),
        "horizon_days": horizon,
        "k": k,
        "segments": segments,
        "best": best["name"],
        "worst": worst["name"],
        "gap": best["retained"] - worst["retained"],
    }


def over_time(
    trained: Trained, orders: Sequence[OrderDays | None], today: int, config: TrainingConfig
) -> dict[str, Any]:
    """Both figures for a trained model; ``orders`` in the order of the rows it was trained on."""
    ledger = Ledger.of(orders)
    return {
        "membership": membership_churn(trained.pipeline, ledger, today),
        "retention": retention_by_segment(ledger, today, int(trained.metrics["k"]), config),
    }


def _iso(day: int) -> str:
    return date.fromordinal(day).isoformat()
