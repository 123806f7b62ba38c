"""Fold events into profiles (the stream's records, an import's messages), and read them back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from audience.domain import identity
from audience.domain.errors import CustomerNotFound, TransientError
from audience.domain.events import Message, message_from_json
from audience.domain.folding import fold, merge
from audience.domain.money import Currencies, UnknownCurrency
from audience.domain.privacy import pseudonymised
from audience.domain.profile import PositionedMessage, Profile, StreamPosition
from audience.ports import DeadLetters, ProfileRepository, SegmentMembers, StoreUsage
from audience.services.unit_of_work import until_unchanged

logger = logging.getLogger(__name__)

Placer = Callable[[Profile, datetime], Profile]  # a profile in its segments as of a moment
Suppressing = Callable[[Iterable[str]], set[str]]  # which of these ids belong to an erased customer
MAX_REDIRECT_HOPS = 5


class StreamUsage(StoreUsage, Protocol):
    """What the profile table's requests cost, and how many botocore retried (what the stream reports)."""

    retries: int


@dataclass(frozen=True)
class StreamRecord:
    """One record of the event stream, as the stream service needs it."""

    item_id: str  # what Lambda wants back in batchItemFailures (the sequence number)
    position: StreamPosition
    data: bytes


@dataclass(frozen=True)
class ValidEvent:
    """A validated message to fold, at its place in the stream, and the stream record it was
    decoded from (None for an import's message: it is reported by its message id)."""

    message: Message
    position: StreamPosition
    record: StreamRecord | None = None

    @property
    def item_id(self) -> str:
        """What a failure to write it is reported as."""
        return self.record.item_id if self.record is not None else self.message.message_id or ""


@dataclass
class BatchOutcome:
    failed_item_ids: list[str] = field(default_factory=list)
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    profiles_updated: int = 0  # profiles written, new ones included
    profiles_created: int = 0
    merges: int = 0
    conflicts: int = 0
    suppressed: int = 0  # messages about an erased customer, dropped


@dataclass(frozen=True)
class Folding:
    """Fold events into profiles, at the cost floor of the store.

    Reads: the items of every identity in the batch (``get_many``: one query of each partition),
    plus one round per redirect hop. Writes: one per customer touched (a transaction when
    identities merge; and a page when its changes outgrow the hot item). An event that can
    never apply goes to ``dead_letters`` and counts as done; a customer whose write keeps
    failing transiently has its events reported as failed, so the caller's retry re-delivers
    exactly those (the others are recognised as replays). ``place`` puts each changed profile in
    its segments before the write (no extra request); the messages of any id ``suppression``
    names (an erased customer's) are dropped (one batched read). ``usage``, when given, is reset
    at the start of each fold, so it reads what that fold cost.
    """

    profiles: ProfileRepository
    dead_letters: DeadLetters
    currencies: Currencies
    place: Placer | None = None
    suppression: Suppressing | None = None
    usage: StreamUsage | None = None

    def fold(self, records: list[StreamRecord], now: datetime) -> BatchOutcome:
        """Decode and validate the stream's records, then fold the valid ones (``fold_events``);
        an undecodable or invalid record goes to the dead-letter queue."""
        batch = self._batch(now)
        valid: list[ValidEvent] = []
        for record in records:
            try:
                valid.append(ValidEvent(message_from_json(record.data), record.position, record))
            except ValidationError as exc:
                batch.dead_letter(record, f"undecodable or invalid message: {exc.errors()[0]['msg']}")
        batch.apply(valid)
        return batch.outcome

    def fold_events(self, events: list[ValidEvent], now: datetime) -> BatchOutcome:
        """Fold messages already validated (the stream's, once decoded; an import's)."""
        batch = self._batch(now)
        batch.apply(events)
        return batch.outcome

    def _batch(self, now: datetime) -> _Batch:
        if self.usage is not None:
            self.usage.reset()
        return _Batch(self.profiles, self.dead_letters, self.currencies, now, self.place, self.suppression)


def apply_records(
    records: list[StreamRecord],
    profiles: ProfileRepository,
    dead_letters: DeadLetters,
    currencies: Currencies,
    now: datetime,
    place: Placer | None = None,
    suppression: Suppressing | None = None,
) -> BatchOutcome:
    """``Folding(...).fold(records, now)``, for a one-off batch."""
    return Folding(profiles, dead_letters, currencies, place, suppression).fold(records, now)


def _groups(events: list[ValidEvent], stored: Mapping[str, Profile]) -> list[tuple[identity.Group, list[ValidEvent]]]:
    plan = identity.plan([e.message for e in events], stored)
    return [(group, [events[i] for i in group.indexes]) for group in plan.values()]


@dataclass
class _Batch:
    profiles: ProfileRepository
    dead_letters: DeadLetters
    currencies: Currencies
    now: datetime
    place: Placer | None = None
    suppression: Suppressing | None = None
    outcome: BatchOutcome = field(default_factory=BatchOutcome)

    def apply(self, events: list[ValidEvent]) -> None:
        if self.suppression is not None and events:
            erased = self.suppression(identity.identities(e.message for e in events))
            kept = [e for e in events if erased.isdisjoint(e.message.identities)]
            self.outcome.suppressed += len(events) - len(kept)
            events = kept
        stored = _load_with_redirects(self.profiles, identity.identities(e.message for e in events))
        for group, items in _groups(events, stored):
            self.apply_customer(group, items, stored)

    def apply_customer(self, group: identity.Group, items: list[ValidEvent], stored: Mapping[str, Profile]) -> None:
        """One customer's records, written once; a lost race re-reads the customer's ids, plans
        and folds again (the unit of work's retries), and then leaves them to the stream's retry."""

        def attempt(n: int) -> None:
            if n == 0:
                self.write_customer(group, items, stored)
                return
            fresh = _load_with_redirects(
                self.profiles, identity.identities(e.message for e in items) | {group.customer_id}
            )
            for sub_group, sub_items in _groups(items, fresh):  # replays of what a sub-group wrote are skipped
                self.write_customer(sub_group, sub_items, fresh)

        def conflicted() -> None:
            self.outcome.conflicts += 1

        try:
            until_unchanged(attempt, f"customer {group.customer_id!r}", on_conflict=conflicted)
        except TransientError as exc:
            self.retry_later(items, str(exc))

    def write_customer(self, group: identity.Group, items: list[ValidEvent], stored: Mapping[str, Profile]) -> None:
        """Merge the group's retired ids into its customer, fold its events, write it all once
        (``ConcurrentUpdate`` if a stored item changed since ``stored`` was read)."""
        current = stored.get(group.customer_id) or Profile(customer_id=group.customer_id)
        merged = current
        for absorbed in group.absorb:
            merged = merge(merged, stored[absorbed], self.now)
        events = [PositionedMessage(e.message, e.position) for e in items]
        try:
            updated, skipped = fold(merged, events, self.currencies, self.now)
        except UnknownCurrency as exc:  # the rate table changed since ingest accepted the order
            for e in items:
                self.dead_letter_event(e, str(exc))
            return

        if self.place is not None and updated != merged:  # replays change nothing, not even a segment
            updated = self.place(updated, self.now)
        retired = [stored[i].retire(group.customer_id) for i in group.absorb]
        retired += [_redirect(i, group.customer_id, stored.get(i)) for i in group.redirect]
        if updated == current and not retired:
            self.outcome.duplicates += skipped  # every record was a replay or a repeated message
            return
        self.profiles.save(updated, retired)
        self.outcome.duplicates += skipped
        self.outcome.processed += len(items) - skipped
        self.outcome.profiles_updated += 1
        self.outcome.profiles_created += current.version == 0
        self.outcome.merges += len(group.absorb)

    def retry_later(self, items: list[ValidEvent], reason: str) -> None:
        logger.warning("profile write failed, its records will be retried: %s", reason)
        self.outcome.failed_item_ids.extend(e.item_id for e in items)

    def dead_letter(self, record: StreamRecord, reason: str) -> None:
        self.dead_letters.send(
            reason,
            {
                "sequenceNumber": record.item_id,
                "shardId": record.position.shard_id,
                "partitionKey": record.position.partition_key,
                "data": record.data.decode(errors="replace"),
            },
        )
        self.outcome.rejected += 1

    def dead_letter_event(self, event: ValidEvent, reason: str) -> None:
        if event.record is not None:
            self.dead_letter(event.record, reason)
            return
        position = event.position
        self.dead_letters.send(reason, {"messageId": event.item_id, "shardId": position.shard_id,
                                        "partitionKey": position.partition_key})  # fmt: skip
        self.outcome.rejected += 1


def _redirect(identity_id: str, customer_id: str, existing: Profile | None) -> Profile:
    version = existing.version if existing is not None else 0
    return Profile(customer_id=identity_id, merged_into=customer_id, version=version)


def _load_with_redirects(profiles: ProfileRepository, ids: set[str]) -> dict[str, Profile]:
    """The stored items of ``ids`` and of every customer they redirect to."""
    stored: dict[str, Profile] = {}
    wanted = set(ids)
    for _ in range(MAX_REDIRECT_HOPS):
        if not wanted:
            break
        stored.update(profiles.get_many(sorted(wanted)))
        wanted = {p.merged_into for p in stored.values() if p.merged_into and p.merged_into not in stored}
    return stored


def with_contact(trait: str, value: str, pepper: str, index: SegmentMembers) -> list[str]:
    """The customers whose contact ``trait`` (email, phone) is ``value``, found by its keyed hash
    (as ``identify`` stores it: trimmed, lower-cased), so the value itself is never stored or
    looked up in clear. Empty where contact details are kept in clear (``PII_IN_CLEAR``)."""
    return index.with_contact(trait, pseudonymised({trait: value}, pepper)[trait])


def get_profile(customer_id: str, profiles: ProfileRepository) -> Profile:
    """The customer's profile, following a redirect if the id was merged into another customer."""
    profile = profiles.get(customer_id)
    for _ in range(MAX_REDIRECT_HOPS):
        if profile is None or profile.merged_into is None:
            break
        profile = profiles.get(profile.merged_into)
    if profile is None or profile.merged_into is not None:
        raise CustomerNotFound(customer_id)
    return profile
