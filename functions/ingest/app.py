"""Events in: the Segment HTTP Tracking API (``POST /v1/batch``, ``/v1/track``, ... with a
source's write key), what browser SDKs send and fetch (analytics.js 2.0's ``/v1/t``, ``/v1/b``
and settings document, RudderStack's beacon and source configuration), and the signed webhook
(``POST /v1/events``). They validate, then write to Kinesis.

CORS is per source, so it is ours rather than Powertools' (whose ``CORSConfig`` allows a fixed
list): a preflight is answered for an origin some source allows, every answer of a browser
route echoes such an origin (errors included: a browser reports an answer without it as a
network failure, and the SDK retries), and a page whose origin the key's source does not list is
refused (403, ``OriginRefused``). Requests without an ``Origin`` (servers) are unaffected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from audience.api import cors
from audience.api.edge import (
    ErrorItem,
    Tracked,
    json_error,
    lower_headers,
    public_address,
    raw_body,
    register_error_handlers,
    responses,
)
from audience.bootstrap import ingest as composition
from audience.domain.errors import AudienceError
from audience.domain.sources import OriginRefused
from audience.domain.tracking import BROWSER_CALLS, CALLS, BrowserSettings, RudderSourceConfig
from audience.observability import count, lambda_handler

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)
deps = cache(composition.build)  # once per container

WEBHOOK = "/v1/events"  # signed by a server: no CORS
SETTINGS = "/v1/projects/<writeKey>/settings"
SOURCE_CONFIG = "/sourceConfig"
CACHED = {"Cache-Control": "public, max-age=300", "Vary": "Origin"}  # fetched on every page; cached per origin


class Accepted(BaseModel):
    accepted: int = Field(description="messages written to the stream")


@app.post(
    WEBHOOK,
    summary='Signed webhook: Segment Spec events, one message or {"batch": [...]}',
    responses=responses(400, 401, 413, 503, success=202),
)
def post_events() -> Response[Accepted]:
    count(metrics, IngestRequests=1)
    accepted = deps().webhook(raw_body(app), lower_headers(app), datetime.now(UTC))
    count(metrics, EventsAccepted=accepted)
    logger.info("events accepted", extra={"accepted": accepted})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=Accepted(accepted=accepted))


def tracking_route(path: str, call: str, summary: str, key_in_query: bool = False) -> None:
    @app.post(path, summary=summary, responses=responses(400, 401, 403, 413, 503))
    def post_tracking() -> Tracked:
        key = (app.current_event.query_string_parameters or {}).get("writeKey") if key_in_query else None
        done = deps().track(raw_body(app), lower_headers(app), call, datetime.now(UTC), key)
        count(metrics, TrackingRequests=1, EventsAccepted=done.accepted, EventsRejected=done.refused_messages)
        logger.info("tracked", extra={"source": done.source, "accepted": done.accepted,
                                      "rejected": done.refused_messages})  # fmt: skip
        errors = [ErrorItem(field=e.field, reason=e.reason) for e in done.refused]
        return Tracked(accepted=done.accepted, rejected=done.refused_messages, errors=errors)


for tracking_call in ("batch", *CALLS):
    tracking_route(f"/v1/{tracking_call}", tracking_call,
                   f"Segment HTTP Tracking API: {tracking_call} (write key as HTTP Basic user)")  # fmt: skip
for initial, browser_call in BROWSER_CALLS.items():
    tracking_route(f"/v1/{initial}", browser_call,
                   f"analytics.js 2.0: {browser_call} (text/plain JSON with writeKey, or HTTP Basic)")  # fmt: skip
tracking_route("/v1/b", "batch", "analytics.js 2.0 batching mode: {writeKey, batch, sentAt} as text/plain JSON")
tracking_route("/beacon/v1/batch", "batch", "RudderStack beacon: text/plain {batch, sentAt}; ?writeKey=<key>",
               key_in_query=True)  # fmt: skip


@app.get(SETTINGS, summary="analytics.js 2.0's settings document (its cdnURL is this API)",
         responses=responses(401, 403, 503))  # fmt: skip
def get_settings(writeKey: str) -> Response[BrowserSettings]:  # noqa: N803 (the path's name, as analytics.js spells it)
    protocol, host = public_address(app, "/v1/projects/")
    settings = deps().browser_settings(writeKey, origin(), f"{host}/v1", protocol, datetime.now(UTC))
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=settings, headers=CACHED)


@app.get(SOURCE_CONFIG, summary="RudderStack JS SDK v3's source configuration (write key as HTTP Basic user)",
         responses=responses(401, 403, 503))  # fmt: skip
def get_source_config() -> Response[RudderSourceConfig]:
    key = (app.current_event.query_string_parameters or {}).get("writeKey")
    config = deps().source_config(key, lower_headers(app), datetime.now(UTC))
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=config, headers=CACHED)


def preflight_route(path: str) -> None:
    @app.route(path, method="OPTIONS", include_in_schema=False)
    def answer_preflight(**_path: str) -> Response[str]:  # (the settings path names the key: unused)
        headers = lower_headers(app)
        sent = origin()
        if sent is None or not deps().allows(sent, datetime.now(UTC)):
            raise OriginRefused(sent or "(none)")
        return Response(status_code=204, content_type=None, body="", headers=cors.preflight(sent, headers))


for browser_path in [f"/v1/{call}" for call in ("batch", *CALLS, *BROWSER_CALLS, "b")]:
    preflight_route(browser_path)
for browser_path in ("/beacon/v1/batch", SETTINGS, SOURCE_CONFIG):
    preflight_route(browser_path)


@app.exception_handler(OriginRefused)
def _origin_refused(exc: OriginRefused) -> Response[dict[str, object]]:
    count(metrics, OriginRefused=1)
    logger.warning("origin refused", extra={"origin": exc.origin, "source": exc.source})
    return json_error(403, f"forbidden: {exc}")


def origin() -> str | None:
    return lower_headers(app).get("origin") or None


def with_cors(event: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The answer of a browser route with the page's origin echoed when some source allows it
    (whatever the answer: a refusal a page cannot read is retried as a network failure)."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    sent = headers.get("origin")
    if not sent or event.get("resource") == WEBHOOK:
        return answer
    try:
        if not deps().allows(sent, datetime.now(UTC)):
            return answer
    except AudienceError:  # the registry unreadable: the answer (a 503 already) goes as it is
        return answer
    return cors.echoed(answer, sent)


@lambda_handler(logger, metrics, correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return with_cors(event, app.resolve(event, context))
