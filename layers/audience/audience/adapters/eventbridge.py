"""Segment events on the stack's EventBridge bus."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client
from audience.domain.segments import SegmentEvent

SOURCE = "audience-engine"
PUT_EVENTS_LIMIT = 10
ATTEMPTS = 3


class EventBridgeSegmentEvents:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def publish(self, events: Sequence[SegmentEvent]) -> list[SegmentEvent]:
        pending = list(events)
        for attempt in range(ATTEMPTS):
            refused = []
            for start in range(0, len(pending), PUT_EVENTS_LIMIT):
                chunk = pending[start : start + PUT_EVENTS_LIMIT]
                try:
                    response = client("events").put_events(Entries=[self._entry(e) for e in chunk])
                except ClientError as exc:
                    raise as_transient(exc) from exc
                refused += [e for e, r in zip(chunk, response["Entries"], strict=True) if r.get("ErrorCode")]
            if not refused:
                return []
            pending = refused
            time.sleep(0.05 * 2**attempt)
        return pending

    def _entry(self, event: SegmentEvent) -> dict[str, str]:
        return {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail.model_dump(mode="json", by_alias=True)),
            "EventBusName": self.bus_name,
        }
