"""The unified customer profile and how events fold into it.

Folding is a pure function of (stored profile, events): the stream service can re-read and
re-fold on a write conflict, and replays are recognised by stream position so a record
delivered twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from audience.domain.events import ORDER_COMPLETED, Identify, Message, Track, parse_order

# Money is exact in memory; on the wire it is a JSON number (DynamoDB stores numbers exactly).
Money = Annotated[Decimal, PlainSerializer(lambda d: float(d), return_type=float, when_used="json")]
# Kinesis sequence numbers run to 56+ digits, past DynamoDB's 38-digit numbers: stored as text.
SequenceNumber = Annotated[int, PlainSerializer(str, return_type=str, when_used="json")]


@dataclass(frozen=True, order=True)
class StreamPosition:
    """Where a record sits in the event stream: sequence numbers grow within a shard."""

    shard_id: str
    sequence_number: int


class Profile(BaseModel):
    """Everything the engine knows about one customer."""

    model_config = ConfigDict(populate_by_name=True, validate_assignment=False)

    customer_id: str = Field(alias="customerId")
    first_seen: AwareDatetime | None = Field(default=None, alias="firstSeen")
    last_seen: AwareDatetime | None = Field(default=None, alias="lastSeen")
    event_counts: dict[str, int] = Field(default_factory=dict, alias="eventCounts")
    track_counts: dict[str, int] = Field(default_factory=dict, alias="trackCounts")
    orders: int = 0
    revenue: dict[str, Money] = Field(default_factory=dict, description="Order revenue by ISO 4217 currency.")
    first_order_at: AwareDatetime | None = Field(default=None, alias="firstOrderAt")
    last_order_at: AwareDatetime | None = Field(default=None, alias="lastOrderAt")
    traits: dict[str, Any] = Field(default_factory=dict)
    traits_updated_at: AwareDatetime | None = Field(default=None, alias="traitsUpdatedAt")
    # Bookkeeping, not shown to API users: the last stream position applied per shard
    # (replay protection) and the optimistic-concurrency version of the stored item.
    applied: dict[str, SequenceNumber] = Field(default_factory=dict)
    version: int = 0

    def public_view(self) -> dict[str, Any]:
        """The profile as the read API shows it."""
        return self.model_dump(mode="json", by_alias=True, exclude={"applied", "version"})


@dataclass(frozen=True)
class PositionedMessage:
    message: Message
    position: StreamPosition


def fold(profile: Profile, events: Iterable[PositionedMessage]) -> Profile:
    """Return ``profile`` with ``events`` applied; events at or before an applied position are skipped.

    The result does not depend on the order of ``events``: times take min/max, counts add,
    and identify traits are last-writer-wins by event time.
    """
    result = profile.model_copy(deep=True)
    for item in sorted(events, key=lambda e: e.position):
        if item.position.sequence_number <= result.applied.get(item.position.shard_id, -1):
            continue
        _apply(result, item.message)
        result.applied[item.position.shard_id] = item.position.sequence_number
    return result


def _apply(profile: Profile, message: Message) -> None:
    at = message.occurred_at
    profile.first_seen = min(filter(None, (profile.first_seen, at)))
    profile.last_seen = max(filter(None, (profile.last_seen, at)))
    profile.event_counts[message.type] = profile.event_counts.get(message.type, 0) + 1
    if isinstance(message, Track):
        profile.track_counts[message.event] = profile.track_counts.get(message.event, 0) + 1
        if message.event == ORDER_COMPLETED:
            _apply_order(profile, message, at)
    elif isinstance(message, Identify):
        _apply_traits(profile, message.traits, at)


def _apply_order(profile: Profile, track: Track, at: datetime) -> None:
    order = parse_order(track)
    profile.orders += 1
    profile.revenue[order.currency] = profile.revenue.get(order.currency, Decimal(0)) + order.amount
    profile.first_order_at = min(filter(None, (profile.first_order_at, at)))
    profile.last_order_at = max(filter(None, (profile.last_order_at, at)))


def _apply_traits(profile: Profile, traits: dict[str, Any], at: datetime) -> None:
    if profile.traits_updated_at is None or at >= profile.traits_updated_at:
        profile.traits.update(traits)
        profile.traits_updated_at = at
    else:  # an older identify only fills traits we have never heard of
        for key, value in traits.items():
            profile.traits.setdefault(key, value)
