"""Segment events on the stack's EventBridge bus."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from botocore.exceptions import ClientError

from audience.adapters.aws import as_transient, client
from audience.domain.segments import SegmentEvent

SOURCE = "audience-engine"
PUT_EVENTS_LIMIT = 10  # entries in one PutEvents request
PUT_EVENTS_BYTES = 256 * 1024  # and their size, as EventBridge counts it (``entry_size``)
ATTEMPTS = 3

Entry = tuple[SegmentEvent, dict[str, str]]  # an event and the PutEvents entry that carries it


class EventBridgeSegmentEvents:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def publish(self, events: Sequence[SegmentEvent]) -> list[SegmentEvent]:
        """Put ``events`` on the bus in as few requests as PutEvents allows (ten entries and
        256 KB a request), retrying refused entries; returns those still refused."""
        pending = list(events)
        for attempt in range(ATTEMPTS):
            refused = []
            for chunk in _requests([(e, self._entry(e)) for e in pending]):
                try:
                    response = client("events").put_events(Entries=[entry for _, entry in chunk])
                except ClientError as exc:
                    raise as_transient(exc) from exc
                refused += [e for (e, _), r in zip(chunk, response["Entries"], strict=True) if r.get("ErrorCode")]
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


def entry_size(entry: dict[str, str]) -> int:
    """An entry's size as EventBridge counts it against a request's 256 KB (its Source,
    DetailType and Detail in UTF-8; these entries carry no Time or Resources)."""
    return sum(len(entry[name].encode()) for name in ("Source", "DetailType", "Detail"))


def _requests(entries: list[Entry]) -> list[list[Entry]]:
    """The entries in order, cut into requests of at most ten entries and 256 KB."""
    requests: list[list[Entry]] = []
    size = 0
    for event, entry in entries:
        if not requests or len(requests[-1]) == PUT_EVENTS_LIMIT or size + entry_size(entry) > PUT_EVENTS_BYTES:
            requests.append([])
            size = 0
        requests[-1].append((event, entry))
        size += entry_size(entry)
    return requests
