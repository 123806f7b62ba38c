"""The interfaces the services need from the outside world; ``adapters`` implements them on AWS."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: a function imports the domain models its own path uses
    from audience.domain.events import Message
    from audience.domain.privacy import AuditEntry
    from audience.domain.profile import Profile
    from audience.domain.segments import SegmentEvent
    from audience.domain.sources import SourceRegistry


class EventSink(Protocol):
    def publish(self, messages: Sequence[Message]) -> None:
        """Durably accept every message, or raise (``TransientError`` if a retry may succeed)."""


class ProfileRepository(Protocol):
    def get(self, customer_id: str) -> Profile | None: ...

    def get_many(self, customer_ids: Iterable[str]) -> Mapping[str, Profile]:
        """The stored items among ``customer_ids`` (profiles and redirects); unknown ids are absent."""

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]:
        """Every stored item (profiles and redirects) of one of ``total_segments`` parallel scan segments."""

    def clear_outbox(self, customer_id: str, stored_version: int) -> None:
        """Empty the profile's outbox and bump its version, only if the stored version is still
        ``stored_version``; raise ``ConcurrentUpdate`` otherwise."""

    def save(self, profile: Profile, retired: Sequence[Profile] = ()) -> None:
        """Store ``profile`` and the ``retired`` redirect items together, each only if its stored
        version is still the one it was read at (0: never stored), bumping the versions; raise
        ``ConcurrentUpdate`` otherwise and change nothing."""

    def place(self, placed: Sequence[Profile]) -> list[str]:
        """Store what placing changed on each of the stored profiles ``placed``: their segments,
        tier, predictions, segment history and outbox and the membership index keys, nothing
        else of the item; each only if its stored version is still the one it was read at,
        bumping it. Returns the ids whose stored version had moved (nothing of theirs written)."""


class ProfileScan(Protocol):
    """What the jobs that only read need: every stored item (the table's, or an export's)."""

    def scan(self, segment: int, total_segments: int) -> Iterator[Profile]: ...


class TableExports(Protocol):
    """Full exports of the profile table to the data bucket (they read no capacity)."""

    def start(self, prefix: str) -> str:
        """Start an export under ``prefix``; its id."""

    def status(self, export: str) -> str:
        """``IN_PROGRESS``, ``COMPLETED`` or ``FAILED``."""


class StoreUsage(Protocol):
    """What a store's requests cost since ``reset`` (as the store reports its consumed capacity)."""

    requests: int
    read_units: float
    write_units: float

    def reset(self) -> None: ...


class SegmentMembers(Protocol):
    """Who is in a segment (``kind:slug`` ids), and who has a contact detail, from the indexes."""

    def members(self, segment: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        """Up to ``limit`` customer ids in id order after ``after``, and the last one if more may follow."""

    def count(self, segment: str) -> int: ...

    def with_contact(self, trait: str, hashed: str) -> list[str]:
        """The customers whose contact ``trait`` (email, phone) is stored as the keyed hash ``hashed``."""


class AuditTrail(Protocol):
    def record(self, entry: AuditEntry) -> None:
        """Append ``entry`` (never overwriting one)."""

    def entries(self, subject: str) -> list[AuditEntry]:
        """The subject's entries, oldest first."""


class PrivacyStore(AuditTrail, Protocol):
    def erase(self, customer_id: str, redirects: Sequence[str], pseudonyms: Sequence[str], entry: AuditEntry) -> None:
        """At once: delete the profile and the ``redirects`` items, suppress the ``pseudonyms``
        and record ``entry``; raise ``ConcurrentUpdate`` if the profile changed meanwhile."""

    def suppressed(self, pseudonyms: Iterable[str]) -> set[str]:
        """Those of ``pseudonyms`` that are suppressed."""

    def lift(self, pseudonyms: Sequence[str]) -> None: ...


class DeadLetters(Protocol):
    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        """Park something that can never succeed, with the reason, for an operator."""


class ObjectStore(Protocol):
    """The data bucket."""

    def etag(self, key: str) -> str: ...

    def open(self, key: str) -> IO[bytes]:
        """A stream of the object's bytes (never the whole object in memory)."""

    def read_text(self, key: str) -> str | None:
        """The object as text, or None when there is none."""

    def put_text(self, key: str, text: str) -> None: ...

    def read_bytes(self, key: str) -> bytes | None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""

    def put_file(self, key: str, file: IO[str]) -> None:
        """Upload a file from its current position, streaming."""

    def forget_history(self, key: str, keep_current: bool = True) -> int:
        """Delete the object's earlier versions (and, unless ``keep_current``, the object)."""


class WorkQueue(Protocol):
    """Work for other invocations of the same function (at-least-once)."""

    def send(self, item: Mapping[str, Any]) -> None: ...


class ModelRegistry(Protocol):
    """Which segmentation model version is active."""

    def active(self) -> str | None: ...

    def activate(self, version: str, reason: str, at: datetime) -> None: ...


class SourceStore(Protocol):
    """The registry of sources and their write keys' hashes."""

    def load(self) -> SourceRegistry: ...

    def save(self, registry: SourceRegistry) -> None:
        """Store ``registry`` only if the stored version is still ``registry.version`` (bumping
        it); raise ``ConcurrentUpdate`` otherwise."""


class SegmentEventSink(Protocol):
    def publish(self, events: Sequence[SegmentEvent]) -> list[SegmentEvent]:
        """Put the events on the bus (retrying what can be); return those still not accepted."""
