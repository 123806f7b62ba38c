"""GET /v1/customers/{customerId}: the read API for customer profiles."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from audience.adapters.dynamodb import DynamoProfileRepository
from audience.api import register_error_handlers
from audience.config import Settings
from audience.services.profiles import get_profile

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)


class ProfilesApiSettings(Settings):
    profiles_table: str = Field(alias="PROFILES_TABLE")
    base_currency: str = Field(alias="BASE_CURRENCY")


settings = cache(ProfilesApiSettings.from_env)  # read once per container, at first use


@cache
def profiles() -> DynamoProfileRepository:
    return DynamoProfileRepository(settings().profiles_table)


@app.get("/v1/customers/<customerId>")
@tracer.capture_method
def get_customer(customerId: str) -> dict[str, Any]:  # noqa: N803 (the path parameter's name)
    metrics.add_metric(name="ProfileLookups", unit=MetricUnit.Count, value=1)
    profile = get_profile(customerId, profiles())
    return profile.public_view(as_of=datetime.now(UTC), currency=settings().base_currency)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
