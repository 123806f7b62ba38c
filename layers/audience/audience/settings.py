"""Settings as validated models, read from the environment once per container.

Each setting is declared once, in a small mixin named for what it configures; a function's
settings are the mixins it needs. Field aliases are the environment variables the template sets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, field_validator

from audience.domain.money import Currencies


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed: fail loudly at cold start."""


class Settings(BaseModel):
    """Base of every settings model; fields are aliased to their environment variable names."""

    # defer_build: a function validates only its own settings class; building the others' schemas
    # at import would cost every cold start (~30 ms)
    model_config = ConfigDict(frozen=True, extra="ignore", str_min_length=1, defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"{cls.__name__}: {problems}") from None


# ---------------------------------------------------------------- one mixin per resource or rule


class Table(Settings):
    profiles_table: str = Field(alias="PROFILES_TABLE")


class Bucket(Settings):
    data_bucket: str = Field(alias="DATA_BUCKET")


class Bus(Settings):
    segment_bus: str = Field(alias="SEGMENT_BUS")


class Refresh(Settings):
    """How soon a function sees a new active model or a newly accepted document."""

    model_refresh_seconds: int = Field(alias="MODEL_REFRESH_SECONDS", default=60, ge=0)

    @property
    def refresh(self) -> timedelta:
        return timedelta(seconds=self.model_refresh_seconds)


class Pepper(Settings):
    """The secret ids and contact details are hashed with (pseudonyms, suppression, audit)."""

    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME", default="", description="empty: no suppression")
    pii_in_clear: bool = Field(alias="STORE_PII_IN_CLEAR", default=False)


class Money(Settings):
    """The base currency profiles are kept in and the rates to it (JSON: base units per unit)."""

    base_currency: str = Field(alias="BASE_CURRENCY", pattern=r"^[A-Z]{3}$")
    currency_rates: Json[dict[str, Decimal]] = Field(alias="CURRENCY_RATES")

    @property
    def currencies(self) -> Currencies:
        return Currencies(self.base_currency, dict(self.currency_rates))


# ---------------------------------------------------------------- each function's settings


class IngestSettings(Money, Table, Pepper):
    events_stream: str = Field(alias="EVENTS_STREAM")
    webhook_secret_name: str = Field(alias="WEBHOOK_SECRET_NAME", default="", description="empty: unsigned")
    max_event_age_days: int = Field(alias="MAX_EVENT_AGE_DAYS", default=730, ge=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", description="refused tracking messages")
    secrets_cache_seconds: int = Field(alias="POWERTOOLS_PARAMETERS_MAX_AGE", default=300, ge=0,
                                       description="how long secrets and the write keys are cached")  # fmt: skip


class StreamSettings(Money, Table, Bucket, Bus, Refresh, Pepper):
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    min_dwell_minutes: int = Field(alias="SEGMENT_MIN_DWELL_MINUTES", default=60, ge=0)


class LakeSettings(StreamSettings):
    """The lake function: replays through the stream's folding, so it needs what the stream does."""

    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME")  # required here: the compaction erases by pseudonym
    scan_segments: int = Field(alias="SCAN_SEGMENTS", default=4, ge=1)
    snapshot_source: Literal["scan", "export"] = Field(alias="SNAPSHOT_SOURCE", default="scan")


class ProfilesApiSettings(Money, Table, Bucket, Refresh, Pepper):
    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME")  # required here: erasure and audit need it
    import_queue_url: str = Field(alias="IMPORT_QUEUE_URL", description="an erasure's file scrubbing goes there")


class ImportSettings(Money, Table, Bucket, Bus, Refresh, Pepper):
    import_queue_url: str = Field(alias="IMPORT_QUEUE_URL")
    chunk_customers: int = Field(alias="IMPORT_CHUNK_CUSTOMERS", default=20_000, ge=1)


class DocumentSettings(Table, Bucket):
    pass


class RetrainSettings(Table, Bucket, Bus):
    min_silhouette: float = Field(alias="MIN_SILHOUETTE", default=0.33)
    min_cluster_share: float = Field(alias="MIN_CLUSTER_SHARE", default=0.03)
    min_stability: float = Field(alias="MIN_STABILITY", default=0.95)
    min_stability_worst: float = Field(alias="MIN_STABILITY_WORST", default=0.9)
    drift_psi: float = Field(alias="DRIFT_PSI", default=0.2)
    scan_segments: int = Field(alias="SCAN_SEGMENTS", default=4, ge=1)
    fan_out_segments: int = Field(alias="FAN_OUT_SEGMENTS", default=0, ge=0, description="0: in one invocation")
    retrain_queue_url: str = Field(alias="RETRAIN_QUEUE_URL")
    snapshot_reads_above: int = Field(alias="SNAPSHOT_READS_ABOVE", default=100_000, ge=0,
                                      description="above it, the jobs read the latest export")  # fmt: skip
    rf_segments: Json[list[tuple[str, str]]] | None = Field(
        alias="RFM_SEGMENTS", default=None, description='[["5[4-5]", "Champions"], ...]: RF pattern -> name'
    )

    @field_validator("rf_segments", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # the template's default: the built-in map
