"""The value model as plain JSON, and a customer's predictions from it in plain Python.

The retrain job fits the models (``value/training.py``, numpy and scikit-learn) and stores
this spec; the stream, the rescore and imports compute a customer's ``predictions`` from it
with ``math`` only: BG/NBD (or MBG/NBD) for P(alive) and expected orders, Gamma-Gamma for the
order value, the discounted 12-month value from both, and the churn risk from whichever model
won the comparison (BG/NBD's probability of no order in the horizon, or gradient-boosted trees
exported node by node), and the 80 % and 95 % intervals of the orders and the 12-month value
(``value/intervals.py``). The churn drivers are occlusion effects: how much the risk would fall
were the customer typical (the population median) in that one feature.

A customer's history is their order days (orders on the same day count once, as the models
assume) and the spend per day, from the profile's order ledger; time is in days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.predictions import Driver, Interval, Predictions
from audience.domain.profile import Profile
from audience.value import intervals, scoring

CHURN_FEATURES = (
    "recency_days",  # since the last order day
    "order_days",  # days with an order
    "tenure_days",  # since the first order day
    "spend",  # total, base currency
    "average_spend",  # per order day
    "order_days_90d",  # in the last 90 days
    "spend_90d",
    "days_between_orders",  # mean gap between order days (missing for one-time buyers)
)
SEASON_FEATURES = ("season_sin", "season_cos")  # the day of the year on a circle (trees models of issue 26 on)
DRIVERS = 3  # churn drivers kept on the profile
YEAR_DAYS = 365.25
PERIODS = (90.0, YEAR_DAYS / 2, YEAR_DAYS * 3 / 4, YEAR_DAYS)  # the 12 months in four, the first = 90 days

Row = list[float | None]


@dataclass(frozen=True)
class OrderHistory:
    """A customer's order days (sorted, distinct, as day ordinals) and the spend on each."""

    days: list[int]
    spend: list[float]

    @classmethod
    def of(cls, profile: Profile) -> OrderHistory:
        """From the order ledger; orders it cannot tell apart (sent without an ``order_id``) still
        mark the first and last order days."""
        per_day: dict[int, float] = {}
        for key, entry in profile.ledger.items():
            if key[0] == "o":
                per_day[entry.day.toordinal()] = per_day.get(entry.day.toordinal(), 0.0) + float(entry.amount)
        for moment in (profile.first_order_at, profile.last_order_at):
            if moment is not None:
                per_day.setdefault(moment.date().toordinal(), 0.0)
        ordered = sorted(per_day)
        return cls(ordered, [per_day[d] for d in ordered])

    def summary(self, today: int) -> tuple[float, float, float, float]:
        """(x, t_x, T, mean spend of the repeat order days) as of day ``today``."""
        first, last, n = self.days[0], self.days[-1], len(self.days)
        zbar = sum(self.spend[1:]) / (n - 1) if n > 1 else 0.0
        return n - 1.0, float(last - first), float(today - first), zbar

    def features(self, today: int) -> Row:
        """``CHURN_FEATURES`` as of day ``today`` (the days are all on or before it)."""
        n, total = len(self.days), sum(self.spend)
        recent = [s for d, s in zip(self.days, self.spend, strict=True) if today - d < 90]
        return [
            float(today - self.days[-1]),
            float(n),
            float(today - self.days[0]),
            total,
            total / n,
            float(len(recent)),
            sum(recent),
            (self.days[-1] - self.days[0]) / (n - 1) if n > 1 else None,
        ]


def season(day: int) -> list[float]:
    """``SEASON_FEATURES`` of day ordinal ``day``: where it falls in the year, on the unit circle
    (31 December and 1 January are neighbours)."""
    angle = 2 * math.pi * date.fromordinal(day).timetuple().tm_yday / YEAR_DAYS
    return [math.sin(angle), math.cos(angle)]


class PurchaseModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["bgnbd", "mbgnbd"]
    r: float
    alpha: float
    a: float
    b: float
    draws: list[tuple[float, float, float, float]] = Field(
        default_factory=list,
        description="(r, alpha, a, b) refitted on resampled customers: the intervals' parameter uncertainty",
    )

    @property
    def modified(self) -> bool:
        return self.kind == "mbgnbd"

    def params(self) -> tuple[float, float, float, float]:
        return self.r, self.alpha, self.a, self.b

    def uncertain(self) -> list[tuple[float, float, float, float]]:
        """The parameter draws the intervals average over (the point estimate when none were stored)."""
        return self.draws or [self.params()]


class SpendModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    p: float
    q: float
    v: float
    mean: float = Field(description="a customer without repeat orders: p v / (q - 1), or the observed mean if q <= 1")


class Tree(BaseModel):
    """One regression tree of a gradient-boosting ensemble, as parallel node arrays (node 0 is
    the root; a missing value goes the way ``missing_left`` says)."""

    model_config = ConfigDict(frozen=True)

    feature: list[int]
    threshold: list[float]
    missing_left: list[bool]
    left: list[int]
    right: list[int]
    value: list[float]
    leaf: list[bool]

    @cached_property
    def _nodes(self) -> list[tuple[int, float, bool, int, int, float, bool]]:
        return list(
            zip(
                self.feature,
                self.threshold,
                self.missing_left,
                self.left,
                self.right,
                self.value,
                self.leaf,
                strict=True,
            )
        )

    @cached_property
    def features(self) -> frozenset[int]:
        return frozenset(f for f, leaf in zip(self.feature, self.leaf, strict=True) if not leaf)

    def __call__(self, row: Row) -> float:
        nodes = self._nodes
        feature, threshold, missing_left, left, right, value, leaf = nodes[0]
        while not leaf:
            x = row[feature]
            go_left = missing_left if x is None else x <= threshold
            feature, threshold, missing_left, left, right, value, leaf = nodes[left if go_left else right]
        return value


class ChurnModel(BaseModel):
    """How ``churnRisk`` is computed: P(no order in ``horizon_days``) from the purchase model
    (``btyd``) or from boosted trees on ``CHURN_FEATURES`` (``trees``; and the season, since issue
    26), their log-odds times ``scale`` (the calibration)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["btyd", "trees"]
    horizon_days: int = 90
    typical: list[float | None] = Field(description="the population's medians: the drivers' reference")
    baseline: float = 0.0
    trees: list[Tree] = Field(default_factory=list)
    scale: float = Field(default=1.0, description="the calibration: a factor on the trees' log-odds (1: none)")
    season: bool = Field(default=False, description="the trees' rows end with SEASON_FEATURES of the day scored")

    def row(self, history: OrderHistory, today: int) -> Row:
        """What the model scores: ``CHURN_FEATURES`` as of ``today``, then the season if it uses it."""
        extra: Row = [*season(today)] if self.season else []
        return history.features(today) + extra


class ValueSpec(BaseModel):
    """What the retrain function stores as ``values/<version>/spec.json`` and puts in force."""

    model_config = ConfigDict(frozen=True)

    version: str
    as_of: datetime
    purchases: PurchaseModel
    spend: SpendModel
    churn: ChurnModel
    annual_discount: float = 0.1
    clv_percentiles: list[float] = Field(default_factory=list, description="buyers' 1st..99th clv12m percentiles")

    def risk(self, row: Row) -> float:
        """The churn risk of a customer whose row (``ChurnModel.row``: ``CHURN_FEATURES``, then the
        season for a model trained with it) is ``row``."""
        if self.churn.kind == "trees":
            return _logistic(self.churn.scale * (self.churn.baseline + sum(tree(row) for tree in self.churn.trees)))
        recency, order_days, tenure = (float(v or 0.0) for v in row[:3])
        x, t_x = max(order_days - 1, 0.0), max(tenure - recency, 0.0)  # an occluded recency may exceed the tenure
        return scoring.p_no_order(
            *self.purchases.params(), self.churn.horizon_days, x, t_x, tenure, self.purchases.modified
        )

    def drivers(self, row: Row, risk: float) -> list[Driver]:
        """The features whose typical value would lower the risk most (occlusion: one feature at a
        time set to the population's median, the rest kept; for trees only those splitting on it
        are walked again)."""
        trees = self.churn.trees
        parts = [tree(row) for tree in trees] if self.churn.kind == "trees" else []
        effects = []
        for i, (name, typical) in enumerate(zip(CHURN_FEATURES, self.churn.typical, strict=True)):
            if row[i] == typical or (not trees and i > 2):
                continue
            occluded = [*row[:i], typical, *row[i + 1 :]]
            if trees:
                raw = (
                    self.churn.baseline
                    + sum(parts)
                    + sum(tree(occluded) - parts[j] for j, tree in enumerate(trees) if i in tree.features)
                )
                effect = risk - _logistic(self.churn.scale * raw)
            else:
                effect = risk - self.risk(occluded)
            if effect > 0:
                effects.append(Driver(feature=name, value=row[i], typical=typical, effect=round(effect, 4)))
        return sorted(effects, key=lambda d: -d.effect)[:DRIVERS]

    def values(self, x: float, t_x: float, big_t: float, zbar: float) -> tuple[float, float, float, float]:
        """(P(alive), expected orders in 90 days, expected order value, 12-month value): the 12
        months' expected orders in four periods (the first is the 90 days), each discounted at its middle."""
        params, modified = self.purchases.params(), self.purchases.modified
        alive = scoring.p_alive(*params, x, t_x, big_t, modified)
        spend = self.spend
        value = scoring.expected_spend(spend.p, spend.q, spend.v, x, zbar) if x > 0 and zbar > 0 else spend.mean
        cumulative = scoring.expected_orders_many(*params, PERIODS, x, t_x, big_t, modified)
        bounds, totals = (0.0, *PERIODS), (0.0, *cumulative)
        clv = sum(
            (totals[i + 1] - totals[i])
            * value
            / (1 + self.annual_discount) ** ((bounds[i] + bounds[i + 1]) / 2 / YEAR_DAYS)
            for i in range(len(PERIODS))
        )
        orders_90d = cumulative[0]
        return alive, orders_90d, value, clv

    def intervals(
        self, x: float, t_x: float, big_t: float, zbar: float, value: float, clv: float
    ) -> dict[str, Interval]:
        """80 % and 95 % prediction intervals of the orders in the next 90 days and of the
        12-month value (``value``, ``clv``: what ``values`` gave): the purchase model's distribution
        of the count, averaged over the parameter draws, and the spend of those orders by the
        Gamma-Gamma posterior, discounted as ``clv`` is on average."""
        draws, modified, spend = self.purchases.uncertain(), self.purchases.modified, self.spend
        orders_90d = intervals.order_counts(draws, PERIODS[0], x, t_x, big_t, modified)
        orders_12m = intervals.order_counts(draws, YEAR_DAYS, x, t_x, big_t, modified)
        expected_12m = sum(n * p for n, p in enumerate(orders_12m))
        discount = clv / (expected_12m * value) if expected_12m * value > 0 else 1.0
        found: dict[str, Interval] = {}
        values = intervals.value_intervals(orders_12m, spend.p, spend.q, spend.v, x, zbar)
        for level, (low_value, high_value) in zip(intervals.LEVELS, values, strict=True):
            name = f"p{round(level * 100)}"
            found[f"expected_orders_90d_{name}"] = intervals.count_interval(orders_90d, level)
            found[f"clv_12m_{name}"] = (math.floor(low_value * discount), math.ceil(high_value * discount))
        return found

    def predict(self, profile: Profile, now: datetime) -> Predictions | None:
        """The customer's predictions as of ``now`` (None for a customer with no order)."""
        if profile.first_order_at is None:
            return None
        history, today = OrderHistory.of(profile), now.date().toordinal()
        history = _until(history, today)
        if not history.days:
            return None
        summary = history.summary(today)
        alive, orders_90d, value, clv = self.values(*summary)
        return Predictions(
            **self.intervals(*summary, value, clv),
            p_alive=_round(alive),
            expected_orders_90d=_round(orders_90d),
            expected_order_value=round(value, 2),
            clv_12m=round(clv, 2),
            churn_risk=_round(self.risk(self.churn.row(history, today))),
            model_version=self.version,
            as_of=now,
        )

    def refreshed(self, profile: Profile, now: datetime, tolerance: float = 0.0) -> Profile:
        """``profile`` with its predictions as of ``now``; itself when they moved by no more than
        ``tolerance`` (see ``Predictions.moved``)."""
        predicted = self.predict(profile, now)
        if predicted is None:
            return profile if profile.predictions is None else profile.model_copy(update={"predictions": None})
        if not predicted.moved(profile.predictions, tolerance) and profile.predictions is not None:
            return profile
        return profile.model_copy(update={"predictions": predicted})

    def explain(self, profile: Profile, at: datetime) -> list[Driver]:
        """The top drivers of the customer's churn risk as of ``at`` (none for a non-buyer)."""
        history = _until(OrderHistory.of(profile), at.date().toordinal()) if profile.first_order_at else None
        if not history or not history.days:
            return []
        row = self.churn.row(history, at.date().toordinal())
        return self.drivers(row, self.risk(row))

    def clv_percentile(self, percent: int) -> float | None:
        """The clv12m at which the top ``percent`` % of buyers start (None before a fit)."""
        return self.clv_percentiles[99 - percent] if len(self.clv_percentiles) == 99 else None


def _until(history: OrderHistory, today: int) -> OrderHistory:
    if not history.days or history.days[-1] <= today:
        return history
    kept = [(d, s) for d, s in zip(history.days, history.spend, strict=True) if d <= today]
    return OrderHistory([d for d, _ in kept], [s for _, s in kept])


def _logistic(raw: float) -> float:
    return 1 / (1 + math.exp(-raw))


def _round(value: float) -> float:
    """Six significant digits; below 1e-12, zero (a probability of 1e-150 says nothing more)."""
    return float(f"{value:.6g}") if abs(value) >= 1e-12 else 0.0
