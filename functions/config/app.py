"""S3 notification for ``config/<name>.json``: check the document and put it in force only if
it is valid (``live/<name>.json``); a refused one leaves the previous in force and its errors,
naming each rule and field, in ``reports/config/`` and the log."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from audience.adapters.dynamodb import DynamoPrivacy
from audience.adapters.s3 import S3ObjectStore
from audience.config import Settings
from audience.services.configs import accept

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class ConfigSettings(Settings):
    data_bucket: str = Field(alias="DATA_BUCKET")
    profiles_table: str = Field(alias="PROFILES_TABLE")


settings = cache(ConfigSettings.from_env)  # read once per container, at first use


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = []
    for record in S3Event(event).records:
        store, audit = S3ObjectStore(settings().data_bucket), DynamoPrivacy(settings().profiles_table)
        outcome = accept(store, record.s3.get_object.key, datetime.now(UTC), audit)
        name = "ConfigAccepted" if outcome.accepted else "ConfigRefused"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        outcomes.append({"name": outcome.name, "accepted": outcome.accepted, "report": outcome.report_key,
                         "errors": outcome.errors})  # fmt: skip
    return {"outcomes": outcomes}
