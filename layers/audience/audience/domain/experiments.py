"""Experiments and the global holdout, as a configuration document (``config/experiments.json``).

Assignment is deterministic and stateless, so any party can recompute it: the bucket of a
customer in an experiment is the first 8 bytes of SHA-256 of ``"<experiment id>:<customer
id>"`` read as a big-endian integer over 2^64, a number in [0, 1); variants take consecutive
ranges of [0, 1) in the order listed, in proportion to their weights. The global holdout uses
the same bucket with the experiment id ``"holdout"``: customers below ``holdout`` never get
personalized content. The customer id is the canonical one; once exposed, a customer keeps the
variant their profile recorded (``services/experiments.choose``), also across identity merges.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from audience.domain.documents import Document
from audience.domain.errors import FieldError
from audience.domain.personalization import SEGMENT_ID, Content

HOLDOUT = "holdout"
SEGMENT_ID_RE = re.compile(SEGMENT_ID)


def bucket(experiment_id: str, customer_id: str) -> float:
    """The customer's place in [0, 1) for the experiment (SHA-256, first 8 bytes, big-endian)."""
    digest = hashlib.sha256(f"{experiment_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    weight: float = Field(gt=0)
    content: Content | None = Field(default=None, description="none: the default content (a control)")


class Experiment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    segments: list[str] = Field(default_factory=list, description="segment ids it runs in; empty: everyone")
    variants: list[Variant] = Field(min_length=2, max_length=10)
    control: str = Field(description="the variant the others are compared with")
    start: AwareDatetime
    end: AwareDatetime
    window_days: int = Field(default=14, ge=1, le=365, alias="windowDays", description="outcomes after first exposure")
    sequential_tuning: int = Field(
        default=5_000, ge=100, le=100_000_000, alias="sequentialTuning",
        description="exposed customers (both arms) where the always-valid intervals are tightest; fixed while it runs",
    )  # fmt: skip
    planned_lift: float = Field(
        default=0.1, gt=0, le=10, alias="plannedLift",
        description="the relative lift worth detecting (planning, and the decision to stop when it is ruled out)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _coherent(self) -> Experiment:
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"variant ids must be unique: {ids}")
        if self.control not in ids:
            raise ValueError(f"control {self.control!r} is not one of the variants {ids}")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        for segment in self.segments:
            if not SEGMENT_ID_RE.match(segment):
                raise ValueError(f"segment {segment!r} is not a segment id (learned:, rfm: or tier:)")
        return self

    def running(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def variant(self, customer_id: str) -> Variant:
        """The customer's variant (whether or not they are in its segments)."""
        point, total, edge = bucket(self.id, customer_id), sum(v.weight for v in self.variants), 0.0
        for variant in self.variants:
            edge += variant.weight / total
            if point < edge:
                return variant
        return self.variants[-1]  # (rounding: point just below 1)

    def arm(self, variant_id: str) -> Variant:
        """The variant called ``variant_id`` (a recorded exposure's; the control if it is gone)."""
        by_id = {v.id: v for v in self.variants}
        return by_id.get(variant_id) or by_id[self.control]


class Experiments(Document):
    document: ClassVar[str] = "experiments"

    model_config = ConfigDict(frozen=True, extra="forbid")

    holdout: float = Field(default=0.0, ge=0, le=0.5, description="share of customers never personalized")
    experiments: list[Experiment] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _unique(self) -> Experiments:
        ids = [e.id for e in self.experiments]
        if len(set(ids)) != len(ids) or HOLDOUT in ids:
            raise ValueError(f"experiment ids must be unique and not {HOLDOUT!r}: {ids}")
        return self

    def held_out(self, customer_id: str) -> bool:
        return bucket(HOLDOUT, customer_id) < self.holdout

    def conflicts(self, previous: Any, now: datetime) -> list[FieldError]:
        return [FieldError(f"experiments (id '{e}').variants", "the variants, weights or sequential tuning of a "
                           "running experiment cannot change (exposed customers would move, or the always-valid "
                           "intervals would be tuned on what was seen): end it and start another")
                for e in self.changed_weights(previous, now)]  # fmt: skip

    def changed_weights(self, previous: Experiments, now: datetime) -> list[str]:
        """Running experiments whose variants, weights or sequential tuning this document changes
        (refused: the customers already exposed would be reassigned; a sequence retuned after
        looking at the data is no longer always valid)."""
        before = {e.id: e for e in previous.experiments if e.running(now)}
        return [e.id for e in self.experiments
                if e.id in before and ([(v.id, v.weight) for v in e.variants], e.sequential_tuning)
                != ([(v.id, v.weight) for v in before[e.id].variants], before[e.id].sequential_tuning)]  # fmt: skip
