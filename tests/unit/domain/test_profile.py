import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import permutations
from typing import Any

import pytest

from audience.api.views import CustomerView
from audience.domain.events import Message, parse_request
from audience.domain.folding import fold, merge
from audience.domain.money import Currencies
from audience.domain.profile import (
    MAX_CONTENT_CATEGORIES,
    MAX_DAY_SESSIONS,
    MAX_DAYS,
    MAX_EVENT_NAMES,
    MAX_LEDGER_ENTRIES,
    MAX_PRODUCTS,
    OTHER,
    Browsing,
    PositionedMessage,
    Profile,
    StreamPosition,
    Touch,
)

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CURRENCIES = Currencies("USD", {"EUR": Decimal("1.10")})


def message(**fields: object) -> Message:
    return parse_request({"userId": "u1", **fields}, NOW, CURRENCIES)[0]


def at(sequence: int, msg: Message, shard: str = "shardId-000000000000", key: str = "u1") -> PositionedMessage:
    return PositionedMessage(msg, StreamPosition(shard, key, sequence))


def folded(events: list[Message], profile: Profile | None = None) -> Profile:
    result, _ = fold(profile or Profile(customer_id="u1"), [at(i, e) for i, e in enumerate(events)], CURRENCIES, NOW)
    return result


def shown(profile: Profile) -> dict[str, Any]:
    """The profile as the read API answers it, as of NOW."""
    return CustomerView.of(profile, NOW, "USD").model_dump(mode="json", by_alias=True)


ORDER_1 = message(
    type="track",
    event="Order Completed",
    timestamp="2026-11-10T10:00:00Z",
    properties={
        "total": "40.00",
        "currency": "USD",
        "products": [{"category": "Shoes", "price": 30}, {"category": "Socks", "price": 5, "quantity": 2}],
    },
)
ORDER_2 = message(
    type="track",
    event="Order Completed",
    timestamp="2026-09-01T09:00:00Z",
    properties={"revenue": 20, "currency": "EUR"},
)
REFUND = message(
    type="track", event="Order Refunded", timestamp="2026-11-12T10:00:00Z", properties={"total": 10, "currency": "USD"}
)
VIEW = message(
    type="track",
    event="Product Viewed",
    timestamp="2026-11-12T08:00:00Z",
    context={"device": {"type": "mobile"}, "locale": "en-GB", "timezone": "Europe/London"},
)
OPEN = message(type="track", event="Email Opened", timestamp="2026-11-13T08:00:00Z")
CLICK = message(type="track", event="Email Link Clicked", timestamp="2026-11-13T08:05:00Z")
UNSUBSCRIBE = message(type="track", event="Email Unsubscribed", timestamp="2026-11-14T08:05:00Z")
PAGE = message(type="page", name="Home", timestamp="2026-08-30T08:00:00Z", context={"device": {"type": "desktop"}})
IDENTIFY_NEW = message(type="identify", timestamp="2026-11-05T00:00:00Z", traits={"email": "new@example.com"})
IDENTIFY_OLD = message(
    type="identify", timestamp="2026-10-01T00:00:00Z", traits={"email": "old@example.com", "firstName": "Ada"}
)
EVERYTHING = [ORDER_1, ORDER_2, REFUND, VIEW, OPEN, CLICK, UNSUBSCRIBE, PAGE, IDENTIFY_NEW, IDENTIFY_OLD]


def test_rfm_is_kept_in_the_base_currency() -> None:
    profile = folded(EVERYTHING)
    rfm = shown(profile)["rfm"]
    assert rfm["orders"] == 2
    assert rfm["revenue"] == 62.0  # 40 USD + 20 EUR at 1.10
    assert (rfm["refunds"], rfm["refunded"], rfm["netRevenue"]) == (1, 10.0, 52.0)
    assert rfm["averageOrderValue"] == 31.0
    assert (rfm["firstOrderAt"], rfm["lastOrderAt"]) == ("2026-09-01T09:00:00Z", "2026-11-10T10:00:00Z")
    assert rfm["meanDaysBetweenOrders"] == 70.04
    assert rfm["daysSinceLastOrder"] == 12


def test_rolling_windows_follow_the_clock_without_new_events() -> None:
    profile = folded([ORDER_1, ORDER_2])
    assert profile.window(30, NOW) == {"orders": 1, "revenue": 40.0}
    assert profile.window(90, NOW) == {"orders": 2, "revenue": 62.0}
    later = datetime(2026, 12, 15, tzinfo=UTC)
    assert profile.window(30, later) == {"orders": 0, "revenue": 0.0}
    assert profile.window(90, later) == {"orders": 1, "revenue": 40.0}


def test_day_buckets_outside_the_windows_are_not_read_and_are_bounded_to_the_newest() -> None:
    old = message(type="track", event="Order Completed", timestamp="2025-01-01T00:00:00Z", properties={"total": 5})
    profile = folded([old, ORDER_1])
    assert profile.window(90, NOW)["orders"] == 1 and profile.orders == 2  # the all-time figures keep it
    many = [message(type="track", event="Order Completed", timestamp=f"{NOW.date() - timedelta(days=d)}T00:00:00Z",
                    properties={"total": 1}) for d in range(MAX_DAYS + 5)]  # fmt: skip
    kept = folded(many).daily
    assert len(kept) == MAX_DAYS and min(kept) == NOW.date() - timedelta(days=MAX_DAYS - 1)


def test_engagement_context_categories_and_traits() -> None:
    view = shown(folded(EVERYTHING))
    assert view["engagement"] | {"windows": None} == {
        "pageViews": 1,
        "productViews": 1,
        "cartAdds": 0,
        "cartViews": 0,
        "checkoutsStarted": 0,
        "emailOpens": 1,
        "emailClicks": 1,
        "clickThroughRate": 1.0,
        "unsubscribed": True,
        "screenViews": 0,
        "secondsOnSite": 0,
        "clicks": 0,
        "maxScrollDepth": None,
        "lastPageAt": "2026-08-30T08:00:00Z",
        "contentCategories": [],
        "windows": None,
    }
    assert view["context"] == {
        "deviceType": "mobile",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "preferredHour": 8,
    }
    assert view["topCategories"] == [{"category": "Shoes", "spend": 30.0}, {"category": "Socks", "spend": 10.0}]
    assert view["traits"] == {"email": "new@example.com", "firstName": "Ada"}  # newest per trait


def test_any_order_and_any_batching_gives_the_same_profile() -> None:
    events = [ORDER_1, ORDER_2, PAGE, IDENTIFY_NEW, IDENTIFY_OLD, VIEW]
    results = []
    for order in permutations(range(len(events))):
        profile = Profile(customer_id="u1")
        for sequence, index in enumerate(order):  # one event per batch, in this arrival order
            profile, _ = fold(profile, [at(sequence, events[index])], CURRENCIES, NOW)
        results.append(profile.model_dump(exclude={"applied", "seen"}))
    assert len(results) == 720 and all(r == results[0] for r in results)


def test_a_replayed_record_or_a_repeated_message_id_changes_nothing() -> None:
    once, skipped = fold(Profile(customer_id="u1"), [at(1, ORDER_1), at(2, VIEW)], CURRENCIES, NOW)
    assert skipped == 0
    replayed, skipped = fold(once, [at(1, ORDER_1), at(2, VIEW)], CURRENCIES, NOW)
    assert replayed == once and skipped == 2
    resent, skipped = fold(once, [at(3, ORDER_1)], CURRENCIES, NOW)  # the client sent it again
    assert resent.orders == 1 and skipped == 1


def test_positions_are_tracked_per_shard_and_partition_key() -> None:
    profile, _ = fold(Profile(customer_id="u1"), [at(10, ORDER_1, key="a1")], CURRENCIES, NOW)
    profile, _ = fold(profile, [at(5, ORDER_2, key="u1")], CURRENCIES, NOW)  # lower, but another lane
    assert profile.orders == 2


def order(order_id: str, total: str, **fields: object) -> Message:
    return message(
        type="track",
        event="Order Completed",
        timestamp="2026-11-10T10:00:00Z",
        properties={"order_id": order_id, "total": total, "products": [{"category": "Shoes", "price": total}]},
        **fields,
    )


def test_an_order_id_counts_once_and_a_corrected_amount_replaces_the_first() -> None:
    profile = folded([order("o-1", "40"), order("o-2", "10")])
    again, skipped = fold(profile, [at(5, order("o-1", "40", messageId="resent-by-another-tool"))], CURRENCIES, NOW)
    assert (again.orders, again.revenue, skipped) == (2, Decimal(50), 1)
    assert again.model_dump(exclude={"applied", "seen"}) == profile.model_dump(exclude={"applied", "seen"})

    corrected, skipped = fold(profile, [at(6, order("o-1", "25", messageId="corrected-export"))], CURRENCIES, NOW)
    assert (corrected.orders, corrected.revenue, skipped) == (2, Decimal(35), 0)
    assert corrected.window(30, NOW) == {"orders": 2, "revenue": 35.0}
    assert corrected.track_counts["Order Completed"] == 2  # a correction is not another event
    assert corrected.category_spend == {"Shoes": Decimal(50)}  # the first report's split is kept


def test_refunds_are_ledgered_by_message_id_so_partial_refunds_all_count() -> None:
    def refund(message_id: str) -> Message:
        return message(
            type="track", event="Order Refunded", messageId=message_id, properties={"order_id": "o-1", "total": 5}
        )

    profile = folded([order("o-1", "40"), refund("r-1"), refund("r-2")])
    assert (profile.refunds, profile.refunded) == (2, Decimal(10))
    again, _ = fold(profile, [at(9, refund("r-2"))], CURRENCIES, NOW)
    assert (again.refunds, again.refunded) == (2, Decimal(10))


def test_an_order_reported_under_two_ids_counts_once_when_they_merge() -> None:
    known = folded([order("o-1", "40"), order("o-2", "10")])
    anonymous = folded([order("o-1", "40", messageId="from-the-web")], Profile(customer_id="a1"))
    merged = merge(known, anonymous, NOW)
    assert (merged.orders, merged.revenue, merged.window(30, NOW)["orders"]) == (2, Decimal(50), 2)


def test_the_ledger_is_bounded_to_the_most_recent_orders() -> None:
    profile = folded([order(f"o-{i}", "1") for i in range(MAX_LEDGER_ENTRIES + 10)])
    assert len(profile.ledger) == MAX_LEDGER_ENTRIES and profile.orders == MAX_LEDGER_ENTRIES + 10


def test_merging_commutes_with_folding() -> None:
    anonymous = [PAGE, VIEW, ORDER_2]
    known = [IDENTIFY_NEW, ORDER_1, REFUND, IDENTIFY_OLD]
    separately = merge(folded(known), folded(anonymous, Profile(customer_id="a1")), NOW)
    together = folded(anonymous + known)
    skip = {"applied", "seen", "identities", "customer_id", "known"}
    assert separately.model_dump(exclude=skip) == together.model_dump(exclude=skip)
    assert merge(separately, Profile(customer_id="a1"), NOW).model_dump(exclude=skip) == separately.model_dump(
        exclude=skip
    )


def test_event_names_are_bounded_but_recognised_ones_always_count() -> None:
    names = [message(type="track", event=f"Custom {i}") for i in range(MAX_EVENT_NAMES + 5)]
    profile = folded([*names, OPEN])
    assert len(profile.track_counts) == MAX_EVENT_NAMES + 2
    assert profile.track_counts[OTHER] == 5 and profile.track_counts["Email Opened"] == 1


def test_the_public_view_hides_bookkeeping() -> None:
    view = shown(folded([ORDER_1]))
    assert not {"applied", "seen", "version", "daily", "hours"} & set(view)
    assert view["currency"] == "USD"


@pytest.mark.parametrize(
    "bad", [{"email": "not-an-email"}, {"age": -1}, {"birthday": "yesterday"}, {"consent": {"marketing": "maybe"}}]
)
def test_identify_traits_are_validated(bad: dict[str, object]) -> None:
    from audience.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        parse_request({"type": "identify", "userId": "u1", "traits": bad}, NOW)
    assert caught.value.errors[0].field.startswith("traits")


def test_a_thousand_events_shuffled_give_the_same_profile_as_in_order() -> None:
    rng = random.Random(42)
    kinds = [
        lambda i: {
            "type": "track",
            "event": "Order Completed",
            "properties": {
                "total": rng.randint(1, 500),
                "currency": rng.choice(["USD", "EUR"]),
                "products": [{"category": rng.choice("ABCDEFG"), "price": 3}],
            },
        },
        lambda i: {
            "type": "track",
            "event": rng.choice(
                ["Product Viewed", "Product Added", "Email Opened", "Email Link Clicked", f"Custom {i % 9}"]
            ),
        },
        lambda i: {"type": "page", "name": "Home", "context": {"device": {"type": rng.choice(["mobile", "desktop"])}}},
        lambda i: {"type": "identify", "traits": {"email": f"v{i}@example.com", "plan": rng.choice(["a", "b"])}},
        lambda i: {"type": "track", "event": "Order Refunded", "properties": {"total": 2}},
        lambda i: {  # more content categories than are kept, some visits with a session id
            "type": rng.choice(["page", "screen"]),
            "properties": {"category": f"C{rng.randrange(30)}"},
            "context": {"sessionId": f"s{rng.randrange(40)}"} if rng.random() < 0.5 else {},
        },
        lambda i: {
            "type": "track",
            "event": rng.choice(["Scroll Depth Reached", "Time On Page", "Page Unloaded", "Element Clicked"]),
            "properties": {"percent": rng.randint(0, 100), "seconds": rng.randint(0, 900), "timeOnPage": 70_000},
        },
    ]
    events = []
    for i in range(1000):
        moment = datetime(2026, 8, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 160_000))
        events.append(message(**rng.choice(kinds)(i), timestamp=moment.isoformat(), messageId=f"m-{i}"))
    in_order = folded(events)
    shuffled = events[:]
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + 37] for i in range(0, 1000, 37)]
    profile = Profile(customer_id="u1")
    for n, batch in enumerate(batches):
        profile, _ = fold(profile, [at(n * 100 + j, e) for j, e in enumerate(batch)], CURRENCIES, NOW)
    skip = {"applied", "seen"}
    assert profile.model_dump(exclude=skip) == in_order.model_dump(exclude=skip)
    assert shown(profile) == shown(in_order)
    assert len(in_order.content_views) == MAX_CONTENT_CATEGORIES + 1 and in_order.seconds_on_site > 0


def test_products_touched_are_counted_per_product_merged_and_bounded_to_the_newest() -> None:
    def viewed(product: str, day: int, event: str = "Product Viewed") -> Message:
        return message(type="track", event=event, timestamp=f"2026-11-{day:02d}T10:00:00Z",
                       properties={"product_id": product})  # fmt: skip

    tea = {"sku": "tea", "name": "Green tea", "price": "10", "quantity": 2}
    lines = [tea, {"price": "10"}, {**tea, "quantity": 1}]  # tea on two lines: one purchase
    bought = message(type="track", event="Order Completed", timestamp="2026-11-12T10:00:00Z",
                     properties={"order_id": "o-9", "total": "40", "products": lines})  # fmt: skip
    profile = folded([viewed("tea", 10), viewed("tea", 11, "Product Added"), viewed("cup", 9), bought])
    on_12th = datetime(2026, 11, 12, 10, tzinfo=UTC)
    assert profile.products["tea"] == Touch(1, 1, 1, on_12th, on_12th, on_12th, 1.0)
    assert profile.products["cup"] == Touch(0, 1, 0, datetime(2026, 11, 9, 10, tzinfo=UTC))
    resent, _ = fold(profile, [at(9, bought)], CURRENCIES, NOW)  # the order again: bought once
    assert resent.products["tea"].purchases == 1

    other = folded([viewed("tea", 13), viewed("lamp", 1)], Profile(customer_id="a1"))
    merged = merge(profile, other, NOW)
    # a view after the order moves the last touch, never the last purchase
    assert merged.products["tea"] == Touch(1, 2, 1, datetime(2026, 11, 13, 10, tzinfo=UTC), on_12th, on_12th, 1.0)
    assert "lamp" in merged.products

    many = folded([viewed(f"p{i:03d}", 1 + i % 20) for i in range(MAX_PRODUCTS + 30)])
    assert len(many.products) == MAX_PRODUCTS and "p019" in many.products and "p000" not in many.products


# ---------------------------------------------------------------- page behaviour


def browse(kind: str, minute: int, session: str | None = None, day: int = 20, **fields: Any) -> Message:
    """A browsing call on 2026-11-``day``, ``minute`` minutes after midnight UTC."""
    calls: dict[str, dict[str, Any]] = {
        "page": {"type": "page"},
        "screen": {"type": "screen", "name": "Home"},
        "scroll": {"type": "track", "event": "Scroll Depth Reached"},
        "time": {"type": "track", "event": "Time On Page"},
        "unload": {"type": "track", "event": "Page Unloaded"},  # RudderStack's autotrack: timeOnPage in ms
        "click": {"type": "track", "event": "Element Clicked"},
    }
    moment = datetime(2026, 11, day, tzinfo=UTC) + timedelta(minutes=minute)
    return message(**calls[kind], **fields, timestamp=moment.isoformat(),
                   context={"sessionId": session} if session else {})  # fmt: skip


BROWSING = [
    browse("page", 0, "s1", properties={"category": "Blog", "path": "/blog/a"}),
    browse("scroll", 2, "s1", properties={"percent": 75}),
    browse("time", 3, "s1", properties={"seconds": 95}),
    browse("click", 4, "s1"),
    browse("page", 600, properties={"category": "Docs"}),  # 10:00, no session id: the half hour is the visit
    browse("screen", 640, properties={"category": "Blog"}),  # 10:40, the next half hour: the same visit
    browse("page", 800),  # 13:20: a free half hour before it, another visit
    browse("unload", 801, properties={"timeOnPage": 5_000_000}),  # 5,000 s: one page counts for an hour at most
    browse("scroll", 802, properties={"depth": "40%"}),
]


def test_page_behaviour_folds_into_the_engagement_the_api_shows() -> None:
    engagement = shown(folded(BROWSING))["engagement"]
    assert engagement["pageViews"] == 4 and engagement["screenViews"] == 1
    assert (engagement["secondsOnSite"], engagement["clicks"], engagement["maxScrollDepth"]) == (95 + 3600, 1, 75)
    assert engagement["lastPageAt"] == "2026-11-20T13:20:00Z"
    assert engagement["contentCategories"] == [{"category": "Blog", "views": 2}, {"category": "Docs", "views": 1}]
    # sessions: s1, plus two runs of half hours without a session id (10:00-11:00, 13:00-13:30)
    week = {"pageViews": 4, "sessions": 3, "secondsOnSite": 3695, "clicks": 1, "maxScrollDepth": 75}
    assert engagement["windows"] == {"30d": week, "90d": week}
    later = datetime(2027, 1, 1, tzinfo=UTC)  # the windows follow the clock, the all-time figures stay
    view = CustomerView.of(folded(BROWSING), later, "USD").model_dump(mode="json", by_alias=True)["engagement"]
    assert view["windows"]["30d"] == {"pageViews": 0, "sessions": 0, "secondsOnSite": 0, "clicks": 0,
                                      "maxScrollDepth": 0} and view["secondsOnSite"] == 3695  # fmt: skip


def test_page_behaviour_in_any_order_and_batching_gives_the_same_profile() -> None:
    events = [BROWSING[0], BROWSING[1], BROWSING[4], BROWSING[5], BROWSING[7], browse("page", 1, "s1")]
    results = []
    for order in permutations(range(len(events))):
        profile = Profile(customer_id="u1")
        for sequence, index in enumerate(order):
            profile, _ = fold(profile, [at(sequence, events[index])], CURRENCIES, NOW)
        results.append(profile.model_dump(exclude={"applied", "seen"}))
    assert len(results) == 720 and all(r == results[0] for r in results)
    assert results[0]["daily"][date(2026, 11, 20)]["views"] == 4


def test_merging_commutes_with_folding_page_behaviour() -> None:
    anonymous = [*BROWSING[:4], BROWSING[5], browse("page", 5, "s2", day=21, properties={"category": "Docs"})]
    known = [*BROWSING[4:5], *BROWSING[6:], browse("click", 30, "s1"), ORDER_1]  # s1 on both sides: one session
    separately = merge(folded(known), folded(anonymous, Profile(customer_id="a1")), NOW)
    together = folded(anonymous + known)
    skip = {"applied", "seen", "identities", "customer_id", "known"}
    assert separately.model_dump(exclude=skip) == together.model_dump(exclude=skip)
    reversed_ = merge(folded(anonymous, Profile(customer_id="a1")), folded(known), NOW)
    assert reversed_.model_dump(exclude=skip) == together.model_dump(exclude=skip)
    assert together.browsing(30, NOW) == Browsing(page_views=5, sessions=4, seconds=3695, clicks=2, max_scroll=75)


def test_content_categories_are_bounded_the_same_whatever_the_order() -> None:
    views = [browse("page", i, properties={"category": f"C{i % 30:02d}"}) for i in range(90)]
    first = folded(views).content_views
    assert folded(views[::-1]).content_views == first
    assert len(first) == MAX_CONTENT_CATEGORIES + 1 and sum(first.values()) == 90
    assert all(v == 3 for c, v in first.items() if c != OTHER) and first[OTHER] == 3 * (30 - MAX_CONTENT_CATEGORIES)
    halves = merge(folded(views[:45]), folded(views[45:], Profile(customer_id="a1")), NOW)
    assert halves.content_views == first


def test_a_days_sessions_and_the_reported_figures_are_bounded() -> None:
    sessions = [browse("page", i, f"session-{i}") for i in range(MAX_DAY_SESSIONS + 10)]
    day = folded(sessions).daily[date(2026, 11, 20)]
    assert len(day.sessions) == MAX_DAY_SESSIONS and folded(sessions[::-1]).daily == folded(sessions).daily
    odd = folded([browse("scroll", 0, "s", properties={"percent": 150}), browse("scroll", 1, "s",
                  properties={"percent": "lots"}), browse("time", 2, "s", properties={"seconds": -20})])  # fmt: skip
    assert (odd.max_scroll_depth, odd.seconds_on_site, odd.browsing(30, NOW).sessions) == (100, 0, 1)


def test_page_behaviour_survives_the_stored_layout() -> None:
    from audience.adapters.profile_items import assemble, split, to_items

    profile = folded([*BROWSING, ORDER_1])
    document, entries = split(profile)
    assert {"secondsOnSite", "clicks", "maxScrollDepth", "lastPageAt", "contentViews"} <= set(document)
    stored = assemble(to_items(profile))
    assert stored is not None and stored[0].model_dump(exclude={"version"}) == profile.model_dump(exclude={"version"})
    assert list(entries["d:2026-11-10"]) == ["orders", "revenue"]  # a day without browsing: stored as before


def test_traits_read_back_from_dynamodb_answer_as_json_numbers() -> None:
    """DynamoDB gives numbers back as Decimal: the view answers them as JSON numbers (a group's
    ``employees: 42`` once failed the read API's validation with a 502)."""
    from audience.adapters.profile_items import assemble, to_items

    at = datetime(2026, 11, 20, tzinfo=UTC)
    sent = {"userId": "u1", "timestamp": at.isoformat()}
    identify = {**sent, "type": "identify", "traits": {"plan": "pro", "seats": 3, "score": 0.5}, "messageId": "i1"}
    group = {**sent, "type": "group", "groupId": "acme", "messageId": "g1",
             "traits": {"name": "Acme", "employees": 42, "nested": {"share": 1.5}}}  # fmt: skip
    messages = parse_request({"batch": [identify, group]}, at, Currencies("USD"))
    positioned = [PositionedMessage(m, StreamPosition("s", "u1", n)) for n, m in enumerate(messages)]
    folded, _ = fold(Profile(customer_id="u1"), positioned, Currencies("USD"), at)
    assembled = assemble(to_items(folded))
    assert assembled is not None
    stored = assembled[0]
    assert isinstance(stored.groups["acme"].v["employees"], Decimal)  # as the adapter reads it

    view = CustomerView.of(stored, at, "USD").model_dump(mode="json", by_alias=True)
    assert view["traits"]["seats"] == 3 and view["traits"]["score"] == 0.5
    assert view["groups"][0]["traits"] == {"name": "Acme", "employees": 42, "nested": {"share": 1.5}}
