"""``/v1/rules``: the trigger rules in force, and a document tried on the current profiles (the
rule builder's live preview and dry run). Saving is the config function's (``api.rule_saving``):
the read API never writes to the bucket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, Field

from audience.api.edge import responses
from audience.bootstrap import ProfilesApiDeps
from audience.measure.kpis import stored_kpis
from audience.services.documents import checked
from audience.services.rule_builder import RulesPreview, preview


class RulesInForce(BaseModel):
    rules: list[dict[str, Any]] = Field(description="as config/triggers.json holds them, highest priority first")


Document = Annotated[
    dict[str, Any], Body(description='a trigger rules document: {"rules": [...]}, as config/triggers.json')
]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    @routes.get("/v1/rules", summary="The trigger rules in force (config/triggers.json once accepted)",
                responses=responses(503))  # fmt: skip
    def get_rules() -> RulesInForce:
        rules = deps().rules.get(datetime.now(UTC)).model_dump(mode="json", exclude_none=True)["rules"]
        return RulesInForce(rules=rules)

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

    return routes
