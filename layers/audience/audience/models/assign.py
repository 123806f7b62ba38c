"""Place a customer in a model's segments; plain Python, so the stream can do it per event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from audience.domain.profile import Profile
from audience.domain.segments import Segments
from audience.models.features import features, rfm_inputs
from audience.models.spec import SegmentSpec


def placement(spec: SegmentSpec, segment: int, row: Sequence[float | None], now: datetime) -> Segments:
    """The segments of a customer whose features are ``row`` and whose learned segment is ``segment``."""
    r, f, m, rfm = spec.rfm.score(*rfm_inputs(row))
    name = spec.clusters.names[segment]
    return Segments(model_version=spec.version, segment=segment, name=name, rfm=rfm, r=r, f=f, m=m, assigned_at=now)


def reassigned(profile: Profile, placed: Segments, reason: str) -> Profile | None:
    """The profile in its new place, or None when the customer did not move (nothing to write)."""
    return None if placed.same_place(profile.segments) else profile.placed(placed, reason)


def score(profile: Profile, spec: SegmentSpec, now: datetime) -> Segments:
    """One customer, from the spec alone."""
    row = features(profile, now)
    return placement(spec, spec.segment(row), row, now)
