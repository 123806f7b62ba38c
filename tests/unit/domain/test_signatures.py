"""Webhook signatures and request limits: what is refused, and that refusing writes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audience.domain.errors import InvalidInput, TooLarge, Unauthorized
from audience.domain.events import MAX_BATCH, parse_request
from audience.domain.money import Currencies
from audience.domain.signatures import segment_signature, timed_signature, verify
from audience.ports import EventSink
from audience.services.ingest import Ingesting
from audience.services.sources import WriteKeys
from tests.synthetic import NOW
from tests.unit.fakes import MemoryDeadLetters, MemorySources
from tests.unit.services.test_profiles_service import CURRENCIES


def ingest(raw: bytes, headers: dict[str, str], at: datetime, sink: EventSink, currencies: Currencies,
           secrets: list[str] | None = None) -> int:  # fmt: skip
    """The webhook's service, signed with ``secrets`` (None: unsigned)."""
    signing = (lambda: secrets) if secrets is not None else None
    keys = WriteKeys(MemorySources(), "pepper")
    return Ingesting(sink, keys, MemoryDeadLetters(), currencies, signing_secrets=signing).webhook(raw, headers, at)


BODY = json.dumps({"type": "track", "userId": "c1", "event": "Product Viewed"}).encode()


class Sink:
    def __init__(self) -> None:
        self.published: list[object] = []

    def publish(self, messages: list[object]) -> None:
        self.published += messages


def test_segment_style_and_timed_signatures_are_accepted_with_either_secret_in_force() -> None:
    for secret in ("current", "previous"):
        verify(BODY, {"x-signature": segment_signature(secret, BODY)}, ["current", "previous"], NOW)
        verify(BODY, {"x-audience-signature": timed_signature(secret, BODY, NOW)}, ["current", "previous"], NOW)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing signature"),
        ({"x-signature": segment_signature("other", BODY)}, "does not match"),
        ({"x-signature": segment_signature("current", BODY + b" ")}, "does not match"),
        ({"x-audience-signature": timed_signature("current", BODY, NOW - timedelta(minutes=6))}, "stale"),
        ({"x-audience-signature": timed_signature("current", BODY, NOW + timedelta(minutes=6))}, "stale"),
        ({"x-audience-signature": "v1=abc"}, "t=<unix seconds>"),
        ({"x-audience-signature": timed_signature("other", BODY, NOW)}, "does not match"),
    ],
)
def test_refused_signatures_say_why_without_echoing_secrets(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        verify(BODY, headers, ["current"], NOW)
    assert reason in str(refused.value) and "current" not in str(refused.value)


def test_a_refused_request_publishes_nothing() -> None:
    sink = Sink()
    with pytest.raises(Unauthorized):
        ingest(BODY, {}, NOW, sink, CURRENCIES, ["current"])
    with pytest.raises(TooLarge):
        ingest(b" " * (512 * 1024 + 1), {}, NOW, sink, CURRENCIES, None)
    assert sink.published == []
    assert ingest(BODY, {"x-signature": segment_signature("current", BODY)}, NOW, sink, CURRENCIES, ["current"]) == 1


def test_batches_have_a_size_limit_and_timestamps_a_window() -> None:
    message = {"type": "page", "userId": "c1"}
    with pytest.raises(TooLarge):
        parse_request({"batch": [message] * (MAX_BATCH + 1)}, NOW)
    batch = [
        {**message, "timestamp": (NOW + timedelta(days=2)).isoformat()},
        {**message, "timestamp": (NOW - timedelta(days=800)).isoformat()},
        {**message, "timestamp": (NOW - timedelta(days=30)).isoformat()},
    ]
    with pytest.raises(InvalidInput) as refused:
        parse_request({"batch": batch}, NOW, max_age=timedelta(days=730))
    assert [e.field for e in refused.value.errors] == ["batch[0].timestamp", "batch[1].timestamp"]
    assert "future" in refused.value.errors[0].reason and "past" in refused.value.errors[1].reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
MESSAGE = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page", "alias", "screen", "group", "nope"])},
    optional={"userId": JSON, "anonymousId": JSON, "event": JSON, "timestamp": JSON, "properties": JSON,
              "traits": JSON, "previousId": JSON, "messageId": JSON, "context": JSON},
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON, MESSAGE, st.fixed_dictionaries({"batch": st.lists(MESSAGE, max_size=5)})))
def test_any_body_is_either_accepted_whole_or_refused_with_named_fields(body: object) -> None:
    sink = Sink()
    raw = json.dumps(body).encode()
    try:
        accepted = ingest(raw, {}, NOW, sink, CURRENCIES)
    except InvalidInput as refused:
        assert refused.errors and all(e.field and e.reason for e in refused.errors)
        assert sink.published == []
    else:
        assert accepted == len(sink.published) > 0
