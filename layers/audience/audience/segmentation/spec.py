"""A segmentation model as plain JSON, and scoring one customer from it in plain Python.

The spec holds everything fitted at training (the transforms, the RFM quintile boundaries,
the clusters and their names), so the stream function can classify a customer with no
population at hand and without importing numpy or scikit-learn. Training checks that this
scoring agrees with scikit-learn's on every customer.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The widely used ten-segment map on the two-digit RF score (../shared/REFERENCE.md).
RF_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("[1-2][1-2]", "Hibernating"),
    ("[1-2][3-4]", "At Risk"),
    ("[1-2]5", "Can't Lose Them"),
    ("3[1-2]", "About to Sleep"),
    ("33", "Need Attention"),
    ("[3-4][4-5]", "Loyal Customers"),
    ("41", "Promising"),
    ("51", "New Customers"),
    ("[4-5][2-3]", "Potential Loyalists"),
    ("5[4-5]", "Champions"),
)
NO_ORDERS = "Prospects"
# What marketers do with each (the learned segments are named by their median member's cell).
ACTIONS = {
    "Champions": "Reward them: early access, loyalty perks; ask for reviews and referrals.",
    "Loyal Customers": "Upsell higher-value products; invite them to the loyalty programme.",
    "Potential Loyalists": "Offer membership or loyalty perks; recommend related products.",
    "New Customers": "Onboard them: a welcome series and an incentive for the second order.",
    "Promising": "Build the habit: brand content and a time-limited offer on the next order.",
    "Need Attention": "Reactivate with limited-time offers based on what they bought.",
    "About to Sleep": "Catch them before they go: popular products and a renewal discount.",
    "At Risk": "Win them back personally: reminders of what they liked and a strong offer.",
    "Can't Lose Them": "Win them back at any reasonable cost: personal outreach, ask what went wrong.",
    "Hibernating": "Reactivate cheaply with relevant products, or stop spending on them.",
    NO_ORDERS: "Convert them: a first-order incentive.",
}


class Transform(BaseModel):
    """One input column: log1p if skewed, the median that fills a missing value (and whether a
    missing flag column follows the inputs), winsorising bounds."""

    model_config = ConfigDict(frozen=True)

    feature: str
    log: bool
    median: float
    flag: bool
    clip: tuple[float, float]


class Rfm(BaseModel):
    """Quintile boundaries (four cut points each) and the RF-pattern names."""

    model_config = ConfigDict(frozen=True)

    recency: list[float]
    frequency: list[float]
    monetary: list[float]
    names: list[tuple[str, str]] = Field(default_factory=lambda: list(RF_SEGMENTS))
    no_orders: str = NO_ORDERS
    monetary_percentiles: list[float] = Field(
        default_factory=list, description="the 1st to 99th percentiles of buyers' net spend (top-spender triggers)"
    )

    def score(self, recency: float | None, frequency: float, monetary: float) -> tuple[int, int, int, str]:
        """R, F and M from 1 to 5 (5 best: most recent, most frequent, highest spend) and the name."""
        if recency is None or frequency <= 0:
            return 0, 0, 0, self.no_orders
        r = 5 - bisect_left(self.recency, recency)
        f = 1 + bisect_left(self.frequency, frequency)
        m = 1 + bisect_left(self.monetary, monetary)
        pattern = f"{r}{f}"
        name = next((n for p, n in self.names if re.fullmatch(p, pattern)), pattern)
        return r, f, m, name


class Clusters(BaseModel):
    """Learned segments: nearest centroid (k-means) or the most probable component (a Gaussian
    mixture with full covariances, through the Cholesky factors of its precisions)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["kmeans", "gmm"]
    centers: list[list[float]]
    names: list[str]
    descriptions: list[str] = Field(default_factory=list, description="one line per segment")
    precisions_cholesky: list[list[list[float]]] = Field(default_factory=list)
    log_weights: list[float] = Field(default_factory=list)

    def assign(self, x: Sequence[float]) -> int:
        if self.kind == "kmeans":
            distances = [sum((a - b) ** 2 for a, b in zip(x, c, strict=True)) for c in self.centers]
            return distances.index(min(distances))
        scores = self.log_scores(x)
        return scores.index(max(scores))

    def log_scores(self, x: Sequence[float]) -> list[float]:
        """A mixture's log weight + log density per component, up to a shared constant."""
        scores = []
        for mean, chol, log_weight in zip(self.centers, self.precisions_cholesky, self.log_weights, strict=True):
            centred = [a - b for a, b in zip(x, mean, strict=True)]
            y = [sum(centred[i] * chol[i][j] for i in range(len(centred))) for j in range(len(centred))]
            log_det = sum(math.log(chol[j][j]) for j in range(len(centred)))
            scores.append(log_weight + log_det - 0.5 * sum(v * v for v in y))
        return scores


class SegmentSpec(BaseModel):
    """What the retrain function stores as ``models/<version>/spec.json``."""

    model_config = ConfigDict(frozen=True)

    version: str
    features: list[str]
    transforms: list[Transform]
    scale_mean: list[float]
    scale_std: list[float]
    rfm: Rfm
    clusters: Clusters
    percentiles: dict[str, list[float]] = Field(
        default_factory=dict, description="per feature, the population's 1st..99th percentiles (explanations)"
    )

    def percentile(self, feature: str, value: float | None) -> int | None:
        """The share of the population (in whole percent) at or below ``value``."""
        cuts = self.percentiles.get(feature)
        return None if value is None or not cuts else bisect_right(cuts, value)

    def scores(self, row: Sequence[float | None]) -> list[float]:
        """Per segment: the distance to its centre (k-means; the nearest wins) or the log of its
        weighted density (a mixture; the highest wins), in the standardised space."""
        x = self.vector(row)
        if self.clusters.kind == "kmeans":
            return [math.dist(x, c) for c in self.clusters.centers]
        return self.clusters.log_scores(x)

    def vector(self, row: Sequence[float | None]) -> list[float]:
        """The standardised vector the clusters live in: transformed inputs, then missing flags."""
        values, flags = [], []
        for t, raw in zip(self.transforms, row, strict=True):
            value = t.median if raw is None else (math.log1p(max(raw, 0.0)) if t.log else raw)
            values.append(min(max(value, t.clip[0]), t.clip[1]))
            if t.flag:
                flags.append(1.0 if raw is None else 0.0)
        return [(v - m) / s for v, m, s in zip(values + flags, self.scale_mean, self.scale_std, strict=True)]

    def segment(self, row: Sequence[float | None]) -> int:
        return self.clusters.assign(self.vector(row))
