"""S3 notification for ``config/<name>.json``: check the document and put it in force only if
it is valid (``live/<name>.json``); a refused one leaves the previous in force and its errors,
naming each rule and field, in ``reports/config/`` and the log.

Also ``PUT /v1/rules``, the console's rule builder saving the trigger rules: the same checks,
then the same effect as an upload (``audience.api.rule_saving``)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from audience.api import rule_saving
from audience.api.edge import no_store, not_json, register_error_handlers
from audience.bootstrap import documents as composition
from audience.observability import count, lambda_handler

logger = Logger()
metrics = Metrics()
deps = cache(composition.build)  # once per container
app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)
app.include_router(rule_saving.router(lambda: deps()))


@lambda_handler(logger, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "httpMethod" in event:  # the rule builder's save, through API Gateway
        return no_store(not_json(event) or app.resolve(event, context))
    documents, outcomes = deps(), []
    for record in S3Event(event).records:
        outcome = documents.accept(record.s3.get_object.key, datetime.now(UTC))
        count(metrics, **{"ConfigAccepted" if outcome.accepted else "ConfigRefused": 1})
        outcomes.append({"name": outcome.name, "accepted": outcome.accepted, "report": outcome.report_key,
                         "errors": outcome.errors})  # fmt: skip
    return {"outcomes": outcomes}
