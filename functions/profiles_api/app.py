"""The read API for personalization: customers, what to show them, segments and their members.

Powertools' resolver validates parameters and responses, and generates the OpenAPI document
(``make openapi`` writes ``docs/openapi.json``). API Gateway requires an API key on these routes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audience.adapters.dynamodb import DynamoModelRegistry, DynamoPrivacy, DynamoProfileRepository
from audience.adapters.s3 import S3ObjectStore
from audience.adapters.secrets import RotatingSecret
from audience.adapters.sqs import SqsWorkQueue
from audience.api import not_json, register_error_handlers, responses
from audience.config import Settings
from audience.domain.personalization import Choice, ContentMapping
from audience.domain.privacy import AuditEntry, Receipt
from audience.domain.triggers import TriggerRules
from audience.services.configs import LiveConfig
from audience.services.privacy import customer_audit, erase_customer, export_customer, record_consent
from audience.services.profiles import get_profile
from audience.services.scoring import LiveModel
from audience.services.segments import MembersPage, SegmentList, list_segments, page

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)

CustomerId = Annotated[str, Path(min_length=1, max_length=256, description="any id the customer is known by")]


class ProfilesApiSettings(Settings):
    profiles_table: str = Field(alias="PROFILES_TABLE")
    base_currency: str = Field(alias="BASE_CURRENCY")
    data_bucket: str = Field(alias="DATA_BUCKET")
    refresh_seconds: int = Field(alias="MODEL_REFRESH_SECONDS", default=60, ge=0)
    pii_pepper_name: str = Field(alias="PII_PEPPER_NAME")
    import_queue_url: str = Field(alias="IMPORT_QUEUE_URL", description="an erasure's file scrubbing goes there")


settings = cache(ProfilesApiSettings.from_env)  # read once per container, at first use


@cache
def adapters() -> tuple[DynamoProfileRepository, LiveModel, LiveConfig[TriggerRules], LiveConfig[ContentMapping]]:
    table, store = settings().profiles_table, S3ObjectStore(settings().data_bucket)
    refresh = timedelta(seconds=settings().refresh_seconds)
    return (
        DynamoProfileRepository(table),
        LiveModel(DynamoModelRegistry(table), store, refresh),
        LiveConfig(store, TriggerRules, refresh),
        LiveConfig(store, ContentMapping, refresh),
    )


@app.get(
    "/v1/customers/<customerId>",
    summary="A customer's profile, segments, scores, consent and last change",
    responses=responses(400, 404, 503),
)
def get_customer(customerId: CustomerId) -> dict[str, Any]:  # noqa: N803 (the path parameter's name)
    metrics.add_metric(name="ProfileLookups", unit=MetricUnit.Count, value=1)
    profile = get_profile(customerId, adapters()[0])
    return profile.public_view(as_of=datetime.now(UTC), currency=settings().base_currency)


class ConsentRequest(BaseModel):
    """Any of the purposes; the others keep their state."""

    model_config = ConfigDict(extra="forbid")

    analytics: bool | None = None
    personalization: bool | None = None
    marketing: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> ConsentRequest:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one of analytics, personalization, marketing")
        return self


@app.put(
    "/v1/customers/<customerId>/consent",
    summary="Record the customer's consent per purpose (timestamped, source api)",
    responses=responses(400, 404, 415, 503),
)
def put_consent(customerId: CustomerId, decisions: ConsentRequest) -> dict[str, Any]:  # noqa: N803
    metrics.add_metric(name="ConsentChanges", unit=MetricUnit.Count, value=1)
    now, (profiles, store, pepper) = datetime.now(UTC), privacy()
    chosen = decisions.model_dump(exclude_none=True)
    profile = record_consent(customerId, chosen, profiles, store, pepper, now, actor())
    return {"customerId": profile.customer_id, "consent": profile.public_view(now, settings().base_currency)["consent"]}


@app.delete(
    "/v1/customers/<customerId>",
    summary="Erase everything held about the customer; later events and imports for them are dropped",
    responses=responses(400, 404, 503),
)
def delete_customer(customerId: CustomerId) -> Receipt:  # noqa: N803
    profiles, store, pepper = privacy()
    files = SqsWorkQueue(settings().import_queue_url)
    receipt = erase_customer(customerId, profiles, store, pepper, datetime.now(UTC), actor(), files)
    metrics.add_metric(name="CustomersErased", unit=MetricUnit.Count, value=1)
    return receipt


@app.get(
    "/v1/customers/<customerId>/export",
    summary="Everything held about the customer, as JSON (the export is audited)",
    responses=responses(400, 404, 503),
)
def get_export(customerId: CustomerId) -> dict[str, Any]:  # noqa: N803
    profiles, store, pepper = privacy()
    return export_customer(customerId, profiles, store, pepper, datetime.now(UTC), actor())


@app.get(
    "/v1/customers/<customerId>/audit",
    summary="The customer's audit trail (consent changes, exports, erasure), also after erasure",
    responses=responses(400, 503),
)
def get_audit(customerId: CustomerId) -> list[AuditEntry]:  # noqa: N803
    profiles, store, pepper = privacy()
    return customer_audit(customerId, profiles, store, pepper)


@cache
def privacy() -> tuple[DynamoProfileRepository, DynamoPrivacy, str]:
    """Profiles, the suppression list and audit trail, and the pepper ids are hashed with."""
    return (
        adapters()[0],
        DynamoPrivacy(settings().profiles_table),
        RotatingSecret(settings().pii_pepper_name).values()[0],
    )


def actor() -> str:
    """Who is asking: the API key's id, as API Gateway reports it (the key itself never)."""
    identity = app.current_event.request_context.identity
    return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"


@app.get(
    "/v1/customers/<customerId>/personalization",
    summary="What to show the customer, and why",
    responses=responses(400, 404, 503),
)
def get_personalization(customerId: CustomerId) -> Choice:  # noqa: N803
    profiles, _, _, mapping = adapters()
    choice = mapping.get(datetime.now(UTC)).choose(get_profile(customerId, profiles))
    name = "Personalized" if choice.personalized else "NotPersonalized"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return choice


@app.get(
    "/v1/segments",
    summary="Every segment with its definition, size and model version",
    responses=responses(503),
)
def get_segments() -> SegmentList:
    profiles, model, rules, _ = adapters()
    now = datetime.now(UTC)
    return list_segments(model.spec(now), rules.get(now), profiles)


@app.get(
    "/v1/segments/<segmentId>/customers",
    summary="A segment's members, a page at a time",
    responses=responses(400, 404, 503),
)
def get_members(
    segmentId: Annotated[str, Path(max_length=256, description="as GET /v1/segments lists it, e.g. tier:high-value")],  # noqa: N803
    cursor: Annotated[str | None, Query(max_length=2048, description="nextCursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MembersPage:
    profiles, model, rules, _ = adapters()
    now = datetime.now(UTC)
    return page(segmentId, model.spec(now), rules.get(now), profiles, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return not_json(event) or app.resolve(event, context)
