"""Accept Segment Spec messages from the webhook."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from audience.domain.errors import FieldError, InvalidInput, TooLarge
from audience.domain.events import Identify, parse_request
from audience.domain.money import Currencies
from audience.domain.privacy import pseudonymised
from audience.domain.signatures import verify
from audience.ports import EventSink

MAX_BODY_BYTES = 512 * 1024  # Segment's own batch limit is 500 KB


def ingest(
    raw: bytes,
    headers: Mapping[str, str],
    received_at: datetime,
    sink: EventSink,
    currencies: Currencies,
    secrets: Sequence[str] | None = None,
    max_age: timedelta | None = None,
    pepper: str | None = None,
) -> int:
    """Check the request (size, then the signature when ``secrets`` is given; header names
    lower-cased), validate every message, then publish them; returns how many were accepted.

    Every check comes before the write and is all-or-nothing, so a refused request writes nothing.
    With a ``pepper``, contact details in identify traits are replaced by their keyed hashes
    before they leave this function: the stream, the table and the logs never see them.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(raw):,} bytes, the limit {MAX_BODY_BYTES:,}")
    if secrets is not None:
        verify(raw, headers, secrets, received_at)
    try:
        body = json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise InvalidInput([FieldError("body", f"not valid JSON ({exc})")]) from None
    messages = parse_request(body, received_at, currencies, max_age)
    if pepper is not None:
        messages = [
            m.model_copy(update={"traits": pseudonymised(m.traits, pepper)}) if isinstance(m, Identify) else m
            for m in messages
        ]
    sink.publish(messages)
    return len(messages)
