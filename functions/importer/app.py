"""Imports exports dropped under imports/ (orders/, customers/), with rejects and a manifest.

Two triggers, one function: S3 ObjectCreated starts an import; an SQS work item applies one
chunk of an import too large for one invocation (the S3 invocation fanned it out), or removes an
erased customer's rows from the files this function writes. Imported customers who meet a
trigger rule enter its tier at once; the model's placement of new customers waits for the
daily rescore.
(No ``from __future__ import annotations``: pydantic resolves the work record's types here.)
"""

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from audience.bootstrap import importer as composition
from audience.observability import count, lambda_handler
from audience.services.artifacts import manifest_key
from audience.services.imports import ChunkWork, Manifest
from audience.services.privacy import ScrubWork

logger = Logger()
metrics = Metrics()
deps = cache(composition.build)  # once per container


class WorkRecord(SqsRecordModel):
    body: Json[ChunkWork | ScrubWork]  # type: ignore[assignment]


work_items = BatchProcessor(event_type=EventType.SQS, model=WorkRecord)


@lambda_handler(logger, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records", [{}])[0].get("eventSource") == "aws:sqs":
        return process_partial_response(event=event, record_handler=_work, processor=work_items, context=context)
    importing, manifests = deps(), []
    for record in S3Event(event).records:
        manifest = importing.run(record.s3.get_object.key, datetime.now(UTC))
        _report(manifest)
        manifests.append(manifest_key(manifest.import_id))
    return {"manifests": manifests}


def _work(record: WorkRecord) -> None:
    importing, item, now = deps(), record.body, datetime.now(UTC)
    if isinstance(item, ScrubWork):  # an erasure: this function writes the rejects and merge reports
        counts = importing.scrub(item.scrub, now)
        logger.info("erased customer's files scrubbed", extra=counts)
        return
    manifest = importing.apply_chunk(item.import_id, item.chunk, now)
    logger.info("import chunk applied", extra={"import_id": item.import_id, "chunk": item.chunk})
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
        count(metrics, ImportRowsRead=manifest.rows_read, ImportRowsRejected=manifest.rejected)
