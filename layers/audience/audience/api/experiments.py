"""``/v1/experiments``: the experiments in force and what the measure job found."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from audience.api.edge import responses
from audience.api.experiment_views import ExperimentList, ExperimentResults, ExperimentView
from audience.bootstrap import ProfilesApiDeps
from audience.domain.errors import NotFound

ExperimentId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$", description="an experiment id")
]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    @routes.get("/v1/experiments", summary="The experiments in force (config/experiments.json) and their status",
                responses=responses(503))  # fmt: skip
    def get_experiments() -> ExperimentList:
        now = datetime.now(UTC)
        document = deps().experiments.get(now)
        shown = [ExperimentView(**e.model_dump(), status="running" if e.running(now) else
                                "scheduled" if now < e.start else "ended") for e in document.experiments]  # fmt: skip
        return ExperimentList(holdout=document.holdout, experiments=shown)

    @routes.get(
        "/v1/experiments/<experimentId>/results",
        summary="An experiment's results: per variant and segment, conversion and revenue lift, sample-ratio check",
        responses=responses(400, 404, 503),
    )
    def get_experiment_results(experimentId: ExperimentId) -> ExperimentResults:  # noqa: N803
        found = deps().artifacts.measures.results(experimentId)
        if found is None:
            raise NotFound(f"no results for experiment {experimentId} yet: the measure job computes them daily")
        return ExperimentResults.model_validate(found)

    return routes
