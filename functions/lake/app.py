"""The lake's jobs: ``{"action": "replay", "from": "<date>", "to": "<date>"}`` rebuilds profiles
from the archived events of those days (exactly once), ``{"action": "compact"}`` (daily) leaves
each day of the archive as one file with every event once and no erased customer's,
``{"action": "snapshot"}`` (daily) writes the profiles' Parquet snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from audience.bootstrap import lake as composition
from audience.observability import count, lambda_handler
from audience.services.lake import LakeRequest

logger = Logger()
metrics = Metrics()
deps = cache(composition.build)  # once per container


@lambda_handler(logger, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = LakeRequest.model_validate(event)
    result = deps().handle(request, datetime.now(UTC))
    logger.info(f"{request.action} done", extra={k: v for k, v in result.items() if k != "days_done"})
    count(metrics, **{f"Lake{k.title().replace('_', '')}": v for k, v in result.items() if isinstance(v, int)})
    return result
