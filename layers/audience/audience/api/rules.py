"""``/v1/rules``: the trigger rules in force, a document tried on the current profiles (the
rule builder's live preview and dry run), and saved through the same checks as an upload."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from audience.api.edge import responses
from audience.bootstrap import ProfilesApiDeps
from audience.measure.kpis import stored_kpis
from audience.services.rule_builder import RuleBuilder, RulesPreview, RulesSaved, checked, preview

Document = Annotated[
    dict[str, Any], Body(description='a trigger rules document: {"rules": [...]}, as config/triggers.json')
]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    def actor() -> str:
        identity = cast(APIGatewayProxyEvent, routes.current_event).request_context.identity
        return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"

    @routes.get("/v1/rules", summary="The trigger rules in force (config/triggers.json once accepted)",
                responses=responses(503))  # fmt: skip
    def get_rules() -> dict[str, Any]:
        return deps().rules.get(datetime.now(UTC)).model_dump(mode="json", exclude_none=True)

    @routes.post("/v1/rules/preview",
                 summary="Dry run: check a trigger rules document as an upload is checked, and count the "
                         "customers each tier would hold (the current profiles, sampled beyond 5,000)",
                 responses=responses(400, 415, 503))  # fmt: skip
    def post_preview(document: Document) -> RulesPreview:
        d, now = deps(), datetime.now(UTC)
        rules = checked(document, d.artifacts.store, now)
        population = stored_kpis(d.artifacts.measures.kpis()).population
        everyone = population.customers if population else None
        return preview(rules, d.profiles, d.model.get(now), d.value.get(now), everyone, now)

    @routes.put("/v1/rules", summary="Save a trigger rules document: the same checks as an upload, then in force "
                                     "(audited with the key that saved it)",
                responses=responses(400, 415, 503))  # fmt: skip
    def put_rules(document: Document) -> RulesSaved:
        d = deps()
        return RuleBuilder(d.artifacts.store, d.privacy).save(document, datetime.now(UTC), actor())

    return routes
