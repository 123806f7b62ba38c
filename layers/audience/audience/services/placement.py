"""Place a customer in a model's segments and a trigger rule's tier, with the value model's
predictions the rules may read; plain Python, so the stream can do it per event.

It combines the segmentation and value models with the trigger rules, so it lives here, one
floor above the model packages, which import nothing of each other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from audience.domain.profile import Profile
from audience.domain.segments import Segments, Tier
from audience.domain.triggers import NOBODY, Population, TriggerRules
from audience.segmentation.features import features, rfm_inputs
from audience.segmentation.spec import SegmentSpec
from audience.value.spec import ValueSpec


def placement(spec: SegmentSpec, segment: int, row: Sequence[float | None], now: datetime) -> Segments:
    """The segments of a customer whose features are ``row`` and whose learned segment is ``segment``."""
    r, f, m, rfm = spec.rfm.score(*rfm_inputs(row))
    name = spec.clusters.names[segment]
    return Segments(model_version=spec.version, segment=segment, name=name, rfm=rfm, r=r, f=f, m=m, assigned_at=now)


def reassigned(profile: Profile, placed: Segments, reason: str) -> Profile | None:
    """The profile in its new place, or None when the customer did not move (nothing to write)."""
    return None if placed.same_place(profile.segments) else profile.placed(placed, reason)


def score(profile: Profile, spec: SegmentSpec, now: datetime) -> Segments:
    """One customer, from the spec alone (where the nearest centre's name would mislead about
    their own figures, their own cell decides: ``SegmentSpec.place``)."""
    row = features(profile, now)
    return placement(spec, spec.place(row).segment, row, now)


@dataclass(frozen=True)
class Tiers:
    """The trigger rules in force, the populations they compare with, and the value model whose
    predictions they may read (kept current on the profile first, within ``tolerance``)."""

    rules: TriggerRules
    population: Population = NOBODY
    value: ValueSpec | None = None
    tolerance: float = 0.0

    @classmethod
    def of(cls, rules: TriggerRules, spec: SegmentSpec | None, value: ValueSpec | None, tolerance: float = 0) -> Tiers:
        population = Population(spec.rfm.monetary_percentiles if spec else (), value.clv_percentiles if value else ())
        return cls(rules, population, value, tolerance)

    def predicted(self, profile: Profile, now: datetime) -> Profile:
        return self.value.refreshed(profile, now, self.tolerance) if self.value else profile

    def due(self, profile: Profile, now: datetime) -> Tier | None:
        return self.rules.tier(profile, now, self.population)

    def moves(self, profile: Profile, now: datetime) -> bool:
        """Whether the customer's predictions or tier change (what a rescore must write)."""
        predicted = self.predicted(profile, now)
        due = self.due(predicted, now)
        return predicted is not profile or (due.name if due else None) != (profile.tier.name if profile.tier else None)

    def settled(self, profile: Profile, now: datetime, min_dwell: timedelta = timedelta(0)) -> Profile:
        """``profile`` with current predictions in the tier due now (itself when nothing changed).
        A rule that starts to hold moves the customer at once; leaving a tier waits out ``min_dwell``."""
        profile = self.predicted(profile, now)
        due, current = self.due(profile, now), profile.tier
        if due is not None and (current is None or current.name != due.name):
            return profile.tiered(due, f"trigger:{due.rule}", now)
        if due is None and current is not None and now - current.since >= min_dwell:
            return profile.tiered(None, f"trigger:{current.rule} no longer holds", now)
        return profile


def place(
    profile: Profile,
    spec: SegmentSpec | None,
    rules: TriggerRules,
    now: datetime,
    reason: str,
    min_dwell: timedelta = timedelta(0),
    value: ValueSpec | None = None,
) -> Profile:
    """``profile`` with the ``value`` model's predictions, in its tier and its model segments as
    of ``now`` (itself when nothing moved).

    A trigger rule that starts to hold moves the customer at once, into its tier and (ignoring
    the dwell) into the model segments the update earned, with ``trigger:<rule id>`` as the
    reason. Otherwise a customer placed less than ``min_dwell`` ago stays where they are: a
    customer on a boundary does not flap.
    """
    result = Tiers.of(rules, spec, value).settled(profile, now, min_dwell)
    fired = result.tier if result.tier is not None and result.tier is not profile.tier else None
    if spec is None:
        return result
    if fired is None and profile.segments is not None and now - profile.segments.assigned_at < min_dwell:
        return result
    return reassigned(result, score(result, spec, now), f"trigger:{fired.rule}" if fired else reason) or result
