"""Accept Segment Spec messages: the signed webhook, and the Segment HTTP Tracking API."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from audience.domain.errors import FieldError, InvalidInput, TooLarge
from audience.domain.events import Group, Identify, Message, parse_request
from audience.domain.money import Currencies
from audience.domain.privacy import pseudonymised
from audience.domain.signatures import verify
from audience.domain.sources import OriginRefused, Source, basic_user
from audience.domain.tracking import (
    MAX_BATCH_BYTES,
    BrowserSettings,
    RudderSourceConfig,
    browser_settings,
    read_request,
    rudderstack_source_config,
    write_key_in,
)
from audience.ports import DeadLetters, EventSink
from audience.services.sources import WriteKeys

MAX_BODY_BYTES = 512 * 1024  # Segment's own batch limit is 500 KB


@dataclass(frozen=True)
class Ingesting:
    """Where accepted messages go, and what a request is checked against."""

    sink: EventSink
    write_keys: WriteKeys  # the tracking API's sources
    dead_letters: DeadLetters  # refused tracking messages, with their reasons
    currencies: Currencies
    max_age: timedelta | None = None
    contact_key: str | None = None  # contact details are hashed with it (None: kept in the clear)
    signing_secrets: Callable[[], list[str]] | None = None  # the webhook's secrets in force (None: unsigned)

    def webhook(self, raw: bytes, headers: Mapping[str, str], received_at: datetime) -> int:
        """Check the request (size, then the signature when the webhook is signed; header names
        lower-cased), validate every message, then publish them; returns how many were accepted.

        Every check comes before the write and is all-or-nothing, so a refused request writes
        nothing. With a ``contact_key``, contact details in identify traits are replaced by their
        keyed hashes before they leave this method: the stream, the table and the logs never see them.
        """
        _within_limit(raw)
        if self.signing_secrets is not None:
            verify(raw, headers, self.signing_secrets(), received_at)
        messages = parse_request(_json_body(raw), received_at, self.currencies, self.max_age)
        self.sink.publish(_hashed(messages, self.contact_key))
        return len(messages)

    def track(
        self, raw: bytes, headers: Mapping[str, str], call: str, received_at: datetime, key: str | None = None
    ) -> TrackingOutcome:
        """``POST /v1/<call>`` of the Segment HTTP Tracking API (``call``: ``batch`` or a message type),
        and what browsers send (the same bodies as ``text/plain``).

        The whole request is refused only when it cannot be read: too large (also once inflated,
        for ``Content-Encoding: gzip``), not JSON, without a live write key (``key``, as a beacon
        puts it in the query; HTTP Basic ``key:``; or ``writeKey`` in the body), or sent by a page
        whose origin (header ``origin``) the key's source does not list. Otherwise every valid
        message is written; each invalid one goes to the dead-letter queue with its reasons and
        the source's name (contact details hashed), and the answer says what was refused and why."""
        body = _json_body(_inflated(raw, headers))
        key = key or basic_user(headers) or write_key_in(body) or ""
        source = self.source(key, headers.get("origin") or None, received_at).name
        batch = read_request(body, call, received_at, self.currencies, self.max_age)
        if batch.messages:
            self.sink.publish(_hashed(batch.messages, self.contact_key))
        for position, item in batch.refused_items:
            reasons = [f"{e.field}: {e.reason}" for e in batch.refused if _names(e.field, call, position)]
            parked = {"source": source, "call": call, "position": position,
                      "message": _hashed_item(item, self.contact_key)}  # fmt: skip
            self.dead_letters.send(f"tracking message refused ({'; '.join(reasons)})", parked)
        return TrackingOutcome(source, len(batch.messages), batch.refused, len(batch.refused_items))

    def source(self, key: str, origin: str | None, now: datetime) -> Source:
        """The source ``key`` belongs to (``Unauthorized`` for an unknown or revoked key);
        ``OriginRefused`` when a page at ``origin`` sends with it and the source does not list
        that origin. Without an origin (a server, not a browser) the key alone decides."""
        source = self.write_keys.source(key, now)
        if origin is not None and not source.allows(origin):
            raise OriginRefused(origin, source.name)
        return source

    def allows(self, origin: str, now: datetime) -> bool:
        """Whether some source lets pages at ``origin`` send: what a preflight (which carries no
        key) and an answer given before the key is known are decided by."""
        return self.write_keys.allows(origin, now)

    def browser_settings(
        self, key: str, origin: str | None, api_host: str, protocol: Literal["http", "https"], now: datetime
    ) -> BrowserSettings:
        """The settings document analytics.js 2.0 starts from, pointing it at ``protocol://api_host``
        (this API's ``.../v1``)."""
        self.source(key, origin, now)
        return browser_settings(key, api_host, protocol)

    def source_config(self, key: str | None, headers: Mapping[str, str], now: datetime) -> RudderSourceConfig:
        """RudderStack JS SDK v3's source configuration; the key as HTTP Basic (or ``key``, the
        ``writeKey`` of the query)."""
        key = basic_user(headers) or key or ""
        source = self.source(key, headers.get("origin") or None, now)
        return rudderstack_source_config(source.name, key, source.created_at)


@dataclass(frozen=True)
class TrackingOutcome:
    """What a tracking request did: messages written, and each refused field with its reason."""

    source: str
    accepted: int
    refused: list[FieldError]
    refused_messages: int


def _inflated(raw: bytes, headers: Mapping[str, str]) -> bytes:
    """The body as sent, or inflated (at most ``MAX_BATCH_BYTES``: no zip bombs)."""
    _within_limit(raw)
    if headers.get("content-encoding", "").strip().lower() != "gzip":
        return raw
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflate.decompress(raw, MAX_BATCH_BYTES + 1)
    except zlib.error as exc:
        raise InvalidInput([FieldError("body", f"Content-Encoding is gzip but the body is not ({exc})")]) from None
    if len(body) > MAX_BATCH_BYTES or inflate.unconsumed_tail:
        raise TooLarge(f"the body inflates past {MAX_BATCH_BYTES:,} bytes")
    return body


def _within_limit(raw: bytes) -> None:
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(raw):,} bytes, the limit {MAX_BODY_BYTES:,}")


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise InvalidInput([FieldError("body", f"not valid JSON ({exc})")]) from None


def _names(path: str, call: str, position: int) -> bool:
    """Whether an error's field path is in message ``position`` of the request."""
    if call != "batch":
        return True
    return path == f"batch[{position}]" or path.startswith((f"batch[{position}].", f"batch[{position}]["))


def _hashed(messages: Sequence[Message], contact_key: str | None) -> list[Message]:
    """Contact details in identify and group traits replaced by their keyed hashes (with a key)."""
    if contact_key is None:
        return list(messages)
    return [m.model_copy(update={"traits": pseudonymised(m.traits, contact_key)}) if isinstance(m, Identify | Group)
            else m for m in messages]  # fmt: skip


def _hashed_item(item: Any, contact_key: str | None) -> Any:
    """A refused message as sent, but for its contact details (hashed, as if it had been accepted)."""
    if contact_key is None or not isinstance(item, dict):
        return item
    hashed = dict(item)
    if isinstance(item.get("traits"), dict):
        hashed["traits"] = pseudonymised(item["traits"], contact_key)
    context = item.get("context")
    if isinstance(context, dict) and isinstance(context.get("traits"), dict):
        hashed["context"] = {**context, "traits": pseudonymised(context["traits"], contact_key)}
    return hashed
