"""Why a customer is where they are: the features as the model saw them and as percentiles of
the population, the distance to every segment's centre, the RFM scores, every trigger rule with
the values it compared, the page behaviour the engagement rules read, the predictions and the
last moves with their reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.predictions import Predictions
from audience.domain.profile import WINDOWS_DAYS, Profile
from audience.domain.segments import SegmentChange
from audience.domain.triggers import TriggerRules
from audience.segmentation.features import FEATURES, features, rfm_inputs
from audience.segmentation.spec import SegmentSpec
from audience.services.placement import Tiers
from audience.value.spec import ValueSpec

MOVES = 5


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class FeatureValue(_View):
    name: str
    value: float | None = Field(description="as computed from the profile (none: missing, no order yet)")
    percentile: int | None = Field(description="share of the training population at or below it, in percent")
    model_value: float | None = Field(
        alias="modelValue",
        description="as the model's clusters see it (the rank among buyers, 0 to 1); none: not a model feature, "
        "or a customer with no order (prospects are not clustered)",
    )


class SegmentScore(_View):
    segment: int
    name: str
    distance: float = Field(description="to the segment's centre, in the model's space (the nearest wins)")


class RfmScores(_View):
    r: int
    f: int
    m: int
    cell: str


class RuleCheck(_View):
    id: str
    kind: str
    tier: str
    holds: bool
    compared: dict[str, Any] = Field(description="the customer's values and the rule's thresholds")


class BrowsingWindow(_View):
    """Page behaviour over a window, as the engaged-visitor rules count it."""

    page_views: int = Field(alias="pageViews", description="page and screen calls")
    sessions: int = Field(description="distinct context.sessionId a day, else runs of active half hours")
    seconds_on_site: int = Field(alias="secondsOnSite")
    clicks: int
    max_scroll_depth: int = Field(alias="maxScrollDepth", description="percent (0: none reported)")

    @classmethod
    def of(cls, profile: Profile, days: int, now: datetime) -> BrowsingWindow:
        seen = profile.browsing(days, now)
        return cls(page_views=seen.page_views, sessions=seen.sessions, seconds_on_site=seen.seconds,
                   clicks=seen.clicks, max_scroll_depth=seen.max_scroll)  # fmt: skip


class Explanation(_View):
    """``GET /v1/customers/{customerId}/explain``."""

    customer_id: str = Field(alias="customerId")
    as_of: datetime = Field(alias="asOf")
    model_version: str | None = Field(alias="modelVersion", description="the model in force (none before one)")
    segment: str | None = Field(description="where the model in force puts the customer now")
    overridden: str | None = Field(
        default=None,
        description="why the customer is not in the nearest centre's segment: its name and action would "
        "contradict their own figures, so their own cell decided (none: the nearest centre's)",
    )
    stored_segment: str | None = Field(
        alias="storedSegment",
        description="where the profile says they are: differs from segment while SegmentMinDwellMinutes holds a "
        "customer who just changed, or until the daily rescore moves one whom time alone moved",
    )
    features: list[FeatureValue]
    scores: list[SegmentScore] = Field(description="every clustered segment, nearest first (none for a prospect)")
    rfm: RfmScores | None
    tier: str | None
    rules: list[RuleCheck] = Field(description="in priority order: the first that holds gives the tier")
    browsing: dict[str, BrowsingWindow] = Field(
        description="page behaviour in the rolling windows (30d, 90d) the engaged-visitor rules read"
    )
    predictions: Predictions | None
    moves: list[SegmentChange] = Field(description=f"the last {MOVES}, newest last")


def explain(
    profile: Profile, spec: SegmentSpec | None, rules: TriggerRules, value: ValueSpec | None, now: datetime
) -> Explanation:
    row = features(profile, now)
    population = Tiers.of(rules, spec, value).population
    checks = [RuleCheck(id=r.id or "", kind=r.kind, tier=r.tier, holds=r.holds(profile, now, population),
                        compared=r.compared(profile, now, population)) for r in rules.rules]  # fmt: skip
    feature_values, scores, rfm, segment, overridden = [], [], None, None, None
    if spec is not None:
        seen = {} if spec.prospect(row) else spec.inputs(row)
        feature_values = [FeatureValue(name=n, value=v, percentile=spec.percentile(n, v), model_value=seen.get(n))
                          for n, v in zip(FEATURES, row, strict=True)]  # fmt: skip
        names = spec.clusters.names
        scores = sorted((SegmentScore(segment=i, name=names[i], distance=d) for i, d in enumerate(spec.scores(row))),
                        key=lambda s: s.distance)  # fmt: skip
        placed = spec.place(row)
        segment, overridden = spec.clusters.names[placed.segment], placed.overridden
        r, f, m, cell = spec.rfm.score(*rfm_inputs(row))
        rfm = RfmScores(r=r, f=f, m=m, cell=cell)
    else:
        feature_values = [FeatureValue(name=n, value=v, percentile=None, model_value=None)
                          for n, v in zip(FEATURES, row, strict=True)]  # fmt: skip
    return Explanation(
        customer_id=profile.customer_id, as_of=now, model_version=spec.version if spec else None, segment=segment,
        stored_segment=profile.segments.name if profile.segments else None, overridden=overridden,
        features=feature_values, scores=scores, rfm=rfm, tier=profile.tier.name if profile.tier else None,
        rules=checks, browsing={f"{days}d": BrowsingWindow.of(profile, days, now) for days in WINDOWS_DAYS},
        predictions=profile.predictions, moves=profile.segment_history[-MOVES:],
    )  # fmt: skip
