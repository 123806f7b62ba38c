"""Scoring in the stream: each updated profile gets the active value model's predictions and is
placed with the active segmentation model's spec and the trigger rules in force.

The spec is plain JSON scored in plain Python, so the stream function never imports numpy or
scikit-learn. The active version and the rules are looked up at most once per ``refresh`` per
container (``artifacts.Live``), and the spec read again only when the version changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from audience.domain.profile import Profile
from audience.domain.triggers import TriggerRules
from audience.ports import ModelRegistry, ObjectStore
from audience.services.artifacts import REFRESH, live_document, live_segments, live_value
from audience.services.placement import Tiers, place

EVENT_REASON = "profile updated"


class LiveScoring:
    """Places each updated profile with what is in force. ``segments`` False: its predictions
    and its trigger rules' tier only (what imports do: placing thousands of new customers in the
    model's segments waits for the daily rescore). ``min_dwell``: a customer placed less than this
    long ago is not moved by an event unless a trigger rule fires (the daily rescore and
    retraining still move them)."""

    def __init__(
        self,
        registry: ModelRegistry,
        store: ObjectStore,
        refresh: timedelta = REFRESH,
        min_dwell: timedelta = timedelta(0),
        segments: bool = True,
    ) -> None:
        self.model = live_segments(registry, store, refresh)
        self.rules = live_document(store, TriggerRules, refresh)
        self.value = live_value(store, refresh)
        self.min_dwell, self.segments = min_dwell, segments

    def __call__(self, profile: Profile, now: datetime) -> Profile:
        """The profile in its tier and its place under the active model (itself when it did not move)."""
        if profile.merged_into is not None:
            return profile
        spec, rules, value = self.model.get(now), self.rules.get(now), self.value.get(now)
        if not self.segments:
            return Tiers.of(rules, spec, value).settled(profile, now)
        return place(profile, spec, rules, now, EVENT_REASON, self.min_dwell, value)
