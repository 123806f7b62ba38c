"""``/v1/models``: the models in force, how they were chosen and how they scored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from audience.api.edge import responses
from audience.api.model_views import SegmentModelView, ValueModelView
from audience.bootstrap import ProfilesApiDeps
from audience.domain.errors import NotFound

Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="a model version")]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    @routes.get("/v1/models/value", summary="The value model in force: parameters, holdout, churn comparison",
                responses=responses(404, 503))  # fmt: skip
    def get_value_model() -> ValueModelView:
        metrics = deps().artifacts.values.active()
        if metrics is None:
            raise NotFound("no value model yet: the retrain function fits one from the buyers' orders")
        return ValueModelView.model_validate(metrics)

    @routes.get("/v1/models/segments", summary="The segmentation model in force: k, scores, segments, candidates",
                responses=responses(404, 503))  # fmt: skip
    def get_segment_model() -> SegmentModelView:
        d = deps()
        spec = d.model.get(datetime.now(UTC))
        if spec is None:
            raise NotFound("no segmentation model yet: the retrain function trains one")
        return _segment_model(d, spec.version, active=True)

    @routes.get(
        "/v1/models/segments/<version>", summary="Any stored segmentation model", responses=responses(400, 404, 503)
    )
    def get_segment_model_version(version: Version) -> SegmentModelView:
        d = deps()
        spec = d.model.get(datetime.now(UTC))
        return _segment_model(d, version, active=spec is not None and spec.version == version)

    @routes.get(
        "/v1/models/segments/<version>/report",
        summary="A stored model's training report (HTML: segments, choosing k, drift, value)",
        responses={
            **responses(400, 404, 503),
            200: {"description": "the report", "content": {"text/html": {"schema": {"type": "string"}}}},
        },
    )
    def get_segment_model_report(version: Version) -> Response[str]:
        page = deps().artifacts.model_report(version)
        if page is None:
            raise NotFound(f"no report for model {version}")
        return Response(status_code=200, content_type="text/html; charset=utf-8", body=page)

    return routes


def _segment_model(deps: ProfilesApiDeps, version: str, active: bool) -> SegmentModelView:
    models = deps.artifacts.segments
    spec, metrics = models.spec(version), models.metrics(version)
    if spec is None or metrics is None:
        raise NotFound(f"model {version} is not stored")
    return SegmentModelView.of(version, active, spec, metrics)
