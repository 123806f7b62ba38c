"""Trigger rules: conditions on a profile that put a customer in a named tier at once.

Each rule is a condition over the profile as of a moment (a large order in the last days,
revenue in a window, a place among the top spenders, an engagement drop, an engaged visitor
(page views, sessions, time on site or scroll depth in a window), a prediction of the
value model: a place among the top customers by 12-month value, a churn risk, a low probability
of being alive), or ``all`` of several (for example "High value at risk": top 10 % by value and
a churn risk of at least 0.6). The customer's tier
is the tier of the first rule that holds (rules are in priority order), so it is a pure
function of the profile: replaying events changes nothing, and a tier ends by itself when its
condition stops holding (at the next event or the daily rescore).

The rules live in the data bucket (``config/triggers.json``, see ``services/configs``); the
ones shipped in ``defaults/triggers.json`` apply until a valid file is uploaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audience.domain.documents import Document
from audience.domain.profile import WINDOWS_DAYS, Profile
from audience.domain.segments import MODEL_NAMES, Tier

HIGH_VALUE = "High Value"
RULE_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"


class Population(NamedTuple):
    """What a rule compares a customer with: buyers' 1st..99th percentiles of net spend (the
    segmentation model's) and of 12-month value (the value model's); empty before a fit."""

    monetary: Sequence[float] = ()
    clv: Sequence[float] = ()


NOBODY = Population()


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = Field(default=None, pattern=RULE_ID, description="names the rule in reasons: trigger:<id>")
    tier: str = Field(default=HIGH_VALUE, min_length=1, max_length=64)
    description: str = ""

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        raise NotImplementedError

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        """What ``holds`` compares: the customer's value and the rule's threshold (explanations)."""
        raise NotImplementedError


class OrderAtLeast(_Rule):
    """A single order of at least ``amount`` (base currency) in the last ``within_days`` days
    (orders are told apart by ``order_id``)."""

    kind: Literal["order-at-least"]
    amount: Decimal = Field(gt=0)
    within_days: int = Field(default=30, ge=1, le=365)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        since = now.date() - timedelta(days=self.within_days - 1)
        return any(k[0] == "o" and e.amount >= self.amount and e.day >= since for k, e in profile.ledger.items())

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        since = now.date() - timedelta(days=self.within_days - 1)
        orders = [e.amount for k, e in profile.ledger.items() if k[0] == "o" and e.day >= since]
        return {"largestOrder": float(max(orders)) if orders else None, "amount": float(self.amount)}


class RevenueInWindow(_Rule):
    """Revenue of at least ``amount`` in the last ``days`` days."""

    kind: Literal["revenue-in-window-at-least"]
    amount: Decimal = Field(gt=0)
    days: int = Field(ge=1, le=max(WINDOWS_DAYS))

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        start = now.date() - timedelta(days=self.days - 1)
        return sum((t.revenue for d, t in profile.daily.items() if d >= start), Decimal(0)) >= self.amount

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        start = now.date() - timedelta(days=self.days - 1)
        revenue = sum((t.revenue for d, t in profile.daily.items() if d >= start), Decimal(0))
        return {"revenue": float(revenue), "amount": float(self.amount)}


class TopMonetary(_Rule):
    """Net spend among the top ``percent`` % of buyers, by the active model's percentiles
    (holds for nobody until a model is active)."""

    kind: Literal["top-monetary-percent"]
    percent: int = Field(ge=1, le=50)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        net = float(profile.revenue - profile.refunded)
        return net > 0 and _among_top(net, population.monetary, self.percent)

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        return {
            "netSpend": float(profile.revenue - profile.refunded),
            "threshold": _cut(population.monetary, self.percent),
        }


class EngagementDrop(_Rule):
    """A customer who was engaged (at least ``min_events`` events) and has been silent for
    ``inactive_days`` days. Silence produces no event: the daily rescore finds them."""

    kind: Literal["engagement-drop"]
    tier: str = Field(default="Win Back", min_length=1, max_length=64)
    inactive_days: int = Field(ge=1, le=3650)
    min_events: int = Field(default=10, ge=1)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        if profile.last_seen is None or sum(profile.event_counts.values()) < self.min_events:
            return False
        return now - profile.last_seen >= timedelta(days=self.inactive_days)

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        silent = (now - profile.last_seen).total_seconds() / 86400 if profile.last_seen else None
        return {"events": sum(profile.event_counts.values()), "minEvents": self.min_events, "daysSilent": silent,
                "inactiveDays": self.inactive_days}  # fmt: skip


class EngagedVisitor(_Rule):
    """A visitor engaged with the site in the last ``days`` days: every threshold given is met
    (page views count pages and screens; sessions and seconds as ``Profile.browsing`` counts
    them; the scroll depth is the deepest reported, in percent). At least one threshold."""

    kind: Literal["engaged-visitor"]
    tier: str = Field(default="Engaged", min_length=1, max_length=64)
    days: int = Field(default=30, ge=1, le=max(WINDOWS_DAYS))
    min_page_views: int | None = Field(default=None, ge=1)
    min_sessions: int | None = Field(default=None, ge=1)
    min_seconds: int | None = Field(default=None, ge=1)
    min_scroll_depth: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _a_threshold(self) -> EngagedVisitor:
        if not self._thresholds():
            raise ValueError("give at least one of min_page_views, min_sessions, min_seconds, min_scroll_depth")
        return self

    def _thresholds(self) -> dict[str, tuple[str, int]]:
        """The customer's figure -> (the threshold's name in ``compared``, its value), for those given."""
        given = {"pageViews": ("minPageViews", self.min_page_views), "sessions": ("minSessions", self.min_sessions),
                 "secondsOnSite": ("minSeconds", self.min_seconds),
                 "maxScrollDepth": ("minScrollDepth", self.min_scroll_depth)}  # fmt: skip
        return {figure: (name, value) for figure, (name, value) in given.items() if value is not None}

    def _figures(self, profile: Profile, now: datetime) -> dict[str, int]:
        seen = profile.browsing(self.days, now)
        return {"pageViews": seen.page_views, "sessions": seen.sessions, "secondsOnSite": seen.seconds,
                "maxScrollDepth": seen.max_scroll}  # fmt: skip

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        figures = self._figures(profile, now)
        return all(figures[figure] >= value for figure, (_, value) in self._thresholds().items())

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        figures = self._figures(profile, now)
        shown: dict[str, Any] = {"days": self.days}
        for figure, (name, value) in self._thresholds().items():
            shown |= {figure: figures[figure], name: value}
        return shown


class ClvTopPercent(_Rule):
    """Predicted 12-month value among the top ``percent`` % of buyers (holds for nobody until a
    value model is active)."""

    kind: Literal["clv-top-percent"]
    percent: int = Field(ge=1, le=50)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        predicted = profile.predictions
        return predicted is not None and predicted.clv_12m > 0 and _among_top(predicted.clv_12m, population.clv,
                                                                              self.percent)  # fmt: skip

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        clv = profile.predictions.clv_12m if profile.predictions else None
        return {"clv12m": clv, "threshold": _cut(population.clv, self.percent)}


class ChurnRiskAtLeast(_Rule):
    """A churn risk (probability of no order in the value model's horizon) of at least ``risk``."""

    kind: Literal["churn-risk-at-least"]
    tier: str = Field(default="Churn Risk", min_length=1, max_length=64)  # not the RFM cell "At Risk"
    risk: float = Field(gt=0, le=1)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        return profile.predictions is not None and profile.predictions.churn_risk >= self.risk

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        return {"churnRisk": profile.predictions.churn_risk if profile.predictions else None, "risk": self.risk}


class PAliveBelow(_Rule):
    """A probability of being alive (not lapsed for good) below ``probability``."""

    kind: Literal["p-alive-below"]
    tier: str = Field(default="Lapsing", min_length=1, max_length=64)
    probability: float = Field(gt=0, le=1)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        return profile.predictions is not None and profile.predictions.p_alive < self.probability

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        alive = profile.predictions.p_alive if profile.predictions else None
        return {"pAlive": alive, "probability": self.probability}


class AllOf(_Rule):
    """Every one of ``conditions`` holds (conditions are rules without an id or tier)."""

    kind: Literal["all"]
    conditions: list[Condition] = Field(min_length=2, max_length=10)

    def holds(self, profile: Profile, now: datetime, population: Population) -> bool:
        return all(condition.holds(profile, now, population) for condition in self.conditions)

    def compared(self, profile: Profile, now: datetime, population: Population) -> dict[str, Any]:
        return {"conditions": [{"kind": c.kind, "holds": c.holds(profile, now, population),
                                **c.compared(profile, now, population)} for c in self.conditions]}  # fmt: skip


Rule = Annotated[
    OrderAtLeast
    | RevenueInWindow
    | TopMonetary
    | EngagementDrop
    | EngagedVisitor
    | ClvTopPercent
    | ChurnRiskAtLeast
    | PAliveBelow
    | AllOf,
    Field(discriminator="kind"),
]
Condition = Rule
AllOf.model_rebuild()


def _cut(percentiles: Sequence[float], percent: int) -> float | None:
    """Where the top ``percent`` % start, or None before the population is known."""
    return percentiles[99 - percent] if len(percentiles) == 99 else None


def _among_top(value: float, percentiles: Sequence[float], percent: int) -> bool:
    """``value`` at or above the (100 - ``percent``)th of 99 percentiles ([i] is the (i+1)th)."""
    return len(percentiles) == 99 and value >= percentiles[99 - percent]


class TriggerRules(Document):
    """``config/triggers.json``: the rules, highest priority first."""

    document: ClassVar[str] = "triggers"

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[Rule] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _unique_ids(self) -> TriggerRules:
        missing = [i for i, rule in enumerate(self.rules) if rule.id is None]
        if missing:
            raise ValueError(f"every rule needs an id: rules[{missing[0]}] has none")
        ids = [rule.id or "" for rule in self.rules]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"rule ids must be unique: {', '.join(repeated)} repeated")
        taken = [f"rules[{i}] ({r.id}): tier '{r.tier}'" for i, r in enumerate(self.rules) if r.tier in MODEL_NAMES]
        if taken:
            raise ValueError(f"a tier may not bear a segment's or RFM cell's name (one name, one group): {taken[0]}")
        return self

    def tier(self, profile: Profile, now: datetime, population: Population = NOBODY) -> Tier | None:
        """The tier of the first rule that holds (``since`` is ``now``), or None."""
        for rule in self.rules:
            if rule.holds(profile, now, population):
                return Tier(name=rule.tier, rule=rule.id or "", since=now)
        return None
