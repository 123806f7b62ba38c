"""POST /v1/events: the Segment Spec webhook. Validates, then writes to Kinesis."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from audience.adapters.kinesis import KinesisEventSink
from audience.api import json_body, register_error_handlers, responses
from audience.config import CurrencySettings
from audience.services.ingest import ingest

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)


class IngestSettings(CurrencySettings):
    events_stream: str = Field(alias="EVENTS_STREAM")


class Accepted(BaseModel):
    accepted: int = Field(description="messages written to the stream")


settings = cache(IngestSettings.from_env)  # read once per container, at first use


@cache
def sink() -> KinesisEventSink:
    return KinesisEventSink(settings().events_stream)


@app.post(
    "/v1/events",
    summary='Segment Spec events: one message, or {"batch": [...]}',
    responses=responses(400, 413, 503, success=202),
)
def post_events() -> Response[Accepted]:
    metrics.add_metric(name="IngestRequests", unit=MetricUnit.Count, value=1)
    accepted = ingest(json_body(app), datetime.now(UTC), sink(), settings().currencies)
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=accepted)
    logger.info("events accepted", extra={"accepted": accepted})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=Accepted(accepted=accepted))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
