from datetime import UTC, datetime
from decimal import Decimal
from itertools import permutations

from audience.domain.events import Message, parse_request
from audience.domain.profile import PositionedMessage, Profile, StreamPosition, fold

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def message(**fields: object) -> Message:
    return parse_request({"userId": "u1", **fields}, NOW)[0]


def at(sequence: int, msg: Message, shard: str = "shardId-000000000000") -> PositionedMessage:
    return PositionedMessage(msg, StreamPosition(shard, sequence))


ORDER_1 = message(
    type="track",
    event="Order Completed",
    timestamp="2026-11-10T10:00:00Z",
    properties={"total": "40.00", "currency": "USD"},
)
ORDER_2 = message(
    type="track",
    event="Order Completed",
    timestamp="2026-11-01T09:00:00Z",
    properties={"revenue": 15.5, "currency": "EUR"},
)
VIEW = message(type="track", event="Product Viewed", timestamp="2026-11-12T08:00:00Z")
PAGE = message(type="page", name="Home", timestamp="2026-10-30T08:00:00Z")
IDENTIFY_NEW = message(type="identify", timestamp="2026-11-05T00:00:00Z", traits={"email": "new@example.com"})
IDENTIFY_OLD = message(
    type="identify", timestamp="2026-10-01T00:00:00Z", traits={"email": "old@example.com", "firstName": "Ada"}
)


def test_orders_counts_times_and_traits_are_folded() -> None:
    events = [ORDER_1, ORDER_2, VIEW, PAGE, IDENTIFY_NEW, IDENTIFY_OLD]
    profile = fold(Profile(customer_id="u1"), [at(i, e) for i, e in enumerate(events)])

    assert profile.orders == 2
    assert profile.revenue == {"USD": Decimal("40.00"), "EUR": Decimal("15.5")}
    assert profile.first_order_at == datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert profile.last_order_at == datetime(2026, 11, 10, 10, tzinfo=UTC)
    assert profile.first_seen == datetime(2026, 10, 1, tzinfo=UTC)  # the old identify
    assert profile.last_seen == datetime(2026, 11, 12, 8, tzinfo=UTC)
    assert profile.event_counts == {"track": 3, "page": 1, "identify": 2}
    assert profile.track_counts == {"Order Completed": 2, "Product Viewed": 1}
    # the newer identify wins; the older one only adds what was unknown
    assert profile.traits == {"email": "new@example.com", "firstName": "Ada"}


def test_the_result_does_not_depend_on_arrival_order_or_batching() -> None:
    events = [ORDER_1, ORDER_2, PAGE, IDENTIFY_NEW, IDENTIFY_OLD]
    results = []
    for order in permutations(range(len(events))):
        profile = Profile(customer_id="u1")
        for sequence, index in enumerate(order):  # one event per batch, in this arrival order
            profile = fold(profile, [at(sequence, events[index])])
        results.append(profile.model_dump(exclude={"applied"}))
    assert len(results) == 120
    assert all(result == results[0] for result in results)


def test_a_replayed_record_changes_nothing() -> None:
    once = fold(Profile(customer_id="u1"), [at(1, ORDER_1), at(2, VIEW)])
    replayed = fold(once, [at(1, ORDER_1), at(2, VIEW)])
    assert replayed == once
    partly = fold(once, [at(2, VIEW), at(3, ORDER_2)])
    assert partly.orders == 2 and partly.track_counts["Product Viewed"] == 1


def test_positions_are_tracked_per_shard() -> None:
    profile = fold(Profile(customer_id="u1"), [at(10, ORDER_1, "shard-a")])
    profile = fold(profile, [at(5, ORDER_2, "shard-b")])  # a lower number on another shard is new
    assert profile.orders == 2
    assert profile.applied == {"shard-a": 10, "shard-b": 5}


def test_folding_leaves_the_input_untouched() -> None:
    empty = Profile(customer_id="u1")
    fold(empty, [at(1, ORDER_1)])
    assert empty == Profile(customer_id="u1")


def test_the_public_view_hides_bookkeeping() -> None:
    view = fold(Profile(customer_id="u1"), [at(1, ORDER_1)]).public_view()
    assert "applied" not in view and "version" not in view
    assert view["customerId"] == "u1" and view["revenue"] == {"USD": 40.0}
    assert view["lastOrderAt"] == "2026-11-10T10:00:00Z"
