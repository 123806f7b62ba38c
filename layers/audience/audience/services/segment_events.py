"""Publishing segment events without losing any: they are written to the profile's outbox in
the same write as the move, published after it, and removed once the bus accepted them. What
the bus refuses stays in the outbox and goes out with the customer's next write (at least once;
consumers drop repeats by idempotency key). A retrain's placements publish a batch of customers'
events together (``PublishingProfiles.place``): ten to a ``PutEvents`` request, not one request
per customer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.profile import Profile
from audience.domain.segments import SegmentEvent
from audience.ports import ProfileRepository, SegmentEventSink

logger = logging.getLogger(__name__)


def deliver(saved: Profile, sink: SegmentEventSink, profiles: ProfileRepository) -> int:
    """Publish the outbox of ``saved`` (as it was written: its stored version is one more);
    returns how many events the bus accepted."""
    return deliver_all([saved], sink, profiles)


def deliver_all(saved: Sequence[Profile], sink: SegmentEventSink, profiles: ProfileRepository) -> int:
    """Publish the outboxes of every profile of ``saved`` (each as it was written) in one
    ``publish`` (the sink sends them ten to a request), then empty the outboxes whose events
    the bus all accepted; an outbox with a refused event is kept whole. Returns how many
    events the bus accepted."""
    events = [event for profile in saved for event in profile.outbox]
    if not events:
        return 0
    try:
        refused = sink.publish(events)
    except TransientError as exc:
        logger.warning("segment events kept in the outbox for the next write: %s", exc)
        return 0
    if refused:
        logger.warning("%d segment events kept in the outbox for the next write", len(refused))
    kept = {_key(event) for event in refused}
    for profile in saved:
        if profile.outbox and not any(_key(event) in kept for event in profile.outbox):
            with contextlib.suppress(ConcurrentUpdate):  # a newer write carries them; consumers drop the repeat
                profiles.clear_outbox(profile.customer_id, profile.version + 1)
    return len(events) - len(refused)


def _key(event: SegmentEvent) -> tuple[str, str]:
    return event.detail.customer_id, event.detail.idempotency_key


class PublishingProfiles:
    """A profile repository that publishes the segment events each write carries, right after
    the write: every path that moves a customer (the stream, retraining, rescoring, a rollback)
    publishes the same way."""

    def __init__(self, profiles: ProfileRepository, sink: SegmentEventSink) -> None:
        self.profiles, self.sink = profiles, sink

    def get(self, customer_id: str) -> Profile | None:
        return self.profiles.get(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> Mapping[str, Profile]:
        return self.profiles.get_many(customer_ids)

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        return self.profiles.scan(segment, total_segments)

    def clear_outbox(self, customer_id: str, stored_version: int) -> None:
        self.profiles.clear_outbox(customer_id, stored_version)

    def save(self, profile: Profile, retired: Sequence[Profile] = ()) -> None:
        self.profiles.save(profile, retired)
        deliver(profile, self.sink, self.profiles)

    def place(self, placed: Sequence[Profile]) -> list[str]:
        """Write each placement, then publish the segment events of all that were written at
        once (what was written before a failure goes out too)."""
        written: list[Profile] = []
        conflicted: list[str] = []
        try:
            for profile in placed:
                lost = self.profiles.place([profile])
                conflicted += lost
                if not lost:
                    written.append(profile)
        finally:
            deliver_all(written, self.sink, self.profiles)
        return conflicted
