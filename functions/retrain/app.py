"""Retrain the segmentation model (the schedule, or on demand), rescore every customer (daily),
or make a named version active (a rollback).

Events: ``{}`` or an EventBridge scheduled event retrains (in this invocation, or fanned out over
``FAN_OUT_SEGMENTS`` scan segments, or ``{"action": "retrain", "segments": N}``);
``{"action": "rescore"}`` rescores; ``{"action": "activate", "version": "<version>", "reason":
"..."}`` activates; ``{"action": "measure"}`` computes the experiments' results and the
segments' KPIs (fanned out like the retrain). SQS work items carry the fanned-out steps
(features, train, assign; tally).
(No ``from __future__ import annotations``: pydantic resolves the work record's types here.)
"""

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from audience.bootstrap import retrain as composition
from audience.observability import count, lambda_handler
from audience.services.jobs import Measured, Moved, WorkItem, answer, parse_request
from audience.services.retraining import RetrainOutcome

logger = Logger()
metrics = Metrics()
deps = cache(composition.build)  # once per container


class WorkRecord(SqsRecordModel):
    body: Json[WorkItem]  # type: ignore[assignment]


steps = BatchProcessor(event_type=EventType.SQS, model=WorkRecord)


@lambda_handler(logger, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records", [{}])[0].get("eventSource") == "aws:sqs":
        return process_partial_response(event=event, record_handler=_step, processor=steps, context=context)
    request = parse_request(event)
    result = deps().handle(request, datetime.now(UTC))
    logger.info(f"{request.action} done", extra={k: v for k, v in result.items() if k != "metrics"})
    count(metrics, CustomersMoved=result.get("moved", 0))
    if usage := result.get("dynamodb"):  # a scan reads every item: the cost that grows with the customer base
        count(metrics, DynamoDBReadUnits=usage["readUnits"], DynamoDBWriteUnits=usage["writeUnits"])
    if "promoted" in result:
        count(metrics, ModelPromoted=int(result["promoted"]))
    return result


def _step(record: WorkRecord) -> None:
    """One fanned-out step of a retraining or measure run."""
    done = deps().step(record.body, datetime.now(UTC))
    if isinstance(done, RetrainOutcome):
        logger.info("retrained", extra={"version": done.version, "promoted": done.promoted, "reason": done.reason})
        count(metrics, ModelPromoted=int(done.promoted))
    elif isinstance(done, Moved):
        count(metrics, CustomersMoved=done.moved)
    elif isinstance(done, Measured):
        logger.info("measured", extra=answer(done))
