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
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from audience.segmentation.features import FEATURES, rfm_inputs

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
# What marketers do with each RFM cell.
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

# The learned segments' own vocabulary: no learned segment bears an RFM cell's (or a default
# tier's) name, so a name never stands for two different groups. A segment is named from its
# median member's R, F and M scores: how recent (the band), how often, how much.
RECENT, COOLING, LAPSED = "recent", "cooling", "lapsed"
LEARNED_NAMES: dict[str, tuple[str, str]] = {  # name -> (band, what marketers do with them)
    "Best Customers": (RECENT, "Reward them: early access, loyalty perks; ask for reviews and referrals."),
    "Frequent Buyers": (RECENT, "Upsell higher-value products; invite them to the loyalty programme."),
    "Rising Big Spenders": (RECENT, "Offer membership or loyalty perks; recommend premium related products."),
    "Returning Buyers": (RECENT, "Build the habit: recommend related products, a loyalty perk on the next order."),
    "First-time Buyers": (RECENT, "Onboard them: a welcome series and an incentive for the second order."),
    "Big Spenders Cooling Off": (COOLING, "Catch them before they go: personal outreach and their favourite products."),
    "Cooling Regulars": (COOLING, "Reactivate with limited-time offers based on what they bought."),
    "Fading One-time Buyers": (COOLING, "Remind them: popular products and a second-order discount."),
    "Lapsed Big Spenders": (LAPSED, "Win them back at any reasonable cost: personal outreach, ask what went wrong."),
    "Lapsed Regulars": (LAPSED, "Win them back: reminders of what they liked and a strong offer."),
    "Dormant One-time Buyers": (LAPSED, "Reactivate cheaply with relevant products, or stop spending on them."),
}
NOT_YET_BOUGHT = "Not Yet Buyers"  # the learned model's no-order segment (the RFM map calls it Prospects)
LEARNED_ACTIONS = {name: action for name, (_, action) in LEARNED_NAMES.items()} | {NOT_YET_BOUGHT: ACTIONS[NO_ORDERS]}
# Models stored before this vocabulary named their segments by the RFM map: their bands.
_RFM_BANDS = {"Champions": RECENT, "Loyal Customers": RECENT, "Potential Loyalists": RECENT,
              "New Customers": RECENT, "Promising": RECENT, "Need Attention": COOLING, "About to Sleep": COOLING,
              "At Risk": LAPSED, "Can't Lose Them": LAPSED, "Hibernating": LAPSED}  # fmt: skip
STOP_SPENDING = frozenset({"Dormant One-time Buyers", "Hibernating"})  # their action: spend nothing more on them


def learned_name(r: int, f: int, m: int) -> str:
    """The learned vocabulary's name for R, F and M scores (1-5, 5 best); 0: no order."""
    if r == 0:
        return NOT_YET_BOUGHT
    big = m >= 4
    if r >= 4:
        if f >= 4:
            return "Best Customers" if big else "Frequent Buyers"
        if f >= 2:
            return "Rising Big Spenders" if big else "Returning Buyers"
        return "First-time Buyers"
    if r == 3:
        return (
            "Big Spenders Cooling Off" if big or f >= 4 else "Cooling Regulars" if f >= 2 else "Fading One-time Buyers"
        )
    return "Lapsed Big Spenders" if big or f >= 4 else "Lapsed Regulars" if f >= 2 else "Dormant One-time Buyers"


def band(r: int) -> str | None:
    """How recent an R score is: recent (4-5), cooling (3), lapsed (1-2); None: no order."""
    return None if r == 0 else RECENT if r >= 4 else COOLING if r == 3 else LAPSED


def base_name(name: str) -> str:
    """A segment's name without the qualifier two segments of one cell get ("X · recent")."""
    return name.split(" · ", 1)[0]


def name_band(name: str) -> str | None:
    known = base_name(name)
    return LEARNED_NAMES[known][0] if known in LEARNED_NAMES else _RFM_BANDS.get(known)


def misleads(name: str, r: int) -> bool:
    """Whether a segment's name (and its action) contradicts a member's own recency: a recent
    buyer told "stop spending", or a lapsed customer in a segment for recent ones, and back."""
    own, theirs = band(r), name_band(name)
    if own is None or theirs is None:
        return False
    if base_name(name) in STOP_SPENDING and own != LAPSED:
        return True
    return {own, theirs} == {RECENT, LAPSED}


class Transform(BaseModel):
    """One input column. A rank transform: ``quantiles`` of the buyers' values, the value's
    place among them from 0 to 1 (scikit-learn's uniform ``QuantileTransformer``). Models stored
    by earlier releases: log1p if skewed, the median that fills a missing value (and whether a
    missing flag column follows the inputs), winsorising bounds."""

    model_config = ConfigDict(frozen=True)

    feature: str
    quantiles: list[float] = Field(default_factory=list)
    log: bool = False
    median: float = 0.0
    flag: bool = False
    clip: tuple[float, float] | None = None

    def value(self, raw: float | None) -> float:
        if self.quantiles:
            return rank(self.quantiles, raw or 0.0)
        value = self.median if raw is None else (math.log1p(max(raw, 0.0)) if self.log else raw)
        return value if self.clip is None else min(max(value, self.clip[0]), self.clip[1])


BOUNDS = 1e-7  # scikit-learn's: a value this close to the lowest (highest) quantile ranks 0 (1)


def rank(quantiles: Sequence[float], value: float) -> float:
    """Where ``value`` sits among ``quantiles`` (equally spaced references from 0 to 1), as
    scikit-learn's uniform quantile transform computes it: ties take the middle of their range."""
    if value - BOUNDS < quantiles[0]:
        return 0.0
    if value + BOUNDS > quantiles[-1]:
        return 1.0
    step = 1 / (len(quantiles) - 1)
    up = _interpolate(quantiles, value, step)
    down = 1 - _interpolate([-q for q in reversed(quantiles)], -value, step)
    return 0.5 * (up + down)


def _interpolate(xs: Sequence[float], x: float, step: float) -> float:
    """numpy's ``interp`` onto references ``0, step, 2 step, ...`` (a tie takes its last point)."""
    j = bisect_right(xs, x) - 1
    if xs[j] == x:
        return j * step
    return (x - xs[j]) / (xs[j + 1] - xs[j]) * step + j * step


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


class Placed(NamedTuple):
    """A customer's learned segment, the nearest centre's, and why they differ (None: they do not)."""

    segment: int
    nearest: int
    overridden: str | None


class Clusters(BaseModel):
    """Learned segments: the nearest centre (k-means) wins."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["kmeans"]
    centers: list[list[float]]
    names: list[str]
    descriptions: list[str] = Field(default_factory=list, description="one line per segment")
    prospects: bool = Field(
        default=False, description="the last name is the segment of customers with no order (no centre: not clustered)"
    )

    def assign(self, x: Sequence[float]) -> int:
        distances = [sum((a - b) ** 2 for a, b in zip(x, c, strict=True)) for c in self.centers]
        return distances.index(min(distances))


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

    def prospect(self, row: Sequence[float | None]) -> bool:
        """A customer with no order, whom a model of buyers leaves out of its clusters."""
        recency, frequency, _ = rfm_inputs(row)
        return self.clusters.prospects and (recency is None or frequency <= 0)

    def scores(self, row: Sequence[float | None]) -> list[float]:
        """Per clustered segment, the distance to its centre in the model's space (the nearest
        wins); none for a prospect."""
        if self.prospect(row):
            return []
        x = self.vector(row)
        return [math.dist(x, c) for c in self.clusters.centers]

    def inputs(self, row: Sequence[float | None]) -> dict[str, float]:
        """Each model feature's value in the model's space (a rank, or a standardised value)."""
        values = [t.value(row[FEATURES.index(t.feature)]) for t in self.transforms]
        scaled = [(v - m) / s for v, m, s in zip(values, self.scale_mean, self.scale_std, strict=False)]
        return {t.feature: v for t, v in zip(self.transforms, scaled, strict=True)}

    def vector(self, row: Sequence[float | None]) -> list[float]:
        """The vector the clusters live in: transformed inputs, then missing flags, scaled."""
        values = [t.value(row[FEATURES.index(t.feature)]) for t in self.transforms]
        flags = [1.0 if row[FEATURES.index(t.feature)] is None else 0.0 for t in self.transforms if t.flag]
        return [(v - m) / s for v, m, s in zip(values + flags, self.scale_mean, self.scale_std, strict=True)]

    def segment(self, row: Sequence[float | None]) -> int:
        """The nearest centre's index in ``clusters.names`` (k-means' own answer); ``row`` in
        ``FEATURES`` order."""
        return len(self.clusters.centers) if self.prospect(row) else self.clusters.assign(self.vector(row))

    def place(self, row: Sequence[float | None]) -> Placed:
        """Where the customer goes: the nearest centre's segment, unless its name and action
        would mislead about this customer's own figures (a recent first-time buyer in a segment
        told "stop spending"); then the member's own cell decides: the nearest segment of their
        own recency band (else the nearest that does not contradict them)."""
        nearest = self.segment(row)
        if self.prospect(row):
            return Placed(nearest, nearest, None)
        names = self.clusters.names
        r, f, m, cell = self.rfm.score(*rfm_inputs(row))
        if not misleads(names[nearest], r):
            return Placed(nearest, nearest, None)
        distances = self.scores(row)
        own = [i for i in range(len(distances)) if name_band(names[i]) == band(r)]
        fitting = own or [i for i in range(len(distances)) if not misleads(names[i], r)]
        if not fitting:
            return Placed(nearest, nearest, None)
        chosen = min(fitting, key=lambda i: distances[i])
        why = (f"The nearest centre is {names[nearest]}'s, whose action does not fit this customer's own figures "
               f"(RFM {r}-{f}-{m}, {cell}): placed by their own cell in {names[chosen]}, the nearest segment that "
               f"fits it.")  # fmt: skip
        return Placed(chosen, nearest, why)
