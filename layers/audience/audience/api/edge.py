"""HTTP edge shared by the API functions: one place maps domain errors to responses."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from audience.domain.errors import FieldError, InvalidInput, NotFound, TooLarge, TransientError, Unauthorized

logger = Logger(child=True)


class ErrorItem(BaseModel):
    field: str
    reason: str


CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large",
         415: "unsupported_media_type", 503: "unavailable"}  # fmt: skip


class ErrorBody(BaseModel):
    """Every error answer of the v1 API (``code`` and ``message``, as Segment's tracking API answers)."""

    code: str = Field(description=", ".join(CODES.values()))
    message: str
    errors: list[ErrorItem] | None = Field(default=None, description="each failing field and why (400)")


class Tracked(BaseModel):
    """Segment's ``{"success": true}`` for the tracking API, and what was refused: a bad message
    never sinks the others."""

    success: bool = True
    accepted: int = Field(description="messages written to the stream")
    rejected: int = Field(description="messages refused (each parked with its reasons for an operator)")
    errors: list[ErrorItem] = Field(default_factory=list, description="every refused field and why")


def responses(*errors: int, success: int = 200) -> dict[int, OpenAPIResponse]:
    """The OpenAPI description of a route's answers: ``success`` with the route's return type,
    and the ``errors`` with ``ErrorBody``."""
    described = {
        400: "invalid request: every failing field and the reason",
        401: "missing, wrong or stale credentials (a signature, or a write key); nothing was written",
        403: "a page whose origin the write key's source does not allow; nothing was written",
        404: "not found",
        413: "request too large",
        415: "the body is not JSON",
        503: "temporarily unavailable; the request is safe to repeat",
    }
    return {
        success: {"description": "OK" if success == 200 else "accepted"},
        **{
            status: {"description": described[status], "content": {"application/json": {"model": ErrorBody}}}
            for status in errors
        },
    }


def json_error(status: int, message: str, errors: list[FieldError] | None = None) -> Response[dict[str, object]]:
    body: dict[str, object] = {"code": CODES[status], "message": message}
    if errors is not None:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in errors]
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Translate domain exceptions into the v1 API's error responses."""

    @app.exception_handler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Response[dict[str, object]]:
        return json_error(400, f"invalid request: {len(exc.errors)} error(s)", exc.errors)

    @app.exception_handler(RequestValidationError)
    def _invalid_parameters(exc: RequestValidationError) -> Response[dict[str, object]]:
        errors = [FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        return json_error(400, f"invalid request: {len(errors)} error(s)", errors)

    @app.exception_handler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Response[dict[str, object]]:
        return json_error(401, f"unauthorized: {exc}")

    @app.exception_handler(TooLarge)
    def _too_large(exc: TooLarge) -> Response[dict[str, object]]:
        return json_error(413, f"too large: {exc}")

    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response[dict[str, object]]:
        return json_error(404, str(exc))

    @app.exception_handler(TransientError)
    def _unavailable(exc: TransientError) -> Response[dict[str, object]]:
        logger.warning("transient failure", extra={"error": str(exc)})
        return json_error(503, "temporarily unavailable, retry the request (it is safe to repeat)")


def raw_body(app: APIGatewayRestResolver) -> bytes:
    """The request body's bytes, exactly as sent (what a signature covers)."""
    event = app.current_event
    if not event.body:
        return b""
    return base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode()


def lower_headers(app: APIGatewayRestResolver) -> dict[str, str]:
    return {name.lower(): value for name, value in (app.current_event.headers or {}).items()}


def not_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """The answer for a body that is not JSON, before any parsing (the resolver would fail on
    a form without a boundary or on bytes that are not UTF-8): 415 for another media type,
    400 for a JSON body that does not parse; None when the body is JSON or absent."""
    if not event.get("body"):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media = str(headers.get("content-type", "application/json")).split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return _answer(415, {"code": CODES[415], "message": f"unsupported media type {media!r}: send application/json"})
    try:
        raw = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"]
        json.loads(raw)
    except ValueError as exc:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        return _answer(400, {"code": CODES[400], "message": "invalid request: 1 error(s)",
                             "errors": [{"field": "body", "reason": f"not valid JSON ({exc})"}]})  # fmt: skip
    return None


def no_store(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` marked ``Cache-Control: no-store``: every answer of the read API is about customers
    (or who is in a segment), so neither a browser nor a proxy may keep a copy. An answer that
    says otherwise keeps its own (in-page personalization: ``private, max-age=5``, the visitor's
    own browser only, nothing about them beyond what to show)."""
    headers = dict(answer.get("headers") or {})
    if not any(name.lower() == "cache-control" for name in headers) and not any(
        name.lower() == "cache-control" for name in (answer.get("multiValueHeaders") or {})
    ):
        headers["Cache-Control"] = "no-store"
    return {**answer, "headers": headers}


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def public_address(app: APIGatewayRestResolver, route: str) -> tuple[Literal["http", "https"], str]:
    """The scheme and the ``host[:port][/prefix]`` a client reached this API at, from the
    ``Host`` and ``X-Forwarded-Proto`` it sent and the path it asked for: ``route`` is where the
    route's own part of that path begins (e.g. ``/v1/projects/``), what comes before it is API
    Gateway's stage (``/Prod``) or a custom domain's base path."""
    event, headers = app.current_event, lower_headers(app)
    host = headers.get("host") or event.request_context.domain_name or ""
    scheme = headers.get("x-forwarded-proto", "http").split(",")[0].strip().lower()
    asked = event.request_context.path or event.path
    prefix = asked[: asked.rfind(route)] if route in asked else ""
    return ("https" if scheme == "https" else "http"), f"{host}{prefix}"
