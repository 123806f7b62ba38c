"""Events in: the Segment HTTP Tracking API (``POST /v1/batch``, ``/v1/track``, ... with a
source's write key) and the signed webhook (``POST /v1/events``). Both validate, then write to
Kinesis."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from audience.api.edge import ErrorItem, Tracked, lower_headers, raw_body, register_error_handlers, responses
from audience.bootstrap import ingest as composition
from audience.domain.tracking import CALLS
from audience.observability import count, lambda_handler

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)
deps = cache(composition.build)  # once per container


class Accepted(BaseModel):
    accepted: int = Field(description="messages written to the stream")


@app.post(
    "/v1/events",
    summary='Signed webhook: Segment Spec events, one message or {"batch": [...]}',
    responses=responses(400, 401, 413, 503, success=202),
)
def post_events() -> Response[Accepted]:
    count(metrics, IngestRequests=1)
    accepted = deps().webhook(raw_body(app), lower_headers(app), datetime.now(UTC))
    count(metrics, EventsAccepted=accepted)
    logger.info("events accepted", extra={"accepted": accepted})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=Accepted(accepted=accepted))


def tracking_route(call: str) -> None:
    @app.post(f"/v1/{call}", summary=f"Segment HTTP Tracking API: {call} (write key as HTTP Basic user)",
              responses=responses(400, 401, 413, 503))  # fmt: skip
    def post_tracking() -> Tracked:
        done = deps().track(raw_body(app), lower_headers(app), call, datetime.now(UTC))
        count(metrics, TrackingRequests=1, EventsAccepted=done.accepted, EventsRejected=done.refused_messages)
        logger.info("tracked", extra={"source": done.source, "accepted": done.accepted,
                                      "rejected": done.refused_messages})  # fmt: skip
        errors = [ErrorItem(field=e.field, reason=e.reason) for e in done.refused]
        return Tracked(accepted=done.accepted, rejected=done.refused_messages, errors=errors)


for tracking_call in ("batch", *CALLS):
    tracking_route(tracking_call)


@lambda_handler(logger, metrics, correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
