"""Scoring in the stream: each updated profile gets the active value model's predictions and is
placed with the active segmentation model's spec and the trigger rules in force.

The spec is plain JSON scored in plain Python, so the stream function never imports numpy or
scikit-learn. The active version and the rules are looked up at most once per ``refresh`` per
container, and the spec read again only when the version changes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from audience.domain.profile import Profile
from audience.domain.triggers import TriggerRules
from audience.ports import ModelRegistry, ModelStore, ObjectStore
from audience.segmentation.spec import SegmentSpec
from audience.segmentation.store import BucketModelStore
from audience.services.documents import LiveDocument
from audience.services.placement import Tiers, place
from audience.value.spec import ValueSpec

logger = logging.getLogger(__name__)
Artifact = TypeVar("Artifact", bound=BaseModel)

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


class LiveArtifact(Generic[Artifact]):
    """A model in force that the retrain function puts at ``KEY`` as JSON, read at most once per
    ``refresh``; None until one is fitted. One that does not parse (another release's, or a
    hand-made one) is logged and the previous stays in force: events and reads still flow."""

    KEY: ClassVar[str]
    MODEL: ClassVar[type[BaseModel]]

    def __init__(self, store: ObjectStore, refresh: timedelta = timedelta(minutes=1)) -> None:
        self.store, self.refresh = store, refresh
        self._spec: Artifact | None = None
        self._checked: datetime | None = None

    def spec(self, now: datetime) -> Artifact | None:
        if self._checked is None or now - self._checked >= self.refresh:
            self._checked = now
            text = self.store.read_text(self.KEY)
            try:
                self._spec = self.MODEL.model_validate_json(text) if text else None  # type: ignore[assignment]
            except ValidationError as exc:
                logger.error("%s is not a model this release reads, keeping the previous: %s", self.KEY, exc)
        return self._spec


class LiveValue(LiveArtifact[ValueSpec]):
    """The value model in force."""

    KEY, MODEL = "live/value-model.json", ValueSpec


class LiveTiers:
    """Gives each updated profile its predictions and places it in its trigger rules' tier only:
    what imports do (placing thousands of new customers in the model's segments waits for the
    daily rescore)."""

    def __init__(self, registry: ModelRegistry, store: ObjectStore, refresh: timedelta = timedelta(minutes=1)) -> None:
        self.model = LiveModel(registry, BucketModelStore(store), refresh)
        self.rules = LiveDocument(store, TriggerRules, refresh)
        self.value = LiveValue(store, refresh)

    def __call__(self, profile: Profile, now: datetime) -> Profile:
        if profile.merged_into is not None:
            return profile
        return Tiers.of(self.rules.get(now), self.model.spec(now), self.value.spec(now)).settled(profile, now)


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
        self.value = LiveValue(store, refresh)
        self.min_dwell = min_dwell

    def __call__(self, profile: Profile, now: datetime) -> Profile:
        """The profile in its tier and its place under the active model (itself when it did not move)."""
        if profile.merged_into is not None:
            return profile
        return place(profile, self.model.spec(now), self.rules.get(now), now, EVENT_REASON, self.min_dwell,
                     self.value.spec(now))  # fmt: skip
