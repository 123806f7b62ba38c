"""Fold stream records into profiles, and read them back."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import ValidationError

from audience.domain.errors import ConcurrentUpdate, CustomerNotFound, TransientError
from audience.domain.events import message_from_json
from audience.domain.profile import PositionedMessage, Profile, StreamPosition, fold
from audience.ports import DeadLetters, ProfileRepository

logger = logging.getLogger(__name__)

CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class StreamRecord:
    """One record of the event stream, as the stream service needs it."""

    item_id: str  # what Lambda wants back in batchItemFailures (the sequence number)
    position: StreamPosition
    data: bytes


@dataclass
class BatchOutcome:
    failed_item_ids: list[str] = field(default_factory=list)
    processed: int = 0
    rejected: int = 0
    profiles_updated: int = 0
    conflicts: int = 0


def apply_records(records: list[StreamRecord], profiles: ProfileRepository, dead_letters: DeadLetters) -> BatchOutcome:
    """Fold a batch of stream records into profiles: one read and one write per customer touched.

    A record that can never be applied goes to the dead-letter queue and counts as done; a
    customer whose write keeps failing transiently has its records reported as failed, so the
    caller's retry re-delivers exactly those (the others are recognised as replays).
    """
    outcome = BatchOutcome()
    by_customer: dict[str, list[tuple[StreamRecord, PositionedMessage]]] = defaultdict(list)
    for record in records:
        try:
            message = message_from_json(record.data)
        except ValidationError as exc:
            dead_letters.send(
                f"undecodable or invalid message: {exc.error_count()} error(s): {exc.errors()[0]['msg']}",
                {
                    "position": record.item_id,
                    "shardId": record.position.shard_id,
                    "data": record.data.decode(errors="replace"),
                },
            )
            outcome.rejected += 1
            continue
        by_customer[message.customer_id].append((record, PositionedMessage(message, record.position)))

    stored = profiles.get_many(by_customer)
    for customer_id, items in by_customer.items():
        current = stored.get(customer_id) or Profile(customer_id=customer_id)
        try:
            written = _fold_and_save(current, [m for _, m in items], profiles, outcome)
        except TransientError as exc:
            logger.warning("profile write failed, records will be retried", extra={"error": str(exc)})
            outcome.failed_item_ids.extend(r.item_id for r, _ in items)
            continue
        outcome.processed += len(items)
        outcome.profiles_updated += written
    return outcome


def _fold_and_save(
    current: Profile, events: list[PositionedMessage], profiles: ProfileRepository, outcome: BatchOutcome
) -> bool:
    """Write the folded profile, re-reading and re-folding on a conflict. False if nothing was new."""
    for _ in range(CONFLICT_RETRIES + 1):
        updated = fold(current, events)
        if updated == current:  # every event was a replay
            return False
        try:
            profiles.save(updated)
            return True
        except ConcurrentUpdate:
            outcome.conflicts += 1
            current = profiles.get(current.customer_id) or Profile(customer_id=current.customer_id)
    raise ConcurrentUpdate(f"profile {current.customer_id} kept changing under {CONFLICT_RETRIES} retries")


def get_profile(customer_id: str, profiles: ProfileRepository) -> Profile:
    profile = profiles.get(customer_id)
    if profile is None:
        raise CustomerNotFound(customer_id)
    return profile
