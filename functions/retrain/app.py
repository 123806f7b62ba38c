"""Retrain the segmentation model (the schedule, or on demand), rescore every customer (daily),
or make a named version active (a rollback).

Events: ``{}`` or an EventBridge scheduled event retrains (in this invocation, or fanned out over
``FAN_OUT_SEGMENTS`` scan segments, or ``{"action": "retrain", "segments": N}``);
``{"action": "rescore"}`` rescores; ``{"action": "activate", "version": "<version>", "reason":
"..."}`` activates. SQS work items carry the fanned-out steps (features, train, assign).
(No ``from __future__ import annotations``: pydantic resolves the request model's types here.)
"""

from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json, field_validator

from audience.adapters.dynamodb import DynamoModelRegistry, DynamoProfileRepository
from audience.adapters.eventbridge import EventBridgeSegmentEvents
from audience.adapters.s3 import S3ObjectStore
from audience.adapters.sqs import SqsWorkQueue
from audience.config import Settings
from audience.domain.triggers import TriggerRules
from audience.models.drift import PromotionPolicy
from audience.models.training import TrainingConfig
from audience.services.configs import LiveConfig
from audience.services.models import (
    activate,
    assign_segment,
    collect_features,
    rescore,
    retrain,
    start_fan_out,
    train_fanned_out,
)
from audience.services.segment_events import PublishingProfiles

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
    fan_out_segments: int = Field(alias="FAN_OUT_SEGMENTS", default=0, ge=0, description="0: in one invocation")
    work_queue_url: str = Field(alias="RETRAIN_QUEUE_URL")
    segment_bus: str = Field(alias="SEGMENT_BUS")
    rf_segments: Json[list[tuple[str, str]]] | None = Field(
        alias="RFM_SEGMENTS", default=None, description='[["5[4-5]", "Champions"], ...]: RF pattern -> name'
    )

    @field_validator("rf_segments", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # the template's default: the built-in map

    @property
    def training(self) -> TrainingConfig:
        return TrainingConfig(rf_segments=tuple(self.rf_segments)) if self.rf_segments else TrainingConfig()

    @property
    def policy(self) -> PromotionPolicy:
        return PromotionPolicy(min_silhouette=self.min_silhouette, min_cluster_share=self.min_cluster_share,
                               min_stability=self.min_stability, drift_psi=self.drift_psi)  # fmt: skip


class Request(BaseModel):
    action: Literal["retrain", "rescore", "activate"] = "retrain"
    version: str | None = None
    reason: str = Field(default="activated on demand", max_length=500)
    segments: int | None = Field(default=None, ge=1, le=1000, description="fan out over this many scan segments")


class WorkItem(BaseModel):
    action: Literal["features", "train", "assign"]
    run: str
    segment: int = 0
    segments: int = 1


settings = cache(RetrainSettings.from_env)
steps = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records", [{}])[0].get("eventSource") == "aws:sqs":
        return process_partial_response(event=event, record_handler=_step, processor=steps, context=context)
    request = Request.model_validate({} if event.get("source") == "aws.events" else event)
    store, now = S3ObjectStore(settings().data_bucket), datetime.now(UTC)
    profiles = _profiles()
    registry = DynamoModelRegistry(settings().profiles_table)
    if request.action == "rescore":
        rules = LiveConfig(store, TriggerRules).get(now)  # the trigger rules in force: tiers age too
        moved = rescore(profiles, store, registry, now, scan_segments=settings().scan_segments, rules=rules)
        metrics.add_metric(name="CustomersMoved", unit=MetricUnit.Count, value=moved)
        return {"moved": moved}
    if request.action == "activate":
        if not request.version:
            raise ValueError("activate needs a version")
        moved = activate(request.version, profiles, store, registry, now, request.reason)
        return {"active": request.version, "moved": moved}
    fan_out = request.segments or settings().fan_out_segments
    if fan_out:
        run = start_fan_out(SqsWorkQueue(settings().work_queue_url), fan_out, now)
        logger.info("retraining fanned out", extra={"run": run, "segments": fan_out})
        return {"run": run, "segments": fan_out}
    outcome = retrain(profiles, store, registry, settings().policy, now, settings().training, settings().scan_segments)
    logger.info("retrained", extra={"version": outcome.version, "promoted": outcome.promoted, "reason": outcome.reason})
    metrics.add_metric(name="ModelPromoted", unit=MetricUnit.Count, value=int(outcome.promoted))
    metrics.add_metric(name="CustomersMoved", unit=MetricUnit.Count, value=outcome.moved)
    result = asdict(outcome)
    result["metrics"] = {k: v for k, v in outcome.metrics.items() if k not in ("candidates", "training_bins")}
    return result


def _profiles() -> PublishingProfiles:
    """Profiles whose writes publish the segment events they carry."""
    repository = DynamoProfileRepository(settings().profiles_table)
    return PublishingProfiles(repository, EventBridgeSegmentEvents(settings().segment_bus))


def _step(record: SQSRecord) -> None:
    """One fanned-out step of a retraining run."""
    item = WorkItem.model_validate(record.json_body)
    store, now, work = S3ObjectStore(settings().data_bucket), datetime.now(UTC), SqsWorkQueue(settings().work_queue_url)
    profiles = _profiles()
    if item.action == "features":
        collect_features(item.run, item.segment, item.segments, profiles, store, work, now)
    elif item.action == "train":
        registry = DynamoModelRegistry(settings().profiles_table)
        outcome = train_fanned_out(
            item.run, item.segments, store, registry, settings().policy, work, now, settings().training
        )
        if outcome is not None:
            logger.info("retrained", extra={"version": outcome.version, "promoted": outcome.promoted,
                                            "reason": outcome.reason})  # fmt: skip
            metrics.add_metric(name="ModelPromoted", unit=MetricUnit.Count, value=int(outcome.promoted))
    else:
        moved = assign_segment(item.run, item.segment, profiles, store, now)
        metrics.add_metric(name="CustomersMoved", unit=MetricUnit.Count, value=moved)
