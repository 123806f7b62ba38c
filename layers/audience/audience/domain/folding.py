"""How events fold into a profile, and how two profiles merge.

Folding is a pure function whose result does not depend on arrival order or batching, and
merging two profiles commutes with folding. Replays are recognised by stream position, client
retries by message id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from audience.domain.events import (
    CLICK_EVENTS,
    CONTENT_CATEGORY_KEY,
    EMAIL_UNSUBSCRIBED,
    ENGAGEMENT_EVENTS,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    PRODUCT_ADDED,
    PRODUCT_VIEWED,
    RECOGNISED_EVENTS,
    SCROLL_EVENTS,
    SCROLL_KEYS,
    SESSION_KEY,
    TIME_KEYS,
    Alias,
    Group,
    Identify,
    Message,
    Page,
    Screen,
    Track,
    parse_order,
)
from audience.domain.money import Currencies
from audience.domain.profile import (
    MAX_CATEGORIES,
    MAX_CONTENT_CATEGORIES,
    MAX_DAYS,
    MAX_EVENT_NAMES,
    MAX_GROUPS,
    MAX_LEDGER_ENTRIES,
    MAX_PRODUCTS,
    MAX_SEEN_MESSAGES,
    MAX_SEGMENT_HISTORY,
    OTHER,
    DayTotals,
    LedgerEntry,
    PositionedMessage,
    Profile,
    Stamped,
    Touch,
    newer,
)


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
        _add_totals(merged, day, totals)
    merged.hours = [a + b for a, b in zip(into.hours, other.hours, strict=True)]
    for category, spend in other.category_spend.items():
        _add_spend(merged.category_spend, category, spend)
    merged.seconds_on_site += other.seconds_on_site
    merged.clicks += other.clicks
    depths = [d for d in (into.max_scroll_depth, other.max_scroll_depth) if d is not None]
    merged.max_scroll_depth = max(depths, default=None)
    merged.last_page_at = _latest(into.last_page_at, other.last_page_at)
    for category, views in other.content_views.items():
        _count_content(merged.content_views, category, views)
    for product, touch in other.products.items():
        _touch(merged, product, touch)
    for experiment, exposure in other.exposures.items():  # the surviving id's exposure wins
        merged.exposures.setdefault(experiment, exposure)
    for target, source in ((merged.traits, other.traits), (merged.context, other.context),
                           (merged.groups, other.groups)):  # fmt: skip
        for name, stamped in source.items():
            if newer(stamped.v, stamped.at, target.get(name)):
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
        elif message.event in ENGAGEMENT_EVENTS:
            _engaged(profile, message, at)
    elif isinstance(message, Page | Screen):
        _viewed(profile, message, at)
    elif isinstance(message, Group):
        if newer(message.traits, at, profile.groups.get(message.group_id)):
            profile.groups[message.group_id] = Stamped(message.traits, at)
            _bound_groups(profile)
    elif isinstance(message, Identify):
        for name, value in message.traits.items():
            if name == "consent" and isinstance(value, dict):  # checked at ingest: purpose -> bool
                source = "import" if (message.message_id or "").startswith("import:") else "identify"
                profile.consent = profile.consented(value, at, source).consent
            elif newer(value, at, profile.traits.get(name)):
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
        change = amount - (previous.amount if previous else 0)
        for experiment, exposure in profile.exposures.items():
            if exposure.at <= at < exposure.until:  # a refund inside the window: net revenue, and the guardrail
                profile.exposures[experiment] = exposure._replace(
                    revenue=exposure.revenue - change, refunded=exposure.refunded + change
                )
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
        for product_id in dict.fromkeys(p.product_id for p in order.products if p.product_id):  # 2 lines: 1 purchase
            _touch(profile, product_id, Touch.purchase(at))
        for product in order.products:
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
        if isinstance(value, str) and value and newer(value, at, profile.context.get(name)):
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
    _add_totals(profile, day, DayTotals(orders=orders, revenue=revenue))


def _add_totals(profile: Profile, day: date, totals: DayTotals) -> None:
    was = profile.daily.get(day)
    profile.daily[day] = was.plus(totals) if was is not None else totals


# ---------------------------------------------------------------- page behaviour

MAX_SECONDS_A_PAGE = 3600  # a tab left open overnight reports hours: one page counts for at most an hour
MAX_CATEGORY_LENGTH = 100


def _viewed(profile: Profile, message: Page | Screen, at: datetime) -> None:
    """A page or screen view: the day's views and visit, the last view, its content category."""
    profile.last_page_at = _latest(profile.last_page_at, at)
    category = message.properties.get(CONTENT_CATEGORY_KEY)
    if isinstance(category, str) and category.strip():
        _count_content(profile.content_views, category.strip()[:MAX_CATEGORY_LENGTH], 1)
    _browsed(profile, message, at, DayTotals(views=1))


def _engaged(profile: Profile, track: Track, at: datetime) -> None:
    """A scroll depth, a time on page or a click reported by a page's plugin (``events.ENGAGEMENT_EVENTS``)."""
    if track.event in SCROLL_EVENTS:
        depth = next((d for d in map(_number, (track.properties.get(k) for k in SCROLL_KEYS)) if d is not None), None)
        depth = round(min(max(depth, 0.0), 100.0)) if depth is not None else 0
        if profile.max_scroll_depth is None or depth > profile.max_scroll_depth:
            profile.max_scroll_depth = depth
        _browsed(profile, track, at, DayTotals(scroll=depth))
    elif track.event in CLICK_EVENTS:
        profile.clicks += 1
        _browsed(profile, track, at, DayTotals(clicks=1))
    else:
        found = ((_number(track.properties.get(key)), per_second) for key, per_second in TIME_KEYS)
        seconds = next((round(min(max(n / per, 0.0), MAX_SECONDS_A_PAGE)) for n, per in found if n is not None), 0)
        profile.seconds_on_site += seconds
        _browsed(profile, track, at, DayTotals(seconds=seconds))


def _browsed(profile: Profile, message: Message, at: datetime, totals: DayTotals) -> None:
    """Add ``totals`` to the day's, with the visit it belongs to: its session id when the sender
    gave one (``context.sessionId``), else the half hour it happened in (``DayTotals.visits``)."""
    session = message.context.get(SESSION_KEY)
    at = at.astimezone(UTC)
    if isinstance(session, str | int) and not isinstance(session, bool) and str(session):
        mark = hashlib.blake2b(str(session).encode(), digest_size=4).hexdigest()
        totals = totals.model_copy(update={"sessions": (mark,)})
    else:
        totals = totals.model_copy(update={"slots": 1 << (at.hour * 2 + at.minute // 30)})
    _add_totals(profile, at.date(), totals)


def _number(value: Any) -> float | None:
    """A number as plugins send one: 75, 75.0, "75" or "75%"; None for anything else."""
    if isinstance(value, str):
        try:
            value = float(value.strip().removesuffix("%"))
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _rank(category: str) -> bytes:
    return hashlib.blake2b(category.encode(), digest_size=8).digest()


def _count_content(views: dict[str, int], category: str, count: int) -> None:
    """Count views of ``category``, keeping at most ``MAX_CONTENT_CATEGORIES`` by name: those
    first by a fixed hash of the name (the rest count as "(other)"), so the same categories are
    kept whatever order the views arrive in, and a kept category has all of its views."""
    if category != OTHER and category not in views and len(views) - (OTHER in views) >= MAX_CONTENT_CATEGORIES:
        last = max((c for c in views if c != OTHER), key=_rank)
        if _rank(category) < _rank(last):
            views[OTHER] = views.get(OTHER, 0) + views.pop(last)  # it gives up its place
        else:
            category = OTHER
    views[category] = views.get(category, 0) + count


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
    profile.products[product] = touch if was is None else was.plus(touch)


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
