"""Accept Segment Spec messages from the webhook."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audience.domain.events import parse_request
from audience.domain.money import Currencies
from audience.ports import EventSink


def ingest(body: Any, received_at: datetime, sink: EventSink, currencies: Currencies) -> int:
    """Validate the whole request, then publish it; returns how many messages were accepted.

    Validation comes first and is all-or-nothing, so an invalid request writes nothing.
    """
    messages = parse_request(body, received_at, currencies)
    sink.publish(messages)
    return len(messages)
