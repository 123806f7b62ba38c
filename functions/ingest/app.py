"""POST /v1/events: the Segment Spec webhook. Validates, then writes to Kinesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from audience.adapters.kinesis import KinesisEventSink
from audience.adapters.secrets import RotatingSecret
from audience.api import lower_headers, raw_body, register_error_handlers, responses
from audience.config import CurrencySettings
from audience.services.ingest import ingest

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)


class IngestSettings(CurrencySettings):
    events_stream: str = Field(alias="EVENTS_STREAM")
    webhook_secret_name: str = Field(alias="WEBHOOK_SECRET_NAME", default="", description="empty: unsigned")
    max_event_age_days: int = Field(alias="MAX_EVENT_AGE_DAYS", default=730, ge=1)
    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME", default="")
    pii_in_clear: bool = Field(alias="STORE_PII_IN_CLEAR", default=False)


class Accepted(BaseModel):
    accepted: int = Field(description="messages written to the stream")


settings = cache(IngestSettings.from_env)  # read once per container, at first use


@cache
def sink() -> KinesisEventSink:
    return KinesisEventSink(settings().events_stream)


@cache
def webhook_secret() -> RotatingSecret | None:
    return RotatingSecret(settings().webhook_secret_name) if settings().webhook_secret_name else None


@cache
def pepper() -> str | None:
    """The key contact details are hashed with (None: stored in the clear, as configured)."""
    name = settings().pii_pepper_name
    return RotatingSecret(name).values()[0] if name and not settings().pii_in_clear else None


@app.post(
    "/v1/events",
    summary='Segment Spec events: one message, or {"batch": [...]}',
    responses=responses(400, 401, 413, 503, success=202),
)
def post_events() -> Response[Accepted]:
    metrics.add_metric(name="IngestRequests", unit=MetricUnit.Count, value=1)
    secret = webhook_secret()
    accepted = ingest(
        raw_body(app),
        lower_headers(app),
        datetime.now(UTC),
        sink(),
        settings().currencies,
        secret.values() if secret else None,
        timedelta(days=settings().max_event_age_days),
        pepper(),
    )
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=accepted)
    logger.info("events accepted", extra={"accepted": accepted})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=Accepted(accepted=accepted))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
