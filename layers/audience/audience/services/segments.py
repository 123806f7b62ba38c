"""The segments there are (the active model's learned segments and RFM cells, the trigger
rules' tiers) with their definitions and sizes, and who is in each, page by page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.errors import FieldError, InvalidInput, SegmentNotFound
from audience.domain.segments import segment_id
from audience.domain.triggers import TriggerRules
from audience.measure.kpis import SegmentKpis
from audience.ports import SegmentMembers
from audience.segmentation.spec import SegmentSpec

EMPTY: Mapping[str, SegmentKpis] = MappingProxyType({})  # before the first measure


class SegmentInfo(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    segment_id: str = Field(alias="segmentId")
    kind: Literal["learned", "rfm", "tier"]
    name: str
    definition: str
    size: int = Field(description="members who allow personalization (the membership index)")
    model_version: str | None = Field(alias="modelVersion", description="the model that defines it (none for tiers)")
    kpis: SegmentKpis | None = Field(
        default=None, description="as the daily measure job last computed them (none before it ran)"
    )


class SegmentDetail(SegmentInfo):
    description: str | None = Field(description="what its members have in common and a suggested action (learned)")


class SegmentList(BaseModel):
    segments: list[SegmentInfo]


class MembersPage(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    segment_id: str = Field(alias="segmentId")
    customers: list[str]
    next_cursor: str | None = Field(alias="nextCursor", description="pass as ?cursor= for the next page")


def definitions(spec: SegmentSpec | None, rules: TriggerRules) -> dict[str, tuple[str, str, str, str | None]]:
    """segment id -> (kind, name, definition, model version), tiers first."""
    found: dict[str, tuple[str, str, str, str | None]] = {}
    for tier in dict.fromkeys(rule.tier for rule in rules.rules):
        held = [f"{r.id} ({r.description or r.kind})" for r in rules.rules if r.tier == tier]
        found[segment_id("tier", tier)] = ("tier", tier, "trigger rules: " + "; ".join(held), None)
    if spec is None:
        return found
    for pattern, name in spec.rfm.names:
        definition = f"RF score {pattern} (recency and frequency quintiles, 5 = best)"
        found.setdefault(segment_id("rfm", name), ("rfm", name, definition, spec.version))
    found[segment_id("rfm", spec.rfm.no_orders)] = ("rfm", spec.rfm.no_orders, "no orders yet", spec.version)
    for index, name in enumerate(spec.clusters.names):
        definition = f"{spec.clusters.kind} segment {index} of model {spec.version}: {name}"
        found[segment_id("learned", name)] = ("learned", name, definition, spec.version)
    return found


def list_segments(
    spec: SegmentSpec | None, rules: TriggerRules, members: SegmentMembers, kpis: Mapping[str, SegmentKpis] = EMPTY
) -> SegmentList:
    return SegmentList(segments=[
        SegmentInfo(segment_id=sid, kind=kind, name=name, definition=text, size=members.count(sid),  # type: ignore[arg-type]
                    model_version=version, kpis=kpis.get(sid))
        for sid, (kind, name, text, version) in definitions(spec, rules).items()
    ])  # fmt: skip


def detail(segment: str, spec: SegmentSpec | None, rules: TriggerRules, members: SegmentMembers,
           kpis: Mapping[str, SegmentKpis]) -> SegmentDetail:  # fmt: skip
    """A segment's definition, size, description and KPIs; 404 for one that is not defined now."""
    found = definitions(spec, rules).get(segment)
    if found is None:
        raise SegmentNotFound(segment)
    kind, name, text, version = found
    description = None
    if kind == "learned" and spec is not None and spec.clusters.descriptions:
        description = spec.clusters.descriptions[spec.clusters.names.index(name)]
    return SegmentDetail(segment_id=segment, kind=kind, name=name, definition=text, size=members.count(segment),  # type: ignore[arg-type]
                         model_version=version, description=description,
                         kpis=kpis.get(segment))  # fmt: skip


def page(
    segment: str, spec: SegmentSpec | None, rules: TriggerRules, members: SegmentMembers, limit: int, cursor: str | None
) -> MembersPage:
    """One page of the segment's members; 404 for a segment that is not defined now."""
    if segment not in definitions(spec, rules):
        raise SegmentNotFound(segment)
    ids, last = members.members(segment, limit, _decode(cursor, segment) if cursor else None)
    return MembersPage(segment_id=segment, customers=ids, next_cursor=_encode(segment, last) if last else None)


def _encode(segment: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": segment, "a": after}).encode()).decode().rstrip("=")


def _decode(cursor: str, segment: str) -> str:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raw = None
    if not isinstance(raw, dict) or raw.get("s") != segment or not isinstance(raw.get("a"), str) or not raw["a"]:
        raise InvalidInput([FieldError("cursor", "not a cursor issued for this segment's listing")])
    return str(raw["a"])
