"""HTTP edge shared by the API functions: one place maps domain errors to responses."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from audience.domain.errors import CustomerNotFound, FieldError, InvalidInput, TransientError

logger = Logger(child=True)


def json_error(status: int, message: str, errors: list[FieldError] | None = None) -> Response[dict[str, object]]:
    body: dict[str, object] = {"message": message}
    if errors is not None:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in errors]
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Translate domain exceptions into the v1 API's error responses."""

    @app.exception_handler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Response[dict[str, object]]:
        return json_error(400, f"invalid request: {len(exc.errors)} error(s)", exc.errors)

    @app.exception_handler(CustomerNotFound)
    def _not_found(exc: CustomerNotFound) -> Response[dict[str, object]]:
        return json_error(404, str(exc))

    @app.exception_handler(TransientError)
    def _unavailable(exc: TransientError) -> Response[dict[str, object]]:
        logger.warning("transient failure", extra={"error": str(exc)})
        return json_error(503, "temporarily unavailable, retry the request (it is safe to repeat)")


def json_body(app: APIGatewayRestResolver) -> object:
    """The request body parsed as JSON, or InvalidInput naming the body."""
    try:
        return app.current_event.json_body
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise InvalidInput([FieldError("body", f"not valid JSON ({exc})")]) from None
