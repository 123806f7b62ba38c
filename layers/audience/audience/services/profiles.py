"""Fold stream records into profiles, and read them back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from audience.domain import identity
from audience.domain.errors import CustomerNotFound, TransientError
from audience.domain.events import Message, message_from_json
from audience.domain.money import Currencies, UnknownCurrency
from audience.domain.profile import PositionedMessage, Profile, StreamPosition, fold, merge
from audience.ports import DeadLetters, ProfileRepository
from audience.services.unit_of_work import until_unchanged

logger = logging.getLogger(__name__)

Placer = Callable[[Profile, datetime], Profile]  # a profile in its segments as of a moment
Blocked = Callable[[Iterable[str]], set[str]]  # which of these ids belong to an erased customer
MAX_REDIRECT_HOPS = 5


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
    duplicates: int = 0
    profiles_updated: int = 0  # profiles written, new ones included
    profiles_created: int = 0
    merges: int = 0
    conflicts: int = 0
    suppressed: int = 0  # messages about an erased customer, dropped


@dataclass
class _Pending:
    record: StreamRecord
    message: Message


def apply_records(
    records: list[StreamRecord],
    profiles: ProfileRepository,
    dead_letters: DeadLetters,
    currencies: Currencies,
    now: datetime,
    place: Placer | None = None,
    blocked: Blocked | None = None,
) -> BatchOutcome:
    """Fold a batch of stream records into profiles, at the cost floor of the store.

    Reads: the items of every identity in the batch (``get_many``: one query of each partition),
    plus one round per redirect hop. Writes: one per customer touched (a transaction when
    identities merge; and a page when its changes outgrow the hot item). A record that can
    never apply goes to the dead-letter queue and counts as done; a customer whose write
    keeps failing transiently has its records reported as failed, so the caller's retry
    re-delivers exactly those (the others are recognised as replays). ``place`` puts each
    changed profile in its segments before the write (no extra request); the messages of any
    id ``blocked`` names (an erased customer's) are dropped (one batched read).
    """
    batch = _Batch(profiles, dead_letters, currencies, now, place, blocked)
    pending: list[_Pending] = []
    for record in records:
        try:
            pending.append(_Pending(record, message_from_json(record.data)))
        except ValidationError as exc:
            batch.dead_letter(record, f"undecodable or invalid message: {exc.errors()[0]['msg']}")
    batch.apply(pending)
    return batch.outcome


def apply_messages(
    messages: list[tuple[StreamRecord, Message]],
    profiles: ProfileRepository,
    dead_letters: DeadLetters,
    currencies: Currencies,
    now: datetime,
    place: Placer | None = None,
    blocked: Blocked | None = None,
) -> BatchOutcome:
    """``apply_records`` for messages already decoded (imported orders, for one)."""
    batch = _Batch(profiles, dead_letters, currencies, now, place, blocked)
    batch.apply([_Pending(record, message) for record, message in messages])
    return batch.outcome


def _groups(pending: list[_Pending], stored: Mapping[str, Profile]) -> list[tuple[identity.Group, list[_Pending]]]:
    plan = identity.plan([p.message for p in pending], stored)
    return [(group, [pending[i] for i in group.indexes]) for group in plan.values()]


@dataclass
class _Batch:
    profiles: ProfileRepository
    dead_letters: DeadLetters
    currencies: Currencies
    now: datetime
    place: Placer | None = None
    blocked: Blocked | None = None
    outcome: BatchOutcome = field(default_factory=BatchOutcome)

    def apply(self, pending: list[_Pending]) -> None:
        if self.blocked is not None and pending:
            erased = self.blocked(identity.identities(p.message for p in pending))
            kept = [p for p in pending if erased.isdisjoint(p.message.identities)]
            self.outcome.suppressed += len(pending) - len(kept)
            pending = kept
        stored = _load_with_redirects(self.profiles, identity.identities(p.message for p in pending))
        for group, items in _groups(pending, stored):
            self.apply_customer(group, items, stored)

    def apply_customer(self, group: identity.Group, items: list[_Pending], stored: Mapping[str, Profile]) -> None:
        """One customer's records, written once; a lost race re-reads the customer's ids, plans
        and folds again (the unit of work's retries), and then leaves them to the stream's retry."""

        def attempt(n: int) -> None:
            if n == 0:
                self.write_customer(group, items, stored)
                return
            fresh = _load_with_redirects(
                self.profiles, identity.identities(p.message for p in items) | {group.customer_id}
            )
            for sub_group, sub_items in _groups(items, fresh):  # replays of what a sub-group wrote are skipped
                self.write_customer(sub_group, sub_items, fresh)

        def conflicted() -> None:
            self.outcome.conflicts += 1

        try:
            until_unchanged(attempt, f"customer {group.customer_id!r}", on_conflict=conflicted)
        except TransientError as exc:
            self.retry_later(items, str(exc))

    def write_customer(self, group: identity.Group, items: list[_Pending], stored: Mapping[str, Profile]) -> None:
        """Merge the group's retired ids into its customer, fold its events, write it all once
        (``ConcurrentUpdate`` if a stored item changed since ``stored`` was read)."""
        current = stored.get(group.customer_id) or Profile(customer_id=group.customer_id)
        merged = current
        for absorbed in group.absorb:
            merged = merge(merged, stored[absorbed], self.now)
        events = [PositionedMessage(p.message, p.record.position) for p in items]
        try:
            updated, skipped = fold(merged, events, self.currencies, self.now)
        except UnknownCurrency as exc:  # the rate table changed since ingest accepted the order
            for p in items:
                self.dead_letter(p.record, str(exc))
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

    def retry_later(self, items: list[_Pending], reason: str) -> None:
        logger.warning("profile write failed, its records will be retried: %s", reason)
        self.outcome.failed_item_ids.extend(p.record.item_id for p in items)

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
