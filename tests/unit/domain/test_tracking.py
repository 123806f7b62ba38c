"""The Segment HTTP Tracking API: write keys, gzip, every call type, per-message outcomes, and
time as Segment corrects it."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audience.api.views import CustomerView
from audience.domain.errors import NotFound, TooLarge, Unauthorized
from audience.domain.events import Group, Identify, message_from_json, message_to_json
from audience.domain.folding import fold
from audience.domain.money import Currencies
from audience.domain.profile import PositionedMessage, Profile, StreamPosition
from audience.domain.tracking import MAX_MESSAGE_BYTES, read_request
from audience.services.ingest import Ingesting
from audience.services.sources import WriteKeys, issue_key, revoke_keys
from tests.unit.fakes import MemoryDeadLetters, MemorySink, MemorySources

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
CURRENCIES = Currencies("USD", {"USD": 1})
PEPPER = "pepper"


def basic(key: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def sources() -> tuple[MemorySources, str]:
    store = MemorySources()
    key, _ = issue_key("web", store, PEPPER, NOW)
    return store, key


def send(body: Any, headers: dict[str, str], store: MemorySources, call: str = "batch", raw: bytes | None = None):  # type: ignore[no-untyped-def]
    sink, dead = MemorySink(), MemoryDeadLetters()
    raw = json.dumps(body).encode() if raw is None else raw
    ingesting = Ingesting(sink, WriteKeys(store, PEPPER), dead, CURRENCIES, timedelta(days=730), PEPPER)
    done = ingesting.track(raw, headers, call, NOW)
    return done, sink, dead


def test_a_batch_keeps_every_valid_message_and_parks_the_bad_one_with_its_reason(
    sources: tuple[MemorySources, str],
) -> None:
    store, key = sources
    batch = [
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"order_id": "o1", "total": 5}},
        {"type": "group", "userId": "u1", "groupId": 42, "traits": {"name": "Acme", "email": "ops@acme.test"}},
        {"type": "track", "event": "No identity"},
        {"type": "identify", "userId": 7, "context": {"traits": {"plan": "pro"}}, "channel": "server"},
    ]

    done, sink, dead = send({"batch": batch, "writeKey": key}, {}, store)

    assert (done.source, done.accepted, done.refused_messages) == ("web", 3, 1)
    assert [e.field for e in done.refused] == ["batch[2]"]
    group, identify = sink.messages[1], sink.messages[2]
    assert isinstance(group, Group) and group.group_id == "42" and group.traits["email"].startswith("hmac-sha256:")
    assert isinstance(identify, Identify) and identify.user_id == "7" and identify.traits == {"plan": "pro"}
    assert identify.context["channel"] == "server"
    [(reason, parked)] = dead.sent
    assert "batch[2]" in reason and parked["source"] == "web" and parked["position"] == 2


def test_write_keys_as_http_basic_or_in_the_body_and_a_revoked_key_is_refused(
    sources: tuple[MemorySources, str],
) -> None:
    store, key = sources
    message = {"userId": "u1", "event": "Signed Up"}
    assert send(message, basic(key), store, "track")[0].accepted == 1
    with pytest.raises(Unauthorized):
        send(message, basic("not-a-key"), store, "track")
    with pytest.raises(Unauthorized):
        send(message, {}, store, "track")

    revoke_keys("web", None, store, NOW)
    with pytest.raises(Unauthorized):
        send(message, basic(key), store, "track")
    with pytest.raises(NotFound):
        revoke_keys("mobile", None, store, NOW)


def test_a_rotation_keeps_both_keys_until_the_old_one_is_revoked(sources: tuple[MemorySources, str]) -> None:
    store, old = sources
    new, new_id = issue_key("web", store, PEPPER, NOW)
    message = {"userId": "u1", "event": "Signed Up"}
    assert (
        send(message, basic(old), store, "track")[0].accepted == send(message, basic(new), store, "track")[0].accepted
    )
    old_id = next(k.key_id for k in store.registry.sources["web"].keys if k.key_id != new_id)
    assert revoke_keys("web", old_id, store, NOW) == [old_id]
    assert send(message, basic(new), store, "track")[0].accepted == 1
    with pytest.raises(Unauthorized):
        send(message, basic(old), store, "track")


def test_gzip_bodies_are_inflated_and_a_zip_bomb_is_refused(sources: tuple[MemorySources, str]) -> None:
    store, key = sources
    body = {"batch": [{"type": "page", "anonymousId": "a1", "name": "Home"}] * 3}
    headers = {**basic(key), "content-encoding": "gzip"}
    assert send(None, headers, store, raw=gzip.compress(json.dumps(body).encode()))[0].accepted == 3
    bomb = gzip.compress(b"{" + b" " * 10_000_000 + b"}")
    with pytest.raises(TooLarge):
        send(None, headers, store, raw=bomb)


def test_a_message_over_32_kb_is_refused_alone(sources: tuple[MemorySources, str]) -> None:
    store, key = sources
    big = {"type": "track", "userId": "u1", "event": "Big", "properties": {"blob": "x" * MAX_MESSAGE_BYTES}}
    done, _, _ = send({"batch": [big, {"type": "page", "userId": "u1"}]}, basic(key), store)
    assert done.accepted == 1 and "32 KB" in done.refused[0].reason


def test_a_client_clock_48_hours_ahead_is_corrected_by_sent_at() -> None:
    ahead = timedelta(hours=48)
    happened = (NOW + ahead - timedelta(minutes=5)).isoformat()  # by the client's clock
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "E", "timestamp": happened}],
             "sentAt": (NOW + ahead).isoformat()}  # fmt: skip

    outcome = read_request(batch, "batch", NOW, CURRENCIES)

    assert not outcome.refused
    assert outcome.messages[0].timestamp == NOW - timedelta(minutes=5)


def test_original_timestamp_dates_a_message_and_offsets_are_stored_in_utc() -> None:
    body = {"userId": "u1", "event": "E", "originalTimestamp": "2026-11-20T19:00:00+05:30"}
    [message] = read_request(body, "track", NOW, CURRENCIES).messages
    assert message.timestamp == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    assert message_to_json(message).decode().count("+05:30") == 0


def test_what_stays_absurd_after_correction_is_refused_per_message() -> None:
    far = {"type": "track", "userId": "u1", "event": "E", "timestamp": (NOW + timedelta(days=3)).isoformat()}
    outcome = read_request({"batch": [far, {"type": "page", "userId": "u1"}]}, "batch", NOW, CURRENCIES)
    assert len(outcome.messages) == 1 and outcome.refused[0].field == "batch[0].timestamp"


def test_group_calls_are_kept_on_the_profile_and_merge_by_time() -> None:
    def group(traits: dict[str, Any], minutes: int) -> PositionedMessage:
        body = {"userId": "u1", "groupId": "acme", "traits": traits,
                "timestamp": (NOW + timedelta(minutes=minutes)).isoformat()}  # fmt: skip
        [message] = read_request(body, "group", NOW + timedelta(hours=1), CURRENCIES).messages
        return PositionedMessage(message_from_json(message_to_json(message)), StreamPosition("s", "u1", minutes))

    profile, _ = fold(Profile(customer_id="u1"), [group({"plan": "pro"}, 2), group({"plan": "free"}, 1)],
                      CURRENCIES, NOW)  # fmt: skip
    [view] = CustomerView.of(profile, NOW, "USD").model_dump(mode="json", by_alias=True)["groups"]
    assert view["groupId"] == "acme" and view["traits"] == {"plan": "pro"}


def test_a_key_issued_a_moment_ago_works_at_once_and_a_revoked_one_stops_within_the_refresh() -> None:
    store = MemorySources()
    keys = WriteKeys(store, PEPPER, refresh=timedelta(minutes=5), recheck=timedelta(seconds=1))
    first, _ = issue_key("web", store, PEPPER, NOW)
    assert keys.source_of(first, NOW) == "web"
    second, _ = issue_key("ios", store, PEPPER, NOW)
    assert keys.source_of(second, NOW + timedelta(seconds=2)) == "ios"  # unknown: the registry is read again
    revoke_keys("web", None, store, NOW)
    assert keys.source_of(first, NOW + timedelta(seconds=3)) == "web"  # cached: revocation within the refresh
    with pytest.raises(Unauthorized):
        keys.source_of(first, NOW + timedelta(minutes=6))
