"""``/v1/models``: the models in force, how they were chosen and how they scored."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.event_handler.api_gateway import Router

from audience.api.edge import responses
from audience.api.views import ValueModelView
from audience.bootstrap import ProfilesApiDeps
from audience.domain.errors import NotFound


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    @routes.get("/v1/models/value", summary="The value model in force: parameters, holdout, churn comparison",
                responses=responses(404, 503))  # fmt: skip
    def get_value_model() -> ValueModelView:
        metrics = deps().values.active()
        if metrics is None:
            raise NotFound("no value model yet: the retrain function fits one from the buyers' orders")
        return ValueModelView.model_validate(metrics)

    return routes
