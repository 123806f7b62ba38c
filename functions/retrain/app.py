"""Retrain the segmentation model (the schedule, or on demand), rescore every customer (daily),
or make a named version active (a rollback).

Events: ``{}`` or an EventBridge scheduled event retrains; ``{"action": "rescore"}`` rescores;
``{"action": "activate", "version": "<version>", "reason": "..."}`` activates.
(No ``from __future__ import annotations``: pydantic resolves the request model's types here.)
"""


from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from audience.adapters.dynamodb import DynamoModelRegistry, DynamoProfileRepository
from audience.adapters.s3 import S3ObjectStore
from audience.config import Settings
from audience.models.drift import PromotionPolicy
from audience.services.models import activate, rescore, retrain

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class RetrainSettings(Settings):
    profiles_table: str = Field(alias="PROFILES_TABLE")
    data_bucket: str = Field(alias="DATA_BUCKET")
    min_silhouette: float = Field(alias="MIN_SILHOUETTE", default=0.15)
    min_cluster_share: float = Field(alias="MIN_CLUSTER_SHARE", default=0.02)
    min_stability: float = Field(alias="MIN_STABILITY", default=0.6)
    drift_psi: float = Field(alias="DRIFT_PSI", default=0.2)
    scan_segments: int = Field(alias="SCAN_SEGMENTS", default=4, ge=1)

    @property
    def policy(self) -> PromotionPolicy:
        return PromotionPolicy(min_silhouette=self.min_silhouette, min_cluster_share=self.min_cluster_share,
                               min_stability=self.min_stability, drift_psi=self.drift_psi)  # fmt: skip


class Request(BaseModel):
    action: Literal["retrain", "rescore", "activate"] = "retrain"
    version: str | None = None
    reason: str = Field(default="activated on demand", max_length=500)


settings = cache(RetrainSettings.from_env)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = Request.model_validate({} if event.get("source") == "aws.events" else event)
    store, now = S3ObjectStore(settings().data_bucket), datetime.now(UTC)
    profiles = DynamoProfileRepository(settings().profiles_table)
    registry = DynamoModelRegistry(settings().profiles_table)
    if request.action == "rescore":
        moved = rescore(profiles, store, registry, now, scan_segments=settings().scan_segments)
        metrics.add_metric(name="CustomersMoved", unit=MetricUnit.Count, value=moved)
        return {"moved": moved}
    if request.action == "activate":
        if not request.version:
            raise ValueError("activate needs a version")
        moved = activate(request.version, profiles, store, registry, now, request.reason)
        return {"active": request.version, "moved": moved}
    outcome = retrain(profiles, store, registry, settings().policy, now, scan_segments=settings().scan_segments)
    logger.info("retrained", extra={"version": outcome.version, "promoted": outcome.promoted, "reason": outcome.reason})
    metrics.add_metric(name="ModelPromoted", unit=MetricUnit.Count, value=int(outcome.promoted))
    metrics.add_metric(name="CustomersMoved", unit=MetricUnit.Count, value=outcome.moved)
    result = asdict(outcome)
    result["metrics"] = {k: v for k, v in outcome.metrics.items() if k not in ("candidates", "training_bins")}
    return result
