"""Where a model (and a trigger rule) put a customer, the history of moves, and the events a
move publishes.

A move publishes ``Audience Exited`` for the segment left and ``Audience Entered`` for the one
joined, per dimension that changed (the learned segment, the RFM cell, the tier a trigger rule
assigns), on the stack's
EventBridge bus. ``docs/schemas/segment-event.json`` is the detail's JSON Schema
(``SegmentEventDetail``); the idempotency key is the same for the same move, so a consumer can
drop a repeat (delivery is at least once).
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ENTERED, EXITED = "Audience Entered", "Audience Exited"

# The names the segmentation model gives (its RFM cells and its learned segments: spec.RF_SEGMENTS,
# NO_ORDERS, LEARNED_NAMES, NOT_YET_BOUGHT; a test keeps the two lists equal). A tier may not bear
# one: a name never stands for two different groups.
MODEL_NAMES = frozenset({
    "Hibernating", "At Risk", "Can't Lose Them", "About to Sleep", "Need Attention", "Loyal Customers", "Promising",
    "New Customers", "Potential Loyalists", "Champions", "Prospects",
    "Best Customers", "Frequent Buyers", "Rising Big Spenders", "Returning Buyers", "First-time Buyers",
    "Big Spenders Cooling Off", "Cooling Regulars", "Fading One-time Buyers", "Lapsed Big Spenders", "Lapsed Regulars",
    "Dormant One-time Buyers", "Not Yet Buyers",
})  # fmt: skip


class Segments(BaseModel):
    """Where a model put the customer: the learned segment and the RFM cell."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    model_version: str = Field(alias="modelVersion")
    segment: int
    name: str
    rfm: str
    r: int = 0
    f: int = 0
    m: int = 0
    assigned_at: AwareDatetime = Field(alias="assignedAt")

    def same_place(self, other: Segments | None) -> bool:
        return other is not None and (self.name, self.rfm) == (other.name, other.rfm)


class Tier(BaseModel):
    """The tier a trigger rule put the customer in (for example "High Value"), and since when."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str
    rule: str = Field(description="the id of the trigger rule that holds")
    since: AwareDatetime


class SegmentChange(BaseModel):
    """One entry of the segment history: from where to where, when, why and by which model
    (none when only the tier moved and no model is active)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    at: AwareDatetime
    model_version: str | None = Field(default=None, alias="modelVersion")
    reason: str
    segment: str | None = None
    rfm: str | None = None
    previous: str | None = None
    previous_rfm: str | None = Field(default=None, alias="previousRfm")
    tier: str | None = None
    previous_tier: str | None = Field(default=None, alias="previousTier")


class SegmentEventDetail(BaseModel):
    """The ``detail`` of an ``Audience Entered`` or ``Audience Exited`` event."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, title="Audience Engine segment event detail")

    customer_id: str = Field(alias="customerId")
    segment_id: str = Field(alias="segmentId", description="learned:<slug>, rfm:<slug> or tier:<slug>")
    segment_name: str = Field(alias="segmentName")
    kind: Literal["learned", "rfm", "tier"]
    previous_segment: str | None = Field(alias="previousSegment", description="the segment left (or joined, on exit)")
    reason: str = Field(
        description="why: trigger:<rule id>, model <version> (a promotion), time-based rescore, profile update, ..."
    )
    model_version: str | None = Field(alias="modelVersion", description="the active model (none before the first)")
    time: AwareDatetime
    idempotency_key: str = Field(alias="idempotencyKey", description="the same for the same move: drop repeats")


class SegmentEvent(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    detail_type: Literal["Audience Entered", "Audience Exited"] = Field(alias="detailType")
    detail: SegmentEventDetail


def segment_id(kind: str, name: str) -> str:
    return f"{kind}:{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"


def events_for(customer_id: str, change: SegmentChange) -> list[SegmentEvent]:
    """The events of one move: per dimension that changed, an exit (if there was a segment)
    and an entry (if there is one: a tier can end)."""
    events = []
    dimensions = (
        ("learned", change.segment, change.previous),
        ("rfm", change.rfm, change.previous_rfm),
        ("tier", change.tier, change.previous_tier),
    )
    for kind, new, old in dimensions:
        if new == old:
            continue
        moves = [(EXITED, old, new)] if old is not None else []
        entries = [(ENTERED, new, old)] if new is not None else []
        for detail_type, name, other in [*moves, *entries]:
            key = hashlib.sha256(f"{customer_id}|{detail_type}|{kind}|{name}|{change.at.isoformat()}".encode())
            detail = SegmentEventDetail(
                customer_id=customer_id,
                segment_id=segment_id(kind, name),
                segment_name=name,
                kind=kind,  # type: ignore[arg-type]
                previous_segment=other,
                reason=change.reason,
                model_version=change.model_version,
                time=change.at,
                idempotency_key=key.hexdigest()[:32],
            )
            events.append(SegmentEvent(detail_type=detail_type, detail=detail))  # type: ignore[arg-type]
    return events
