"""GIVEN the official Python SDKs (segment-analytics-python, rudder-sdk-python) configured only
with the embedded stack's address and a write key, WHEN they send every call type (gzip on and
off; a batch of 100 from a clock 48 hours ahead; a retried batch), THEN every event lands in the
right profile exactly once, dated by the server's clock, and neither SDK sees an error."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rudderstack.analytics.client as rudder_client
import rudderstack.analytics.request as rudder_request
import segment.analytics.client as segment_client
import segment.analytics.request as segment_request

from embedded.api_front import LOCAL_API_KEY
from embedded.stack import LOCAL_WRITE_KEY
from tests.e2e.test_profile_engine import wait_until

SDKS = {"segment": (segment_client, segment_request), "rudderstack": (rudder_client, rudder_request)}


def customer(api: str, customer_id: str) -> dict[str, Any] | None:
    request = urllib.request.Request(f"{api}/v1/customers/{urllib.request.quote(customer_id)}",
                                     headers={"x-api-key": LOCAL_API_KEY})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # the local stack may be busy folding
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def make_client(sdk: str, api: str, errors: list[Any], gzip: bool, **options: Any) -> Any:
    """The SDK's client as its docs configure it: the host and a write key. (A longer timeout than
    the SDKs' 15 s: the embedded stack runs one invocation at a time, and a neighbouring test's
    folding can hold a request up; AWS runs them side by side.)"""
    client_module = SDKS[sdk][0]
    return client_module.Client(LOCAL_WRITE_KEY, host=api, gzip=gzip, on_error=lambda e, _: errors.append(e),
                                timeout=60, **options)  # fmt: skip


@pytest.fixture
def clock_ahead(monkeypatch: pytest.MonkeyPatch) -> Iterator[timedelta]:
    """Every SDK's clock (message timestamps and sentAt) 48 hours ahead of the server's."""
    ahead = timedelta(hours=48)

    class Ahead(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Ahead:  # type: ignore[override]
            return super().now(tz) + ahead  # type: ignore[return-value]

    for client_module, request_module in SDKS.values():
        monkeypatch.setattr(client_module, "datetime", Ahead)
        monkeypatch.setattr(request_module, "datetime", Ahead)
    yield ahead


@pytest.mark.parametrize(("sdk", "gzip"), [("segment", False), ("segment", True), ("rudderstack", True),
                                           ("rudderstack", False)])  # fmt: skip
def test_every_call_type_reaches_the_profile_once(api: str, sdk: str, gzip: bool) -> None:
    errors: list[Any] = []
    client = make_client(sdk, api, errors, gzip, sync_mode=True)
    user, anonymous = f"{sdk}-{gzip}-ユーザー+1", f"{sdk}-{gzip}-anon"
    client.page(anonymous_id=anonymous, name="Home")
    client.identify(user, {"plan": "pro", "email": "ada@example.com"})
    client.track(user, "Order Completed", {"order_id": f"{sdk}-{gzip}-o1", "total": 25.5, "currency": "USD"})
    client.screen(user, name="Cart")
    client.group(user, "acme", {"name": "Acme", "employees": 42})
    client.alias(anonymous, user)  # the anonymous visitor is the same person

    def delivered() -> dict[str, Any] | None:  # (the anonymous page may fold after the alias: another key's lane)
        profile = customer(api, user)
        every_type = profile and all(profile["eventCounts"].get(t) for t in ("page", "alias", "screen", "group"))
        return profile if every_type and profile["rfm"]["orders"] else None  # type: ignore[index]

    profile = wait_until(delivered, 120)
    assert errors == [] and profile is not None
    assert customer(api, anonymous)["customerId"] == profile["customerId"]  # type: ignore[index]
    assert profile["traits"]["plan"] == "pro" and profile["traits"]["email"].startswith("hmac-sha256:")
    assert profile["rfm"]["orders"] == 1 and profile["rfm"]["revenue"] == 25.5
    assert [g["groupId"] for g in profile["groups"]] == ["acme"]
    counts = profile["eventCounts"]
    assert {k: counts.get(k) for k in ("page", "identify", "track", "screen", "group")} == dict.fromkeys(
        ("page", "identify", "track", "screen", "group"), 1
    )


def test_a_batch_of_100_from_a_clock_48_hours_ahead_is_corrected_and_a_retry_counts_once(
    api: str, clock_ahead: timedelta
) -> None:
    errors: list[Any] = []
    client = make_client("segment", api, errors, gzip=True, upload_size=100, upload_interval=5)
    for n in range(100):
        client.track("skewed", "Viewed", {"n": n}, message_id=f"skewed-{n}")
    client.flush()
    profile = wait_until(lambda: (p := customer(api, "skewed")) and p["eventCounts"].get("track") == 100 and p, 120)
    assert errors == [] and profile

    batch = [{"type": "track", "userId": "skewed", "event": "Viewed", "messageId": f"skewed-{n}",
              "timestamp": (datetime.now(UTC) + clock_ahead).isoformat()} for n in range(100)]  # fmt: skip
    response = segment_request.post(LOCAL_WRITE_KEY, host=api, gzip=True, timeout=60, batch=batch)  # a retry
    assert response.status_code == 200 and response.json()["success"] is True
    client.page("skewed", name="after the retry")  # the same customer's stream: it follows the retry
    client.flush()

    after = wait_until(lambda: (p := customer(api, "skewed")) and p["eventCounts"].get("page") and p, 120)
    assert after and after["eventCounts"]["track"] == 100  # the retry changed nothing
    last_seen = datetime.fromisoformat(profile["lastSeen"])
    assert abs(last_seen - datetime.now(UTC)) < timedelta(minutes=5)  # dated by the server's clock, not +48 h
