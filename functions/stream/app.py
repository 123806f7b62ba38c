"""Kinesis consumer: folds Segment Spec events into customer profiles, and places each changed
profile in the active model's segments (from its JSON spec: no numpy, no scikit-learn).

Partial batch responses: only the records of customers whose write failed transiently are
reported in ``batchItemFailures``; undecodable records go to the dead-letter queue.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from audience.adapters.dynamodb import DynamoModelRegistry, DynamoPrivacy, DynamoProfileRepository, StoreStats
from audience.adapters.eventbridge import EventBridgeSegmentEvents
from audience.adapters.s3 import S3ObjectStore
from audience.adapters.secrets import RotatingSecret
from audience.adapters.sqs import SqsDeadLetters
from audience.config import CurrencySettings
from audience.domain.profile import StreamPosition
from audience.services.privacy import Suppression
from audience.services.profiles import StreamRecord, apply_records
from audience.services.scoring import LiveScoring
from audience.services.segment_events import PublishingProfiles

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class StreamSettings(CurrencySettings):
    profiles_table: str = Field(alias="PROFILES_TABLE")
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    data_bucket: str = Field(alias="DATA_BUCKET")
    segment_bus: str = Field(alias="SEGMENT_BUS")
    min_dwell_minutes: int = Field(alias="SEGMENT_MIN_DWELL_MINUTES", default=60, ge=0)
    model_refresh_seconds: int = Field(alias="MODEL_REFRESH_SECONDS", default=60, ge=0)
    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME", default="", description="empty: no suppression")


settings = cache(StreamSettings.from_env)  # read once per container, at first use


@cache
def adapters() -> tuple[DynamoProfileRepository, SqsDeadLetters, LiveScoring, EventBridgeSegmentEvents]:
    scoring = LiveScoring(
        DynamoModelRegistry(settings().profiles_table),
        S3ObjectStore(settings().data_bucket),
        refresh=timedelta(seconds=settings().model_refresh_seconds),
        min_dwell=timedelta(minutes=settings().min_dwell_minutes),
    )
    profiles, dead_letters = (
        DynamoProfileRepository(settings().profiles_table),
        SqsDeadLetters(settings().dead_letter_queue_url),
    )
    return profiles, dead_letters, scoring, EventBridgeSegmentEvents(settings().segment_bus)


@cache
def suppression() -> Suppression | None:
    """Drops the events of erased customers (their ids' pseudonyms are suppressed)."""
    name = settings().pii_pepper_name
    return Suppression(DynamoPrivacy(settings().profiles_table), RotatingSecret(name).values()[0]) if name else None


def to_stream_records(event: KinesisStreamEvent) -> list[StreamRecord]:
    records = []
    for record in event.records:
        sequence = record.kinesis.sequence_number
        shard_id = record.event_id.split(":", 1)[0]  # eventID is "<shardId>:<sequenceNumber>"
        position = StreamPosition(shard_id, record.kinesis.partition_key, int(sequence))
        records.append(StreamRecord(sequence, position, base64.b64decode(record.kinesis.data)))
    return records


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=KinesisStreamEvent)
def handler(event: KinesisStreamEvent, context: LambdaContext) -> dict:
    profiles, dead_letters, scoring, bus = adapters()
    profiles.stats = StoreStats()
    now = datetime.now(UTC)
    publishing = PublishingProfiles(profiles, bus)  # segment events go out after each write that moves someone
    outcome = apply_records(
        to_stream_records(event), publishing, dead_letters, settings().currencies, now, scoring, suppression()
    )
    for name, value in {
        "EventsProcessed": outcome.processed,
        "EventsRejected": outcome.rejected,
        "DuplicatesSkipped": outcome.duplicates,
        "EventsSuppressed": outcome.suppressed,
        "ProfilesUpdated": outcome.profiles_updated,
        "ProfileMerges": outcome.merges,
        "WriteConflicts": outcome.conflicts,
        "RecordsRetried": len(outcome.failed_item_ids),
        "DynamoDBRequests": profiles.stats.requests,
        "DynamoDBRetries": profiles.stats.retries,
        "DynamoDBReadUnits": profiles.stats.read_units,  # as DynamoDB reports ConsumedCapacity
        "DynamoDBWriteUnits": profiles.stats.write_units,
    }.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return {"batchItemFailures": [{"itemIdentifier": item_id} for item_id in outcome.failed_item_ids]}
