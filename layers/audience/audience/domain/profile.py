"""The unified customer profile: what it keeps of a customer and what it answers
(``folding`` says how events fold into it and how two profiles merge).

Every feature is a composable aggregate (sums, min/max, last-writer-wins by event time, day
buckets), with a bound on each that grows, so a profile's size does not grow without end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from audience.domain.events import (
    Message,
)
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
MAX_CONTENT_CATEGORIES = 20  # content categories whose page views are kept; the rest count as "(other)"
MAX_DAY_SESSIONS = 24  # distinct session ids counted in a day (a fingerprint each on the day's bucket)
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


def newer(value: Any, at: datetime, current: Stamped | None) -> bool:
    if current is None or at != current.at:
        return current is None or at > current.at
    return repr(value) > repr(current.v)  # the same instant: any fixed order keeps folds commutative


class LedgerEntry(NamedTuple):
    """What an order (or refund) added to the profile, so that the same order reported again
    (a client retry, a corrected re-export) replaces its amount instead of adding it twice."""

    amount: Money
    day: date


REPEAT_HALF_LIFE_DAYS = 90.0  # a purchase counts half as much to the repeat signal after this long


def decay(days: float) -> float:
    """What a purchase ``days`` old weighs in the repeat signal (1 when new)."""
    return float(0.5 ** (days / REPEAT_HALF_LIFE_DAYS))


class Touch(NamedTuple):
    """What a customer did with one product: orders that held it, views, cart adds, when last
    touched (any of these); and of the purchases alone: the first, the last, and their count
    decayed by age as of the last (``repeat``: the time-decayed personal frequency). A bounded
    aggregate (no list per purchase): two merge exactly, in any order."""

    purchases: int
    views: int
    adds: int
    last: datetime
    bought: datetime | None = None  # the last purchase (a later view or cart add does not move it)
    first_bought: datetime | None = None
    repeat: float = 0.0  # sum over purchases of decay(bought - purchase)

    @classmethod
    def purchase(cls, at: datetime) -> Touch:
        return cls(1, 0, 0, at, at, at, 1.0)

    @property
    def last_bought(self) -> datetime | None:
        """The last purchase (a profile stored before purchases were kept apart: the last touch)."""
        return self.bought or (self.last if self.purchases else None)

    def repeat_at(self, now: datetime) -> float:
        """The time-decayed purchase count as of ``now`` (stored before it was kept: the count)."""
        bought = self.last_bought
        if bought is None:
            return 0.0
        return (self.repeat or float(self.purchases)) * decay(max((now - bought).total_seconds(), 0.0) / 86_400)

    def plus(self, other: Touch) -> Touch:
        """Both touches in one."""
        bought = max(filter(None, (self.bought, other.bought)), default=None)
        firsts = [t for t in (self.first_bought, other.first_bought) if t is not None]
        repeat = sum(t.repeat_at(bought) for t in (self, other) if t.purchases) if bought else 0.0
        return Touch(self.purchases + other.purchases, self.views + other.views, self.adds + other.adds,
                     max(self.last, other.last), bought, min(firsts, default=None), repeat)  # fmt: skip


class Exposure(NamedTuple):
    """A customer's first exposure to an experiment, and their orders within its window. Stored
    as a list in a profile page; the last three fields add about 31 bytes as DynamoDB counts them
    (a version of 23 characters, two short numbers; ``tests/unit/services/test_experiment_statistics.py``)."""

    variant: str
    segment: str | None  # the customer's learned segment when first exposed
    at: datetime
    until: datetime  # the end of the metric window
    orders: int = 0
    revenue: Money = Decimal(0)  # net: refunds inside the window reduce it
    before: Money = Decimal(0)  # net revenue before the first exposure: CUPED's covariate
    predicted: Money = Decimal(0)  # the value model's expected spend within the window, at exposure: CUPAC's
    model: str | None = None  # the value model version that predicted it
    refunded: Money = Decimal(0)  # refunds inside the window: the guardrail


PURPOSES = ("analytics", "personalization", "marketing")


class ConsentState(NamedTuple):
    """One purpose's consent: granted or refused, when (event time) and from where (``identify``,
    ``import`` or ``api``). The later decision wins, whatever the arrival order."""

    granted: bool
    at: AwareDatetime
    source: str


class DayTotals(BaseModel):
    """One UTC day's orders and page behaviour. Every field composes (sums, a max, a set union),
    so a day folds to the same totals in any order; a field left at its default is not stored."""

    model_config = ConfigDict(frozen=True)

    orders: int = 0
    revenue: Money = Decimal(0)
    views: int = 0  # page and screen calls
    seconds: int = 0  # time on page reported by the page's plugins
    clicks: int = 0
    scroll: int = 0  # the deepest scroll reported that day, in percent
    sessions: tuple[str, ...] = ()  # fingerprints of the day's session ids: the MAX_DAY_SESSIONS smallest, sorted
    slots: int = 0  # half hours (bit 0: 00:00-00:30 UTC) of browsing that carried no session id

    def plus(self, other: DayTotals) -> DayTotals:
        return DayTotals(
            orders=self.orders + other.orders,
            revenue=self.revenue + other.revenue,
            views=self.views + other.views,
            seconds=self.seconds + other.seconds,
            clicks=self.clicks + other.clicks,
            scroll=max(self.scroll, other.scroll),
            sessions=self.sessions if not other.sessions else
            tuple(sorted({*self.sessions, *other.sessions})[:MAX_DAY_SESSIONS]),
            slots=self.slots | other.slots,
        )  # fmt: skip

    @property
    def visits(self) -> int:
        """The day's sessions: its distinct session ids, plus, for browsing without one (Segment's
        libraries send none), each run of consecutive active half hours: a gap of a free half hour
        starts a new visit. Both are functions of sets, so arrival order cannot change them (a
        30-minute inactivity rule over the events themselves would depend on what arrived first)."""
        return len(self.sessions) + (self.slots & ~(self.slots << 1)).bit_count()


class Browsing(NamedTuple):
    """Page behaviour over a window of days (the day buckets')."""

    page_views: int
    sessions: int
    seconds: int
    clicks: int
    max_scroll: int


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
    # page behaviour, all time (page and screen views are in event_counts; per day: ``daily``)
    seconds_on_site: int = Field(default=0, alias="secondsOnSite")
    clicks: int = 0
    max_scroll_depth: int | None = Field(default=None, alias="maxScrollDepth", description="percent")
    last_page_at: AwareDatetime | None = Field(default=None, alias="lastPageAt")
    content_views: dict[str, int] = Field(
        default_factory=dict, alias="contentViews",
        description=f"page and screen views by properties.category; {MAX_CONTENT_CATEGORIES} kept, the rest (other)",
    )  # fmt: skip
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
        predictions = self.predictions
        # 90 days' expected orders times the expected order value, scaled to the window
        spend = (
            predictions.expected_orders_90d * predictions.expected_order_value * window.days / 90 if predictions else 0
        )
        predicted = Decimal(str(round(spend, 2)))
        first = Exposure(variant, self.segments.name if self.segments else None, now, now + window,
                         before=self.revenue - self.refunded, predicted=predicted,
                         model=predictions.model_version if predictions else None)  # fmt: skip
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
        buckets = self._days(days, as_of)
        return {
            "orders": sum(t.orders for t in buckets),
            "revenue": float(sum((t.revenue for t in buckets), Decimal(0))),
        }

    def browsing(self, days: int, as_of: datetime) -> Browsing:
        """Page behaviour in the last ``days`` days up to ``as_of`` (UTC days)."""
        buckets = self._days(days, as_of)
        return Browsing(
            page_views=sum(t.views for t in buckets),
            sessions=sum(t.visits for t in buckets),
            seconds=sum(t.seconds for t in buckets),
            clicks=sum(t.clicks for t in buckets),
            max_scroll=max((t.scroll for t in buckets), default=0),
        )

    def _days(self, days: int, as_of: datetime) -> list[DayTotals]:
        start = as_of.date() - timedelta(days=days - 1)
        return [t for day, t in self.daily.items() if start <= day <= as_of.date()]
