"""The unified customer profile, how events fold into it, and how two profiles merge.

Every feature is a composable aggregate (sums, min/max, last-writer-wins by event time, day
buckets), so folding is a pure function whose result does not depend on arrival order or
batching, and merging two profiles commutes with folding. Replays are recognised by stream
position, client retries by message id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from audience.domain.events import (
    EMAIL_UNSUBSCRIBED,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    PRODUCT_ADDED,
    PRODUCT_VIEWED,
    RECOGNISED_EVENTS,
    Alias,
    Group,
    Identify,
    Message,
    Track,
    parse_order,
)
from audience.domain.money import Currencies
from audience.domain.predictions import Predictions
from audience.domain.segments import SegmentChange, SegmentEvent, Segments, Tier, events_for, segment_id

# Money is exact in memory; on the wire it is a JSON number (DynamoDB stores numbers exactly).
Money = Annotated[Decimal, PlainSerializer(lambda d: float(d), return_type=float, when_used="json")]
# Kinesis sequence numbers run to 56+ digits, past DynamoDB's 38-digit numbers: stored as text.
SequenceNumber = Annotated[int, PlainSerializer(str, return_type=str, when_used="json")]

WINDOWS_DAYS = (30, 90)  # rolling windows the profile answers for
MAX_EVENT_NAMES = 200  # distinct track event names counted by name; the rest count as "(other)"
MAX_CATEGORIES = 50  # categories whose spend is kept; the rest count as "(other)"
MAX_GROUPS = 20  # accounts a customer belongs to; the least recently seen is dropped beyond
MAX_SEEN_MESSAGES = 100  # message-id fingerprints remembered for client-retry detection
MAX_LEDGER_ENTRIES = 2000  # orders remembered by id (the oldest are forgotten first)
MAX_DAYS = 400  # day buckets kept (the windows read the last 90 days)
MAX_SEGMENT_HISTORY = 20  # segment changes kept on the profile (the oldest dropped first)
MAX_PRODUCTS = 200  # products a customer touched, the most recently touched kept (recommendations' input)
OTHER = "(other)"


@dataclass(frozen=True, order=True)
class StreamPosition:
    """Where a record sits in the event stream. Within a shard, the records of one partition
    key arrive in sequence order and are retried from the first failure on, so "applied up to
    sequence n" per (shard, partition key) identifies every record already applied."""

    shard_id: str
    partition_key: str
    sequence_number: int

    @property
    def lane(self) -> str:
        return f"{self.shard_id}|{self.partition_key}"

    @property
    def tracked(self) -> bool:
        """Records from outside the stream (imports) carry no watermark: their repeats are caught
        by message id and by the order ledger."""
        return bool(self.shard_id)


@dataclass(frozen=True)
class PositionedMessage:
    message: Message
    position: StreamPosition


class Stamped(NamedTuple):
    """A value and the event time it was set at: the later event wins, whatever the arrival order.
    (A tuple, not a model: one is made per trait and context field of every event.)"""

    v: Any
    at: AwareDatetime


def _newer(value: Any, at: datetime, current: Stamped | None) -> bool:
    if current is None or at != current.at:
        return current is None or at > current.at
    return repr(value) > repr(current.v)  # the same instant: any fixed order keeps folds commutative


class LedgerEntry(NamedTuple):
    """What an order (or refund) added to the profile, so that the same order reported again
    (a client retry, a corrected re-export) replaces its amount instead of adding it twice."""

    amount: Money
    day: date


class Touch(NamedTuple):
    """What a customer did with one product: orders that held it, views, cart adds, and when last."""

    purchases: int
    views: int
    adds: int
    last: datetime


class Exposure(NamedTuple):
    """A customer's first exposure to an experiment, and their orders within its window."""

    variant: str
    segment: str | None  # the customer's learned segment when first exposed
    at: datetime
    until: datetime  # the end of the metric window
    orders: int = 0
    revenue: Money = Decimal(0)
    before: Money = Decimal(0)  # net revenue before the first exposure: CUPED's covariate


PURPOSES = ("analytics", "personalization", "marketing")


class ConsentState(NamedTuple):
    """One purpose's consent: granted or refused, when (event time) and from where (``identify``,
    ``import`` or ``api``). The later decision wins, whatever the arrival order."""

    granted: bool
    at: AwareDatetime
    source: str


class DayTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    orders: int = 0
    revenue: Money = Decimal(0)


class Profile(BaseModel):
    """Everything the engine knows about one customer (or, with ``merged_into``, a retired id)."""

    model_config = ConfigDict(populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    merged_into: str | None = Field(default=None, alias="mergedInto")
    known: bool = False  # some identity of this customer arrived as a userId
    identities: list[str] = Field(default_factory=list)
    first_seen: AwareDatetime | None = Field(default=None, alias="firstSeen")
    last_seen: AwareDatetime | None = Field(default=None, alias="lastSeen")
    event_counts: dict[str, int] = Field(default_factory=dict, alias="eventCounts")
    track_counts: dict[str, int] = Field(default_factory=dict, alias="trackCounts")
    orders: int = 0
    revenue: Money = Decimal(0)
    refunds: int = 0
    refunded: Money = Decimal(0)
    first_order_at: AwareDatetime | None = Field(default=None, alias="firstOrderAt")
    last_order_at: AwareDatetime | None = Field(default=None, alias="lastOrderAt")
    daily: dict[date, DayTotals] = Field(default_factory=dict, description="Day buckets for the windows.")
    hours: list[int] = Field(default_factory=lambda: [0] * 24, description="Events by local hour of day.")
    category_spend: dict[str, Money] = Field(default_factory=dict, alias="categorySpend")
    exposures: dict[str, Exposure] = Field(
        default_factory=dict, description="experiment id -> first exposure and the orders in its window"
    )
    products: dict[str, Touch] = Field(
        default_factory=dict, description=f"product id -> purchases, views, adds, last time; the newest {MAX_PRODUCTS}"
    )
    traits: dict[str, Stamped] = Field(default_factory=dict)
    context: dict[str, Stamped] = Field(default_factory=dict)
    groups: dict[str, Stamped] = Field(default_factory=dict, description="group id -> its latest traits")
    unsubscribed_at: AwareDatetime | None = Field(default=None, alias="unsubscribedAt")
    consent: dict[str, ConsentState] = Field(
        default_factory=dict, description="Per purpose (analytics, personalization, marketing); absent: not asked."
    )
    ledger: dict[str, LedgerEntry] = Field(
        default_factory=dict, description="Orders and refunds by fingerprint of their id: counted once."
    )
    segments: Segments | None = None
    tier: Tier | None = None
    predictions: Predictions | None = Field(default=None, description="The value model's, as of their asOf.")
    segment_history: list[SegmentChange] = Field(default_factory=list, alias="segmentHistory")
    outbox: list[SegmentEvent] = Field(
        default_factory=list, description="Segment events written with the change, removed once published."
    )
    # Bookkeeping: fingerprints of recent message ids, the last sequence applied per stream
    # lane, and the optimistic-concurrency version of the stored item.
    seen: list[str] = Field(default_factory=list)
    applied: dict[str, SequenceNumber] = Field(default_factory=dict)
    version: int = 0

    def exposed(self, experiment: str, variant: str, now: datetime, window: timedelta) -> Profile | None:
        """This profile with its first exposure to ``experiment`` recorded; None when it was already."""
        if experiment in self.exposures:
            return None
        first = Exposure(variant, self.segments.name if self.segments else None, now, now + window,
                         before=self.revenue - self.refunded)  # fmt: skip
        return self.model_copy(update={"exposures": {**self.exposures, experiment: first}})

    def placed(self, segments: Segments, reason: str) -> Profile:
        """This profile in ``segments``, the change recorded in its history (bounded)."""
        return self._moved(segments, self.tier, reason, segments.assigned_at)

    def tiered(self, tier: Tier | None, reason: str, at: datetime) -> Profile:
        """This profile in ``tier`` (None: out of any tier), the change recorded in its history."""
        return self._moved(self.segments, tier, reason, at)

    def _moved(self, segments: Segments | None, tier: Tier | None, reason: str, at: datetime) -> Profile:
        change = SegmentChange(
            at=at,
            model_version=segments.model_version if segments else None,
            reason=reason,
            segment=segments.name if segments else None,
            rfm=segments.rfm if segments else None,
            previous=self.segments.name if self.segments else None,
            previous_rfm=self.segments.rfm if self.segments else None,
            tier=tier.name if tier else None,
            previous_tier=self.tier.name if self.tier else None,
        )
        history = [*self.segment_history, change][-MAX_SEGMENT_HISTORY:]
        events = events_for(self.customer_id, change) if self.personalization_allowed else []
        return self.model_copy(update={"segments": segments, "tier": tier, "segment_history": history,
                                       "outbox": [*self.outbox, *events]})  # fmt: skip

    def segment_ids(self) -> list[str]:
        """Every segment the customer is in, as ``kind:slug`` ids (tier first: the most specific)."""
        ids = [segment_id("tier", self.tier.name)] if self.tier else []
        if self.segments:
            ids += [segment_id("rfm", self.segments.rfm), segment_id("learned", self.segments.name)]
        return ids

    def entered_because(self, segment: str) -> str:
        """The reason of the latest change that put the customer in ``segment`` (a ``kind:slug`` id)."""
        for change in reversed(self.segment_history):
            entered = {"learned": change.segment, "rfm": change.rfm, "tier": change.tier}
            previous = {"learned": change.previous, "rfm": change.previous_rfm, "tier": change.previous_tier}
            kind = segment.split(":", 1)[0]
            name = entered.get(kind)
            if name is not None and name != previous[kind] and segment_id(kind, name) == segment:
                return change.reason
        return "unknown (history trimmed)"

    def allows(self, purpose: str) -> bool:
        """Whether the customer allows ``purpose``: yes unless they refused it (opt-out)."""
        state = self.consent.get(purpose)
        return state is None or state.granted

    @property
    def personalization_allowed(self) -> bool:
        """No segment events, personalized answers or membership for a customer who refused it."""
        return self.allows("personalization")

    def consented(self, decisions: dict[str, bool], at: datetime, source: str) -> Profile:
        """This profile with the ``decisions`` (purpose -> granted) taken at ``at``, each kept only
        if it is the latest for its purpose."""
        consent = dict(self.consent)
        for purpose, granted in decisions.items():
            current = consent.get(purpose)
            if purpose in PURPOSES and (current is None or (at, granted) > (current.at, current.granted)):
                consent[purpose] = ConsentState(granted, at, source)
        return self.model_copy(update={"consent": consent})

    def retire(self, into: str) -> Profile:
        """This id now belongs to ``into``: keep only the redirect (and the stored version)."""
        return Profile(customer_id=self.customer_id, merged_into=into, version=self.version)

    @property
    def mean_days_between_orders(self) -> float | None:
        """(last - first) / (orders - 1): exact from three composable aggregates."""
        if self.orders < 2 or not self.first_order_at or not self.last_order_at:
            return None
        return round((self.last_order_at - self.first_order_at).total_seconds() / 86400 / (self.orders - 1), 2)

    def window(self, days: int, as_of: datetime) -> dict[str, Any]:
        start = as_of.date() - timedelta(days=days - 1)
        buckets = [t for day, t in self.daily.items() if start <= day <= as_of.date()]
        return {
            "orders": sum(t.orders for t in buckets),
            "revenue": float(sum((t.revenue for t in buckets), Decimal(0))),
        }


def fingerprint(message_id: str) -> str:
    """12 hex characters (48 bits) of the message id's hash: small enough to keep 100 per item."""
    return hashlib.blake2b(message_id.encode(), digest_size=6).hexdigest()


def fold(
    profile: Profile, events: Iterable[PositionedMessage], currencies: Currencies, now: datetime
) -> tuple[Profile, int]:
    """Return ``profile`` with ``events`` applied, and how many were skipped as replays of a
    record or repeats of a message id.

    ``now`` is the moment of the fold; what is kept depends on the entries alone (``bound``).
    """
    result = _copy(profile)
    seen, skipped = set(result.seen), 0
    for item in sorted(events, key=lambda e: (e.position.lane, e.position.sequence_number)):
        lane, sequence = item.position.lane, item.position.sequence_number
        if item.position.tracked:
            if sequence <= result.applied.get(lane, -1):
                skipped += 1  # a re-delivered record
                continue
            result.applied[lane] = sequence
        if item.message.message_id is not None and _ledger_key(item.message) is None:  # orders: the ledger
            mark = fingerprint(item.message.message_id)
            if mark in seen:
                skipped += 1  # the same message sent again
                continue
            seen.add(mark)
            result.seen.append(mark)
        if not _apply(result, item.message, currencies):
            skipped += 1  # an order already counted, at the same amount
    del result.seen[:-MAX_SEEN_MESSAGES]
    bound(result)
    return result, skipped


def merge(into: Profile, other: Profile, now: datetime) -> Profile:
    """One customer from two: the same result whichever events went to which side."""
    merged = _copy(into)
    merged.known = into.known or other.known
    merged.identities = sorted({*into.identities, *other.identities, other.customer_id})
    merged.first_seen = _earliest(into.first_seen, other.first_seen)
    merged.last_seen = _latest(into.last_seen, other.last_seen)
    _add_counts(merged.event_counts, other.event_counts)
    for name, count in other.track_counts.items():
        _count_event(merged.track_counts, name, count)
    merged.orders += other.orders
    merged.revenue += other.revenue
    merged.refunds += other.refunds
    merged.refunded += other.refunded
    merged.first_order_at = _earliest(into.first_order_at, other.first_order_at)
    merged.last_order_at = _latest(into.last_order_at, other.last_order_at)
    for day, totals in other.daily.items():
        _add_day(merged, day, totals.orders, totals.revenue)
    merged.hours = [a + b for a, b in zip(into.hours, other.hours, strict=True)]
    for category, spend in other.category_spend.items():
        _add_spend(merged.category_spend, category, spend)
    for product, touch in other.products.items():
        _touch(merged, product, touch)
    for experiment, exposure in other.exposures.items():  # the surviving id's exposure wins
        merged.exposures.setdefault(experiment, exposure)
    for target, source in ((merged.traits, other.traits), (merged.context, other.context),
                           (merged.groups, other.groups)):  # fmt: skip
        for name, stamped in source.items():
            if _newer(stamped.v, stamped.at, target.get(name)):
                target[name] = stamped
    _bound_groups(merged)
    merged.unsubscribed_at = _latest(into.unsubscribed_at, other.unsubscribed_at)
    for purpose, state in other.consent.items():
        current = merged.consent.get(purpose)
        if current is None or (state.at, state.granted) > (current.at, current.granted):
            merged.consent[purpose] = state
    for key, entry in other.ledger.items():
        if key in merged.ledger:  # the same order reached both ids: it counts once, at into's amount
            _unbook(merged, key, entry)
        else:
            merged.ledger[key] = entry
    merged.seen = (into.seen + [s for s in other.seen if s not in set(into.seen)])[-MAX_SEEN_MESSAGES:]
    for lane, sequence in other.applied.items():
        merged.applied[lane] = max(sequence, merged.applied.get(lane, -1))
    bound(merged)
    return merged


def _apply(profile: Profile, message: Message, currencies: Currencies) -> bool:
    """Apply one message; False when it changed nothing (an order already booked at that amount)."""
    at = message.occurred_at
    if isinstance(message, Track) and message.event in (ORDER_COMPLETED, ORDER_REFUNDED):
        booked = _book(profile, message, at, currencies)
        if booked != "new":  # a correction changes the amounts only: it is not another event
            return booked == "corrected"
    if not profile.known and message.user_id is not None and not isinstance(message, Alias):
        profile.known = True
    for identity in message.identities:
        if identity not in profile.identities:
            profile.identities = sorted({*profile.identities, identity})
    # plain comparisons, not min/max: this runs for every event (see `make bench`)
    if profile.first_seen is None or at < profile.first_seen:
        profile.first_seen = at
    if profile.last_seen is None or at > profile.last_seen:
        profile.last_seen = at
    profile.event_counts[message.type] = profile.event_counts.get(message.type, 0) + 1
    profile.hours[_local_hour(message, at)] += 1
    if message.context:
        _apply_context(profile, message.context, at)
    if isinstance(message, Track):
        _count_event(profile.track_counts, message.event, 1)
        if message.event in (PRODUCT_VIEWED, PRODUCT_ADDED):
            product = message.properties.get("product_id") or message.properties.get("sku")
            if isinstance(product, str | int) and str(product):
                viewed = message.event == PRODUCT_VIEWED
                _touch(profile, str(product), Touch(0, int(viewed), int(not viewed), at))
        if message.event == EMAIL_UNSUBSCRIBED:
            profile.unsubscribed_at = _latest(profile.unsubscribed_at, at)
    elif isinstance(message, Group):
        if _newer(message.traits, at, profile.groups.get(message.group_id)):
            profile.groups[message.group_id] = Stamped(message.traits, at)
            _bound_groups(profile)
    elif isinstance(message, Identify):
        for name, value in message.traits.items():
            if name == "consent" and isinstance(value, dict):  # checked at ingest: purpose -> bool
                source = "import" if (message.message_id or "").startswith("import:") else "identify"
                profile.consent = profile.consented(value, at, source).consent
            elif _newer(value, at, profile.traits.get(name)):
                profile.traits[name] = Stamped(value, at)
    return True


def _book(
    profile: Profile, track: Track, at: datetime, currencies: Currencies
) -> Literal["new", "corrected", "repeat"]:
    """Count an order or refund once per id: a repeat at the same amount changes nothing, a
    repeat at another amount (a corrected export) replaces the amount. Orders are keyed by
    ``order_id``; refunds, which may be partial and several per order, by message id.
    Category spend keeps the first report's split."""
    order = parse_order(track)
    amount = currencies.to_base(order.amount, order.currency)
    is_order = track.event == ORDER_COMPLETED
    key = _ledger_key(track)
    previous = profile.ledger.get(key) if key else None
    if previous is not None:
        if previous.amount == amount:
            return "repeat"
        _unbook(profile, key, previous)  # type: ignore[arg-type]
    if key is not None:
        profile.ledger[key] = LedgerEntry(amount, at.date())
    if not is_order:
        profile.refunds += 1
        profile.refunded += amount
        return "new" if previous is None else "corrected"
    profile.orders += 1
    profile.revenue += amount
    profile.first_order_at = _earliest(profile.first_order_at, at)
    profile.last_order_at = _latest(profile.last_order_at, at)
    _add_day(profile, at.date(), 1, amount)
    for experiment, exposure in profile.exposures.items():
        if exposure.at <= at < exposure.until:  # an outcome of the experiment (the ledger counts it once)
            profile.exposures[experiment] = exposure._replace(  # a correction changes the amount only
                orders=exposure.orders + (previous is None),
                revenue=exposure.revenue + amount - (previous.amount if previous else 0),
            )
    if previous is None:
        for product in order.products:
            if product.product_id:
                _touch(profile, product.product_id, Touch(1, 0, 0, at))
            if product.category:
                spend = currencies.to_base(product.price * product.quantity, order.currency)
                _add_spend(profile.category_spend, product.category, spend)
    return "new" if previous is None else "corrected"


def _ledger_key(message: Message) -> str | None:
    """Orders are booked by ``order_id``, refunds (which may be partial, several per order) by
    message id; the ledger then also recognises a client's retry."""
    if not isinstance(message, Track) or message.event not in (ORDER_COMPLETED, ORDER_REFUNDED):
        return None
    if message.event == ORDER_REFUNDED:
        return "r" + fingerprint(message.message_id) if message.message_id else None
    order_id = message.properties.get("order_id")
    return "o" + fingerprint(str(order_id)) if order_id not in (None, "") else None


def _unbook(profile: Profile, key: str, entry: LedgerEntry) -> None:
    """Take back what a ledger entry added (its key tells an order from a refund)."""
    if key.startswith("r"):
        profile.refunds -= 1
        profile.refunded -= entry.amount
        return
    profile.orders -= 1
    profile.revenue -= entry.amount
    if entry.day in profile.daily:
        _add_day(profile, entry.day, -1, -entry.amount)


def _apply_context(profile: Profile, context: dict[str, Any], at: datetime) -> None:
    device, location = context.get("device"), context.get("location")
    found = {
        "deviceType": device.get("type") if isinstance(device, dict) else None,
        "country": location.get("country") if isinstance(location, dict) else None,
        "locale": context.get("locale"),
        "timezone": context.get("timezone"),
    }
    for name, value in found.items():
        if isinstance(value, str) and value and _newer(value, at, profile.context.get(name)):
            profile.context[name] = Stamped(value, at)


def _local_hour(message: Message, at: datetime) -> int:
    zone = message.context.get("timezone")
    if isinstance(zone, str):
        try:
            return at.astimezone(ZoneInfo(zone)).hour
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return at.hour


def _count_event(counts: dict[str, int], name: str, count: int) -> None:
    if name not in counts and name not in RECOGNISED_EVENTS and len(counts) >= MAX_EVENT_NAMES:
        name = OTHER
    counts[name] = counts.get(name, 0) + count


def _add_spend(spend: dict[str, Decimal], category: str, amount: Decimal) -> None:
    if category not in spend and len(spend) >= MAX_CATEGORIES:
        category = OTHER
    spend[category] = spend.get(category, Decimal(0)) + amount


def _add_day(profile: Profile, day: date, orders: int, revenue: Decimal) -> None:
    totals = profile.daily.get(day) or DayTotals()
    profile.daily[day] = DayTotals(orders=totals.orders + orders, revenue=totals.revenue + revenue)


def _bound_groups(profile: Profile) -> None:
    """Keep the ``MAX_GROUPS`` accounts seen most recently."""
    if len(profile.groups) > MAX_GROUPS:
        newest = sorted(profile.groups.items(), key=lambda g: (g[1].at, g[0]), reverse=True)[:MAX_GROUPS]
        profile.groups = dict(sorted(newest))


def _copy(profile: Profile) -> Profile:
    """A copy safe to fold into: each mutable container copied once (its values are immutable).
    Much cheaper than a deep copy, which dominated the fold's cost."""
    return profile.model_copy(
        update={name: type(value)(value) for name, value in profile.__dict__.items() if isinstance(value, dict | list)}
    )


def _touch(profile: Profile, product: str, touch: Touch) -> None:
    """Add ``touch`` to what the customer did with ``product``."""
    was = profile.products.get(product)
    if was is not None:
        touch = Touch(was.purchases + touch.purchases, was.views + touch.views, was.adds + touch.adds,
                      max(was.last, touch.last))  # fmt: skip
    profile.products[product] = touch


def bound(profile: Profile) -> None:
    """Keep what grows with the history within its bounds: the day buckets to the newest
    ``MAX_DAYS`` (every window reads only the last 90 days), the ledger to its most recent
    orders, the products to the most recently touched, the groups to the most recently seen and
    the segment history to its latest changes. A function of the entries alone, so a store that
    keeps more (older pages) reads back the same profile."""
    if len(profile.daily) > MAX_DAYS:
        profile.daily = dict(sorted(profile.daily.items())[-MAX_DAYS:])
    _bound_groups(profile)
    del profile.segment_history[:-MAX_SEGMENT_HISTORY]
    if len(profile.ledger) > MAX_LEDGER_ENTRIES:
        newest = sorted(profile.ledger.items(), key=lambda kv: (kv[1].day, kv[0]))[-MAX_LEDGER_ENTRIES:]
        profile.ledger = dict(newest)
    if len(profile.products) > MAX_PRODUCTS:
        kept = sorted(profile.products.items(), key=lambda kv: (kv[1].last, kv[0]))[-MAX_PRODUCTS:]
        profile.products = dict(kept)


def _add_counts(into: dict[str, int], other: dict[str, int]) -> None:
    for name, count in other.items():
        into[name] = into.get(name, 0) + count


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(filter(None, (a, b)), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(filter(None, (a, b)), default=None)
