"""In-memory stand-ins for the ports, behaving as the DynamoDB adapter does."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Any

from audience.adapters.profile_items import PLACEMENT_FIELDS
from audience.adapters.table import StoreStats
from audience.domain.errors import ConcurrentUpdate
from audience.domain.events import Message
from audience.domain.privacy import AuditEntry
from audience.domain.profile import Profile
from audience.domain.segments import SegmentEvent
from audience.domain.sources import SourceRegistry


class MemoryProfiles:
    def __init__(self) -> None:
        self.items: dict[str, Profile] = {}
        self.reads = self.batch_reads = self.writes = 0

    def get(self, customer_id: str) -> Profile | None:
        self.reads += 1
        return self.items.get(customer_id)

    def get_many(self, customer_ids: Iterable[str]) -> Mapping[str, Profile]:
        self.batch_reads += 1
        return {c: self.items[c] for c in customer_ids if c in self.items}

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        ids = sorted(self.items)
        return iter([self.items[c] for c in ids[segment::total_segments]])

    def clear_outbox(self, customer_id: str, stored_version: int) -> None:
        stored = self.items.get(customer_id)
        if stored is None or stored.version != stored_version:
            raise ConcurrentUpdate(customer_id)
        self.items[customer_id] = stored.model_copy(update={"outbox": [], "version": stored.version + 1})

    def members(self, segment: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        """As the membership indexes answer: customers who allow personalization, in id order."""
        ids = sorted(c for c, p in self.items.items() if p.personalization_allowed and segment in p.segment_ids())
        page = [c for c in ids if after is None or c > after][:limit]
        return page, page[-1] if len(page) == limit else None

    def count(self, segment: str) -> int:
        return len(self.members(segment, len(self.items) + 1)[0])

    def with_contact(self, trait: str, hashed: str) -> list[str]:
        """As the contact indexes answer: the profiles whose trait holds that keyed hash, in id order."""
        return sorted(c for c, p in self.items.items() if (t := p.traits.get(trait)) is not None and t.v == hashed)

    def save(self, profile: Profile, retired: Sequence[Profile] = ()) -> None:
        for item in (profile, *retired):
            stored = self.items.get(item.customer_id)
            if (stored.version if stored else 0) != item.version:
                raise ConcurrentUpdate(item.customer_id)
        self.writes += 1
        for item in (profile, *retired):
            self.items[item.customer_id] = item.model_copy(update={"version": item.version + 1})

    def place(self, placed: Sequence[Profile]) -> list[str]:
        """As the table's conditional update: only the placement's attributes are taken from each
        profile (the rest of the stored item stays as stored), if its version is still the stored one."""
        conflicted: list[str] = []
        for profile in placed:
            stored = self.items.get(profile.customer_id)
            if stored is None or stored.version != profile.version:
                conflicted.append(profile.customer_id)
                continue
            self.writes += 1
            placement = {name: getattr(profile, name) for name in PLACEMENT_FIELDS}
            self.items[profile.customer_id] = stored.model_copy(update={**placement, "version": stored.version + 1})
        return conflicted


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        self.sent.append((reason, payload))


class MemoryRegistry:
    def __init__(self) -> None:
        self.history: list[tuple[str, str]] = []

    def active(self) -> str | None:
        return self.history[-1][0] if self.history else None

    def activate(self, version: str, reason: str, at: datetime) -> None:
        self.history.append((version, reason))


class MemoryBus:
    """Accepts every event, except those ``refuse`` says no to (as EventBridge's failed entries)."""

    def __init__(self, refuse: int = 0) -> None:
        self.events: list[SegmentEvent] = []
        self.refuse = refuse

    def publish(self, events: Sequence[SegmentEvent]) -> list[SegmentEvent]:
        refused, accepted = list(events[: self.refuse]), list(events[self.refuse :])
        self.events += accepted
        return refused


class MemoryBucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def etag(self, key: str) -> str:
        return str(hash(self.objects[key]))

    def open(self, key: str) -> IO[bytes]:
        return io.BytesIO(self.objects[key])

    def read_text(self, key: str) -> str | None:
        return self.objects[key].decode() if key in self.objects else None

    def put_text(self, key: str, text: str) -> None:
        self.objects[key] = text.encode()

    def read_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def put_file(self, key: str, file: IO[str]) -> None:
        self.objects[key] = file.read().encode()

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def forget_history(self, key: str, keep_current: bool = True) -> int:
        if not keep_current:
            self.objects.pop(key, None)
        return 0


class MemoryPrivacy:
    """The suppression list and audit trail, erasing from a ``MemoryProfiles`` as the table does."""

    def __init__(self, profiles: MemoryProfiles) -> None:
        self.profiles = profiles
        self.suppression: set[str] = set()
        self.trail: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> None:
        self.trail.append(entry)

    def entries(self, subject: str) -> list[AuditEntry]:
        return sorted((e for e in self.trail if e.subject == subject), key=lambda e: e.at)

    def erase(self, customer_id: str, redirects: Sequence[str], pseudonyms: Sequence[str], entry: AuditEntry) -> None:
        if customer_id not in self.profiles.items:
            raise ConcurrentUpdate("gone")
        for key in (customer_id, *redirects):
            self.profiles.items.pop(key, None)
        self.suppression |= set(pseudonyms)
        self.trail.append(entry)

    def suppressed(self, pseudonyms: Iterable[str]) -> set[str]:
        return self.suppression & set(pseudonyms)

    def lift(self, pseudonyms: Sequence[str]) -> None:
        self.suppression -= set(pseudonyms)


class MemorySink:
    """The event stream: what the webhook published."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def publish(self, messages: Sequence[Message]) -> None:
        self.messages += messages


class MemoryQueue:
    def __init__(self) -> None:
        self.items: list[Mapping[str, Any]] = []

    def send(self, item: Mapping[str, Any]) -> None:
        self.items.append(item)


class MemoryInfrastructure:
    """The composition root's infrastructure in memory: ``bootstrap.<function>.build(settings, infra)``
    builds a function's real service on these fakes (one table, bucket, bus and stream; a queue
    per URL; secrets by name)."""

    def __init__(self, secrets: Mapping[str, list[str]] | None = None) -> None:
        self.table = MemoryProfiles()
        self.models = MemoryRegistry()
        self.audit = MemoryPrivacy(self.table)
        self.objects = MemoryBucket()
        self.published = MemoryBus()
        self.sink = MemorySink()
        self.queues: dict[str, MemoryQueue] = {}
        self.dead = MemoryDeadLetters()
        self.secrets = dict(secrets or {})
        self.store_stats = StoreStats()
        self.source_registry = MemorySources()

    def profiles(self, table: str) -> MemoryProfiles:
        return self.table

    def registry(self, table: str) -> MemoryRegistry:
        return self.models

    def privacy(self, table: str) -> MemoryPrivacy:
        return self.audit

    def bucket(self, name: str) -> MemoryBucket:
        return self.objects

    def sources(self, table: str) -> MemorySources:
        return self.source_registry

    def bus(self, name: str) -> MemoryBus:
        return self.published

    def events(self, stream: str) -> MemorySink:
        return self.sink

    def queue(self, url: str) -> MemoryQueue:
        return self.queues.setdefault(url, MemoryQueue())

    def dead_letters(self, url: str) -> MemoryDeadLetters:
        return self.dead

    def secret(self, name: str) -> Callable[[], list[str]]:
        return lambda: self.secrets[name]

    def exports(self, table: str, bucket: str) -> None:
        return None  # no export in memory: the jobs scan

    def exported(self, items: Callable[[], Iterable[dict[str, Any]]]) -> Any:
        from audience.adapters.table_export import ExportedProfiles

        return ExportedProfiles(items)

    def stats(self) -> StoreStats:
        return self.store_stats


class MemorySources:
    def __init__(self) -> None:
        self.registry = SourceRegistry()

    def load(self) -> SourceRegistry:
        return self.registry

    def save(self, registry: SourceRegistry) -> None:
        if registry.version != self.registry.version:
            raise ConcurrentUpdate("the source registry changed")
        self.registry = registry.model_copy(update={"version": registry.version + 1})
