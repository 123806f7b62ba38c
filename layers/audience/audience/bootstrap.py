"""The composition root: what each function needs, built in one place, from its settings and an
infrastructure (AWS by default; tests pass the in-memory fakes).

A handler asks for its bundle (``deps = cache(bootstrap.stream)``: once per container) and never
builds an adapter itself. The rules that decide how parts fit live here once: profiles publish
the segment events their writes carry; erased customers' ids are suppressed wherever a pepper is
configured; contact details are hashed unless ``StorePiiInClear``.

Each builder imports its services when it runs, not when this module is imported, so a function
loads only what its own path uses (the stream never imports scikit-learn, the read API never
imports the import cleaners).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple, Protocol

from audience.settings import (
    ConfigurationError,
    DocumentSettings,
    ImportSettings,
    IngestSettings,
    Pepper,
    ProfilesApiSettings,
    RetrainSettings,
    StreamSettings,
)

if TYPE_CHECKING:
    from audience.adapters.dynamodb import StoreStats
    from audience.domain.experiments import Experiments
    from audience.domain.money import Currencies
    from audience.domain.personalization import ContentMapping
    from audience.domain.triggers import TriggerRules
    from audience.ports import (
        DeadLetters,
        EventSink,
        ModelRegistry,
        ObjectStore,
        PrivacyStore,
        ProfileRepository,
        SegmentEventSink,
        SegmentMembers,
        SourceStore,
        WorkQueue,
    )
    from audience.services.documents import LiveDocument
    from audience.services.models import Retraining
    from audience.services.privacy import Suppression
    from audience.services.recommendations import LiveRecommender
    from audience.services.scoring import LiveModel, LiveScoring, LiveTiers, LiveValue
    from audience.services.sources import WriteKeys
    from audience.services.value import ValueModels

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


def _aws() -> Infrastructure:
    from audience.adapters.infrastructure import AwsInfrastructure

    return AwsInfrastructure()


# ---------------------------------------------------------------- the rules decided once


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


def _suppression(infra: Infrastructure, table: str, pepper: str | None) -> Suppression | None:
    """Which ids belong to an erased customer (their events and rows are dropped)."""
    from audience.services.privacy import Suppression

    return Suppression(infra.privacy(table), pepper) if pepper else None


# ---------------------------------------------------------------- one bundle per function
# (Named tuples: as frozen as dataclasses, and a fifth of the cost to define at cold start.)


class IngestDeps(NamedTuple):
    sink: EventSink
    signing_secrets: Callable[[], list[str]] | None  # None: the webhook is unsigned
    write_keys: WriteKeys  # the tracking API's sources
    dead_letters: DeadLetters  # refused tracking messages, with their reasons
    contact_key: str | None
    currencies: Currencies
    max_age: timedelta


def ingest(settings: IngestSettings | None = None, infra: Infrastructure | None = None) -> IngestDeps:
    from audience.services.sources import WriteKeys

    settings, infra = settings or IngestSettings.from_env(), infra or _aws()
    pepper = _pepper(settings, infra)
    if pepper is None:
        raise ConfigurationError("IngestSettings: PII_PEPPER_NAME is needed to check write keys")
    return IngestDeps(
        sink=infra.events(settings.events_stream),
        signing_secrets=infra.secret(settings.webhook_secret_name) if settings.webhook_secret_name else None,
        write_keys=WriteKeys(
            infra.sources(settings.profiles_table), pepper, timedelta(seconds=settings.secrets_cache_seconds)
        ),
        dead_letters=infra.dead_letters(settings.dead_letter_queue_url),
        contact_key=_contact_key(settings, pepper),
        currencies=settings.currencies,
        max_age=timedelta(days=settings.max_event_age_days),
    )


class StreamDeps(NamedTuple):
    profiles: ProfileRepository
    dead_letters: DeadLetters
    scoring: LiveScoring
    suppression: Suppression | None
    currencies: Currencies
    stats: StoreStats


def stream(settings: StreamSettings | None = None, infra: Infrastructure | None = None) -> StreamDeps:
    from audience.services.scoring import LiveScoring

    settings, infra = settings or StreamSettings.from_env(), infra or _aws()
    scoring = LiveScoring(
        infra.registry(settings.profiles_table),
        infra.bucket(settings.data_bucket),
        refresh=settings.refresh,
        min_dwell=timedelta(minutes=settings.min_dwell_minutes),
    )
    return StreamDeps(
        profiles=_publishing(infra, settings.profiles_table, settings.segment_bus),
        dead_letters=infra.dead_letters(settings.dead_letter_queue_url),
        scoring=scoring,
        suppression=_suppression(infra, settings.profiles_table, _pepper(settings, infra)),
        currencies=settings.currencies,
        stats=infra.stats(),
    )


class ProfilesApiDeps(NamedTuple):
    profiles: Profiles
    privacy: PrivacyStore
    pepper: str
    model: LiveModel
    rules: LiveDocument[TriggerRules]
    content: LiveDocument[ContentMapping]
    experiments: LiveDocument[Experiments]
    value: LiveValue
    values: ValueModels
    recommender: LiveRecommender
    store: ObjectStore  # the data bucket: stored models' specs and metrics
    scrubbing: WorkQueue  # an erasure's file scrubbing, done by the import function
    currency: str


def profiles_api(settings: ProfilesApiSettings | None = None, infra: Infrastructure | None = None) -> ProfilesApiDeps:
    from audience.domain.experiments import Experiments
    from audience.domain.personalization import ContentMapping
    from audience.domain.triggers import TriggerRules
    from audience.segmentation.store import BucketModelStore
    from audience.services.documents import LiveDocument
    from audience.services.recommendations import LiveRecommender
    from audience.services.scoring import LiveModel, LiveValue
    from audience.services.value import ValueModels

    settings, infra = settings or ProfilesApiSettings.from_env(), infra or _aws()
    bucket, refresh = infra.bucket(settings.data_bucket), settings.refresh
    pepper = _pepper(settings, infra)
    assert pepper is not None  # the settings require PII_PEPPER_NAME
    return ProfilesApiDeps(
        profiles=infra.profiles(settings.profiles_table),
        privacy=infra.privacy(settings.profiles_table),
        pepper=pepper,
        model=LiveModel(infra.registry(settings.profiles_table), BucketModelStore(bucket), refresh),
        rules=LiveDocument(bucket, TriggerRules, refresh),
        content=LiveDocument(bucket, ContentMapping, refresh),
        experiments=LiveDocument(bucket, Experiments, refresh),
        value=LiveValue(bucket, refresh),
        values=ValueModels(bucket),
        recommender=LiveRecommender(bucket, refresh),
        store=bucket,
        scrubbing=infra.queue(settings.import_queue_url),
        currency=settings.base_currency,
    )


class ImportDeps(NamedTuple):
    store: ObjectStore
    profiles: ProfileRepository
    tiers: LiveTiers
    suppression: Suppression | None
    contact_key: str | None
    currencies: Currencies
    work: WorkQueue  # the chunks of a large import, and erasures' file scrubbing
    chunk_customers: int
    audit: PrivacyStore


def importer(settings: ImportSettings | None = None, infra: Infrastructure | None = None) -> ImportDeps:
    from audience.services.scoring import LiveTiers

    settings, infra = settings or ImportSettings.from_env(), infra or _aws()
    bucket, pepper = infra.bucket(settings.data_bucket), _pepper(settings, infra)
    return ImportDeps(
        store=bucket,
        profiles=_publishing(infra, settings.profiles_table, settings.segment_bus),
        tiers=LiveTiers(infra.registry(settings.profiles_table), bucket, settings.refresh),
        suppression=_suppression(infra, settings.profiles_table, pepper),
        contact_key=_contact_key(settings, pepper),
        currencies=settings.currencies,
        work=infra.queue(settings.import_queue_url),
        chunk_customers=settings.chunk_customers,
        audit=infra.privacy(settings.profiles_table),
    )


class DocumentDeps(NamedTuple):
    store: ObjectStore
    audit: PrivacyStore


def documents(settings: DocumentSettings | None = None, infra: Infrastructure | None = None) -> DocumentDeps:
    settings, infra = settings or DocumentSettings.from_env(), infra or _aws()
    return DocumentDeps(store=infra.bucket(settings.data_bucket), audit=infra.privacy(settings.profiles_table))


def retrain(settings: RetrainSettings | None = None, infra: Infrastructure | None = None) -> Retraining:
    from audience.segmentation.drift import PromotionPolicy
    from audience.segmentation.training import TrainingConfig
    from audience.services.models import Retraining

    settings, infra = settings or RetrainSettings.from_env(), infra or _aws()
    training = TrainingConfig(rf_segments=tuple(settings.rf_segments)) if settings.rf_segments else TrainingConfig()
    policy = PromotionPolicy(min_silhouette=settings.min_silhouette, min_cluster_share=settings.min_cluster_share,
                             min_stability=settings.min_stability, min_stability_worst=settings.min_stability_worst,
                             drift_psi=settings.drift_psi)  # fmt: skip
    return Retraining(
        profiles=_publishing(infra, settings.profiles_table, settings.segment_bus),
        store=infra.bucket(settings.data_bucket),
        registry=infra.registry(settings.profiles_table),
        work=infra.queue(settings.retrain_queue_url),
        policy=policy,
        training=training,
        scan_segments=settings.scan_segments,
        fan_out_segments=settings.fan_out_segments,
        usage=infra.stats(),
    )
