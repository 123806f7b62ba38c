"""The console's rule builder: a trigger rules document (``config/triggers.json``) tried on the
current profiles before it is saved (saving is the config function's: ``documents.RuleBuilder``).

The preview reads at most ``SAMPLE`` profiles (one scan, stopped there: a DynamoDB scan returns
items in hash order, so the first ones are an unbiased sample) and scales its counts to the
population the measure job last counted; on a smaller base it reads everyone and the counts
are exact. Cost: about one read unit per 4 KB of profiles read, per preview."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from itertools import islice

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.triggers import TriggerRules
from audience.ports import ProfileRepository
from audience.segmentation.spec import SegmentSpec
from audience.services.placement import Tiers
from audience.value.spec import ValueSpec

SAMPLE = 5_000


class TierSize(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    tier: str
    now: int = Field(description="customers in the tier now (in the profiles read)")
    after: int = Field(description="customers the rules would put there (in the profiles read)")
    entering: int
    leaving: int
    estimated: int = Field(description="``after`` scaled to every customer (equal to it when everyone was read)")


class RuleCount(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str
    tier: str
    holds: int = Field(description="customers for whom the rule holds (whether or not an earlier rule won)")
    decides: int = Field(description="customers whose tier it gives (the first rule that holds)")


class RulesPreview(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    read: int = Field(description="profiles read")
    population: int | None = Field(description="every customer, as the measure job last counted them")
    exact: bool = Field(description="every profile was read (else: a sample of SAMPLE, scaled)")
    tiers: list[TierSize]
    rules: list[RuleCount]


def preview(
    rules: TriggerRules,
    profiles: ProfileRepository,
    spec: SegmentSpec | None,
    value: ValueSpec | None,
    population: int | None,
    now: datetime,
    sample: int = SAMPLE,
) -> RulesPreview:
    """How many customers each tier would hold under ``rules``, against now."""
    tiers = Tiers.of(rules, spec, value)
    read = [p for p in islice((p for p in profiles.scan(0, 1) if p.merged_into is None), sample)]
    now_in, after_in, entering, leaving = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    holds, decides = Counter[str](), Counter[str]()
    for profile in read:
        current = profile.tier.name if profile.tier else None
        due = rules.tier(profile, now, tiers.population)
        for rule in rules.rules:
            if rule.holds(profile, now, tiers.population):
                holds[rule.id or ""] += 1
        if due is not None:
            after_in[due.name] += 1
            decides[due.rule] += 1
        if current is not None:
            now_in[current] += 1
        if (due.name if due else None) != current:
            if due is not None:
                entering[due.name] += 1
            if current is not None:
                leaving[current] += 1
    exact = len(read) < sample
    scale = (population / len(read)) if population and read and not exact else 1.0
    names = list(dict.fromkeys([r.tier for r in rules.rules] + sorted(now_in)))
    return RulesPreview(
        read=len(read), population=population, exact=exact,
        tiers=[TierSize(tier=t, now=now_in[t], after=after_in[t], entering=entering[t], leaving=leaving[t],
                        estimated=round(after_in[t] * scale)) for t in names],
        rules=[RuleCount(id=r.id or "", tier=r.tier, holds=holds[r.id or ""], decides=decides[r.id or ""])
               for r in rules.rules],
    )  # fmt: skip
