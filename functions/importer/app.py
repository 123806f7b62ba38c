"""S3 ObjectCreated under imports/ (orders/, customers/): import the export, with rejects and a manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from audience.adapters.dynamodb import DynamoProfileRepository
from audience.adapters.s3 import S3ObjectStore
from audience.config import CurrencySettings
from audience.services.imports import run_import

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class ImportSettings(CurrencySettings):
    profiles_table: str = Field(alias="PROFILES_TABLE")
    data_bucket: str = Field(alias="DATA_BUCKET")


settings = cache(ImportSettings.from_env)  # read once per container, at first use


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, object]:
    store = S3ObjectStore(settings().data_bucket)
    profiles = DynamoProfileRepository(settings().profiles_table)
    manifests = []
    for record in event.records:
        manifest = run_import(record.s3.get_object.key, store, profiles, settings().currencies, datetime.now(UTC))
        logger.info(
            "import finished",
            extra={"import_id": manifest.import_id, "rows_read": manifest.rows_read, "reconciles": manifest.reconciles},
        )
        metrics.add_metric(name="ImportRowsRead", unit=MetricUnit.Count, value=manifest.rows_read)
        metrics.add_metric(name="ImportRowsRejected", unit=MetricUnit.Count, value=manifest.rejected)
        manifests.append(f"reports/imports/{manifest.import_id}.json")
    return {"manifests": manifests}
