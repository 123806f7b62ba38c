"""The composition root: what each function needs, built in one place, from its settings and an
infrastructure (AWS by default; tests pass the in-memory fakes).

One module per function (``bootstrap.stream``, ``bootstrap.ingest``, ...), each with a
``build(settings=None, infra=None)`` that returns the function's service object (``Folding``,
``Ingesting``, ``Importing``, ``Documents``, the retrain function's ``Jobs``; the read API's
bundle). A handler asks for it once per container (``deps = cache(composition.build)``) and makes
one call on it; it never builds an adapter itself. Each module imports only its own function's
path, so the stream never loads scikit-learn and the read API never loads the import cleaners;
this module holds what they share and imports no service at its top.

The rules that decide how parts fit live here once: profiles publish the segment events their
writes carry; erased customers' ids are suppressed wherever a pepper is configured; contact
details are hashed unless ``StorePiiInClear``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from audience.settings import Pepper

if TYPE_CHECKING:
    from audience.adapters.table import StoreStats
    from audience.domain.experiments import Experiments
    from audience.domain.personalization import ContentMapping
    from audience.domain.triggers import TriggerRules
    from audience.ports import (
        DeadLetters,
        EventSink,
        ModelRegistry,
        ObjectStore,
        PrivacyStore,
        ProfileRepository,
        ProfileScan,
        SegmentEventSink,
        SegmentMembers,
        SourceStore,
        TableExports,
        WorkQueue,
    )
    from audience.recommend.spec import RecommenderSpec
    from audience.segmentation.spec import SegmentSpec
    from audience.services.artifacts import Artifacts, Live, ProfileSnapshots
    from audience.services.lake import Population
    from audience.services.privacy import Suppression
    from audience.services.sources import WriteKeys
    from audience.value.spec import ValueSpec

    class Profiles(ProfileRepository, SegmentMembers, Protocol):
        """The profile table: items, and who is in each segment."""


class Infrastructure(Protocol):
    """Where the adapters come from: ``adapters.infrastructure.AwsInfrastructure`` in Lambda,
    ``tests.unit.fakes.MemoryInfrastructure`` in tests."""

    def profiles(self, table: str) -> Profiles: ...
    def registry(self, table: str) -> ModelRegistry: ...
    def privacy(self, table: str) -> PrivacyStore: ...
    def sources(self, table: str) -> SourceStore: ...
    def bucket(self, name: str) -> ObjectStore: ...
    def bus(self, name: str) -> SegmentEventSink: ...
    def events(self, stream: str) -> EventSink: ...
    def queue(self, url: str) -> WorkQueue: ...
    def dead_letters(self, url: str) -> DeadLetters: ...
    def secret(self, name: str) -> Callable[[], list[str]]:
        """The secret's values in force (current first), read through a per-container cache."""

    def stats(self) -> StoreStats:
        """What the profile table's requests cost in this invocation (reset by the handler)."""

    def exports(self, table: str, bucket: str) -> TableExports | None:
        """The table's exports to the bucket (None where there are none: tests, scans instead)."""

    def exported(self, items: Callable[[], Iterable[dict[str, Any]]]) -> ProfileScan:
        """The profiles of an export, from its items."""


# The read API's bundle is named here, not in ``bootstrap.profiles_api``: its routers take it, and
# importing it from here loads no builder. (Annotations only: nothing is imported at run time.)
class ProfilesApiDeps(NamedTuple):
    profiles: Profiles
    privacy: PrivacyStore
    pepper: str
    model: Live[SegmentSpec | None]  # the active segmentation model
    rules: Live[TriggerRules]
    content: Live[ContentMapping]
    experiments: Live[Experiments]
    value: Live[ValueSpec | None]
    recommender: Live[RecommenderSpec | None]
    artifacts: Artifacts  # the data bucket: stored models, their metrics and reports, what was measured
    scrubbing: WorkQueue  # an erasure's file scrubbing, done by the import function
    currency: str
    write_keys: WriteKeys  # the sources' keys and origins: what in-page personalization is asked with


def _aws() -> Infrastructure:
    from audience.adapters.infrastructure import AwsInfrastructure

    return AwsInfrastructure()


# ---------------------------------------------------------------- the rules decided once
# (Services imported when a rule runs: the functions that never use one do not load it.)


def _publishing(infra: Infrastructure, table: str, bus: str) -> ProfileRepository:
    """Profiles whose writes publish the segment events they carry (every path that moves a customer)."""
    from audience.services.segment_events import PublishingProfiles

    return PublishingProfiles(infra.profiles(table), infra.bus(bus))


def _pepper(settings: Pepper, infra: Infrastructure) -> str | None:
    """The key ids are pseudonymised with (None: no pepper configured)."""
    return infra.secret(settings.pii_pepper_name)()[0] if settings.pii_pepper_name else None


def _contact_key(settings: Pepper, pepper: str | None) -> str | None:
    """The key contact details are hashed with before they are stored: None keeps them in the clear."""
    return None if settings.pii_in_clear else pepper


def _population(infra: Infrastructure, table: str, bucket: str, snapshot_above: int) -> Population:
    """What the read-only jobs scan: the table, or above ``snapshot_above`` profiles the newest snapshot."""
    from audience.services.artifacts import ProfileSnapshots
    from audience.services.lake import Population

    return Population(infra.profiles(table), ProfileSnapshots(infra.bucket(bucket)), snapshot_above)


def _export_reader(infra: Infrastructure, snapshots: ProfileSnapshots) -> Callable[[str], ProfileScan]:
    return lambda prefix: infra.exported(lambda: snapshots.export_items(prefix))


def _suppression(infra: Infrastructure, table: str, pepper: str | None) -> Suppression | None:
    """Which ids belong to an erased customer (their events and rows are dropped)."""
    from audience.services.privacy import Suppression

    return Suppression(infra.privacy(table), pepper) if pepper else None
