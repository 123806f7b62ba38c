"""POST /v1/events: the Segment Spec webhook. Validates, then writes to Kinesis."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from audience import bootstrap
from audience.api.edge import lower_headers, raw_body, register_error_handlers, responses
from audience.observability import count, lambda_handler
from audience.services.ingest import ingest

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)
deps = cache(bootstrap.ingest)  # once per container


class Accepted(BaseModel):
    accepted: int = Field(description="messages written to the stream")


@app.post(
    "/v1/events",
    summary='Segment Spec events: one message, or {"batch": [...]}',
    responses=responses(400, 401, 413, 503, success=202),
)
def post_events() -> Response[Accepted]:
    count(metrics, IngestRequests=1)
    d = deps()
    secrets = d.signing_secrets() if d.signing_secrets else None
    accepted = ingest(raw_body(app), lower_headers(app), datetime.now(UTC), d.sink, d.currencies, secrets, d.max_age,
                      d.contact_key)  # fmt: skip
    count(metrics, EventsAccepted=accepted)
    logger.info("events accepted", extra={"accepted": accepted})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=Accepted(accepted=accepted))


@lambda_handler(logger, metrics, correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
