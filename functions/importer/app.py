"""Imports exports dropped under imports/ (orders/, customers/), with rejects and a manifest.

Two triggers, one function: S3 ObjectCreated starts an import; an SQS work item applies one
chunk of an import too large for one invocation (the S3 invocation fanned it out). Imported
customers who meet a trigger rule enter its tier at once (their segment events are published);
the model's placement of new customers waits for the daily rescore.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from audience.adapters.dynamodb import DynamoModelRegistry, DynamoPrivacy, DynamoProfileRepository
from audience.adapters.eventbridge import EventBridgeSegmentEvents
from audience.adapters.s3 import S3ObjectStore
from audience.adapters.secrets import RotatingSecret
from audience.adapters.sqs import SqsWorkQueue
from audience.config import CurrencySettings
from audience.domain.privacy import AuditEntry
from audience.services.imports import Manifest, apply_chunk, run_import
from audience.services.privacy import Suppression, scrub_files
from audience.services.scoring import LiveTiers
from audience.services.segment_events import PublishingProfiles

logger = Logger()
tracer = Tracer()
metrics = Metrics()
chunks = BatchProcessor(event_type=EventType.SQS)


class ImportSettings(CurrencySettings):
    profiles_table: str = Field(alias="PROFILES_TABLE")
    data_bucket: str = Field(alias="DATA_BUCKET")
    work_queue_url: str = Field(alias="IMPORT_QUEUE_URL")
    chunk_customers: int = Field(alias="IMPORT_CHUNK_CUSTOMERS", default=20_000, ge=1)
    segment_bus: str = Field(alias="SEGMENT_BUS")
    refresh_seconds: int = Field(alias="MODEL_REFRESH_SECONDS", default=60, ge=0)
    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME", default="", description="empty: no suppression")
    pii_in_clear: bool = Field(alias="STORE_PII_IN_CLEAR", default=False)


settings = cache(ImportSettings.from_env)  # read once per container, at first use


@cache
def pepper() -> str | None:
    name = settings().pii_pepper_name
    return RotatingSecret(name).values()[0] if name else None


@cache
def adapters() -> tuple[S3ObjectStore, PublishingProfiles, LiveTiers, Suppression | None]:
    """The bucket, profiles that publish the segment events of each write, the trigger tiers
    imported customers are placed in, and the suppression of erased customers."""
    table, store = settings().profiles_table, S3ObjectStore(settings().data_bucket)
    profiles = PublishingProfiles(DynamoProfileRepository(table), EventBridgeSegmentEvents(settings().segment_bus))
    tiers = LiveTiers(DynamoModelRegistry(table), store, timedelta(seconds=settings().refresh_seconds))
    key = pepper()
    blocked = Suppression(DynamoPrivacy(table), key) if key else None
    return store, profiles, tiers, blocked


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records", [{}])[0].get("eventSource") == "aws:sqs":
        return process_partial_response(event=event, record_handler=_apply_chunk, processor=chunks, context=context)
    manifests = []
    for record in S3Event(event).records:
        store, profiles, tiers, blocked = adapters()
        manifest = run_import(
            record.s3.get_object.key,
            store,
            profiles,
            settings().currencies,
            datetime.now(UTC),
            SqsWorkQueue(settings().work_queue_url),
            settings().chunk_customers,
            tiers,
            blocked,
            None if settings().pii_in_clear else pepper(),
        )
        _report(manifest)
        manifests.append(f"reports/imports/{manifest.import_id}.json")
    return {"manifests": manifests}


def _apply_chunk(record: SQSRecord) -> None:
    item = record.json_body
    store, profiles, tiers, blocked = adapters()
    if "scrub" in item:  # an erasure: this function writes the rejects and merge reports, so it scrubs them
        work = item["scrub"]
        counts = scrub_files(store, work["ids"])
        entry = AuditEntry(subject=work["subject"], at=datetime.now(UTC), action="customer.scrubbed",
                           actor="import function", details={"receipt": work["receipt"], **counts})  # fmt: skip
        DynamoPrivacy(settings().profiles_table).record(entry)
        logger.info("erased customer's files scrubbed", extra=counts)
        return
    now = datetime.now(UTC)
    manifest = apply_chunk(item["importId"], int(item["chunk"]), store, profiles, settings().currencies, now, tiers,
                           blocked)  # fmt: skip
    logger.info("import chunk applied", extra={"import_id": item["importId"], "chunk": item["chunk"]})
    if manifest is not None:
        _report(manifest)


def _report(manifest: Manifest) -> None:
    """A finished import's figures; a fanned-out one reports when its last chunk is applied."""
    logger.info(
        "import finished" if manifest.finished else "import fanned out",
        extra={
            "import_id": manifest.import_id,
            "rows_read": manifest.rows_read,
            "chunks": manifest.chunks,
            "reconciles": manifest.reconciles,
        },
    )
    if manifest.finished:
        metrics.add_metric(name="ImportRowsRead", unit=MetricUnit.Count, value=manifest.rows_read)
        metrics.add_metric(name="ImportRowsRejected", unit=MetricUnit.Count, value=manifest.rejected)
