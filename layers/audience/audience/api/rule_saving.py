"""``PUT /v1/rules``: the rule builder's save, served by the config function (the one that puts
configuration documents in force): the same checks as an upload of ``config/triggers.json``,
then in force, audited with the API key that saved it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from audience.api.edge import responses
from audience.services.documents import Documents, RuleBuilder, RulesSaved

Document = Annotated[
    dict[str, Any], Body(description='a trigger rules document: {"rules": [...]}, as config/triggers.json')
]


def router(deps: Callable[[], Documents]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    def actor() -> str:
        """Who saved: the API key's id, as API Gateway reports it (the key itself never)."""
        identity = cast(APIGatewayProxyEvent, routes.current_event).request_context.identity
        return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"

    @routes.put("/v1/rules", summary="Save a trigger rules document: the same checks as an upload, then in force "
                                     "(audited with the key that saved it)",
                responses=responses(400, 415, 503))  # fmt: skip
    def put_rules(document: Document) -> RulesSaved:
        documents = deps()
        return RuleBuilder(documents.store, documents.audit).save(document, datetime.now(UTC), actor())

    return routes
