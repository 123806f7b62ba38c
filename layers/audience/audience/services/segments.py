"""The segments there are (the active model's learned segments and RFM cells, the trigger
rules' tiers) with their definitions and sizes, who is in each, page by page, and how each
changed day by day.

Sizes come from the measure job's stored counts (one object read, whatever the customer base):
counting the membership index on every request took seconds on the demo's data and grows with
the customers. Before the first measure job, the index is counted (a new stack: few customers)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from audience.domain.errors import FieldError, InvalidInput, SegmentNotFound
from audience.domain.profile import PURPOSES, Profile
from audience.domain.segments import segment_id
from audience.domain.triggers import TriggerRules
from audience.measure.kpis import FLOW_DAYS, NOTHING_MEASURED, Measured, SegmentKpis
from audience.ports import ProfileRepository, SegmentMembers
from audience.segmentation.spec import SegmentSpec

EMPTY = NOTHING_MEASURED  # before the first measure


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
    currency: str | None = Field(default=None, description="the base currency of every amount")
    sizes_as_of: AwareDatetime | None = Field(default=None, alias="sizesAsOf")


class SegmentList(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    segments: list[SegmentInfo]
    population: SegmentKpis | None = Field(
        default=None, description="every customer, as the measure job counted them: what a share is a share of"
    )
    currency: str | None = Field(default=None, description="the base currency of every amount")
    sizes_as_of: AwareDatetime | None = Field(
        default=None, alias="sizesAsOf", description="when the sizes were counted (none: counted for this answer)"
    )


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


def _size(segment: str, members: SegmentMembers, kpis: Measured) -> int:
    """The stored count once the measure job ran (a segment it found nobody in has none), else the index's."""
    if kpis.population is None:
        return members.count(segment)
    found = kpis.get(segment)
    return found.members or 0 if found is not None else 0


def list_segments(
    spec: SegmentSpec | None,
    rules: TriggerRules,
    members: SegmentMembers,
    kpis: Measured = EMPTY,
    currency: str | None = None,
) -> SegmentList:
    return SegmentList(segments=[
        SegmentInfo(segment_id=sid, kind=kind, name=name, definition=text, size=_size(sid, members, kpis),  # type: ignore[arg-type]
                    model_version=version, kpis=kpis.get(sid))
        for sid, (kind, name, text, version) in definitions(spec, rules).items()
    ], population=kpis.population, currency=currency,
       sizes_as_of=kpis.population.as_of if kpis.population else None)  # fmt: skip


def detail(segment: str, spec: SegmentSpec | None, rules: TriggerRules, members: SegmentMembers,
           kpis: Measured, currency: str | None = None) -> SegmentDetail:  # fmt: skip
    """A segment's definition, size, description and KPIs; 404 for one that is not defined now."""
    found = definitions(spec, rules).get(segment)
    if found is None:
        raise SegmentNotFound(segment)
    kind, name, text, version = found
    description = None
    if kind == "learned" and spec is not None and spec.clusters.descriptions:
        description = spec.clusters.descriptions[spec.clusters.names.index(name)]
    return SegmentDetail(segment_id=segment, kind=kind, name=name, definition=text,  # type: ignore[arg-type]
                         size=_size(segment, members, kpis), model_version=version, description=description,
                         kpis=kpis.get(segment), currency=currency,
                         sizes_as_of=kpis.population.as_of if kpis.population else None)  # fmt: skip


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


class MemberRow(BaseModel):
    """One member with what a marketer filters on (amounts in the base currency)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    last_order_at: AwareDatetime | None = Field(alias="lastOrderAt")
    orders: int
    net_revenue: float = Field(alias="netRevenue")
    clv12m: float | None = Field(description="the value model's 12-month value (none: no order or no model)")
    churn_risk: float | None = Field(alias="churnRisk")
    consent: dict[str, bool] = Field(description="analytics, personalization, marketing")

    @classmethod
    def of(cls, profile: Profile) -> MemberRow:
        predicted = profile.predictions
        return cls(
            customer_id=profile.customer_id,
            last_order_at=profile.last_order_at,
            orders=profile.orders,
            net_revenue=float(profile.revenue - profile.refunded),
            clv12m=float(predicted.clv_12m) if predicted and predicted.clv_12m is not None else None,
            churn_risk=float(predicted.churn_risk) if predicted and predicted.churn_risk is not None else None,
            consent={purpose: profile.allows(purpose) for purpose in PURPOSES},
        )


class MemberTable(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    segment_id: str = Field(alias="segmentId")
    currency: str
    members: list[MemberRow]
    next_cursor: str | None = Field(alias="nextCursor", description="pass as ?cursor= for the next page")


def member_table(
    segment: str,
    spec: SegmentSpec | None,
    rules: TriggerRules,
    members: SegmentMembers,
    profiles: ProfileRepository,
    limit: int,
    cursor: str | None,
    currency: str,
) -> MemberTable:
    """One page of the segment's members with their figures (one batched read of their profiles)."""
    listed = page(segment, spec, rules, members, limit, cursor)
    found = profiles.get_many(listed.customers)
    rows = [MemberRow.of(found[c]) for c in listed.customers if c in found]
    return MemberTable(segment_id=segment, currency=currency, members=rows, next_cursor=listed.next_cursor)


class TrendPoint(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    day: date
    customers: int | None = Field(description="members at the end of the day (all who allow analytics)")
    share: float | None = Field(description="of every customer (the population the measure job counted)")
    entered: int
    left: int
    measured: bool = Field(description="counted by the measure job that day (else: worked back from the moves)")


class Trend(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    segment_id: str = Field(alias="segmentId")
    name: str
    points: list[TrendPoint] = Field(description="oldest first, one a day")


def trend(segment: str, spec: SegmentSpec | None, rules: TriggerRules, kpis: Measured, trends: str | None) -> Trend:
    """The segment's size and share day by day: the measure job's daily points, and between them
    (or before the first) the size worked back from the latest count through each day's moves in
    and out (from the members' segment histories, the moves the segment events announced)."""
    found = definitions(spec, rules).get(segment)
    if found is None:
        raise SegmentNotFound(segment)
    stored: dict[str, dict[str, Any]] = json.loads(trends)["days"] if trends else {}
    moves = kpis.moves or {}
    latest = kpis.population.as_of.date() if kpis.population else None
    if latest is None:
        return Trend(segment_id=segment, name=found[1], points=[])
    now_size = kpis.get(segment).customers if kpis.get(segment) else 0  # type: ignore[union-attr]
    population = kpis.population.customers if kpis.population else 0
    points: list[TrendPoint] = []
    size: int | None = now_size
    for back in range(FLOW_DAYS + 1):
        day = latest - timedelta(days=back)
        entered = moves.get(f"{segment}|{day.isoformat()}|in", 0)
        left = moves.get(f"{segment}|{day.isoformat()}|out", 0)
        point = stored.get(day.isoformat())
        measured = point is not None
        if point is not None:
            counts = point["segments"].get(segment)
            size, population = (int(counts[1]) if counts else 0), int(point["population"])
        share = size / population if size is not None and population else None
        points.append(TrendPoint(day=day, customers=size, share=share, entered=entered, left=left, measured=measured))
        size = None if size is None else max(size - entered + left, 0)  # the day before
    return Trend(segment_id=segment, name=found[1], points=points[::-1])
