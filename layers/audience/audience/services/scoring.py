"""Scoring in the stream: each updated profile is placed with the active model's spec and the
trigger rules in force.

The spec is plain JSON scored in plain Python, so the stream function never imports numpy or
scikit-learn. The active version and the rules are looked up at most once per ``refresh`` per
container, and the spec read again only when the version changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from audience.domain.profile import Profile
from audience.domain.triggers import TriggerRules
from audience.ports import ModelRegistry, ModelStore, ObjectStore
from audience.segmentation.assign import Tiers, place
from audience.segmentation.spec import SegmentSpec
from audience.segmentation.store import BucketModelStore
from audience.services.documents import LiveDocument

EVENT_REASON = "profile updated"


class LiveModel:
    """The active model's spec, looked up at most once per ``refresh`` (read again only when the
    active version changes)."""

    def __init__(self, registry: ModelRegistry, models: ModelStore, refresh: timedelta = timedelta(minutes=1)) -> None:
        self.registry, self.models, self.refresh = registry, models, refresh
        self._spec: SegmentSpec | None = None
        self._checked: datetime | None = None

    def spec(self, now: datetime) -> SegmentSpec | None:
        if self._checked is None or now - self._checked >= self.refresh:
            self._checked = now
            version = self.registry.active()
            if version is None:
                self._spec = None
            elif self._spec is None or self._spec.version != version:
                self._spec = self.models.spec(version)
        return self._spec


class LiveTiers:
    """Places each updated profile in its trigger rules' tier only: what imports do (placing
    thousands of new customers in the model's segments waits for the daily rescore)."""

    def __init__(self, registry: ModelRegistry, store: ObjectStore, refresh: timedelta = timedelta(minutes=1)) -> None:
        self.model = LiveModel(registry, BucketModelStore(store), refresh)
        self.rules = LiveDocument(store, TriggerRules, refresh)

    def __call__(self, profile: Profile, now: datetime) -> Profile:
        if profile.merged_into is not None:
            return profile
        spec = self.model.spec(now)
        return Tiers(self.rules.get(now), spec.rfm.monetary_percentiles if spec else ()).settled(profile, now)


class LiveScoring:
    """Places each updated profile; ``min_dwell``: a customer placed less than this long ago is
    not moved by an event unless a trigger rule fires (the daily rescore and retraining still
    move them)."""

    def __init__(
        self,
        registry: ModelRegistry,
        store: ObjectStore,
        refresh: timedelta = timedelta(minutes=1),
        min_dwell: timedelta = timedelta(0),
    ) -> None:
        self.model = LiveModel(registry, BucketModelStore(store), refresh)
        self.rules = LiveDocument(store, TriggerRules, refresh)
        self.min_dwell = min_dwell

    def __call__(self, profile: Profile, now: datetime) -> Profile:
        """The profile in its tier and its place under the active model (itself when it did not move)."""
        if profile.merged_into is not None:
            return profile
        return place(profile, self.model.spec(now), self.rules.get(now), now, EVENT_REASON, self.min_dwell)
