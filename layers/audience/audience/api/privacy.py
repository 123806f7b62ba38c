"""A customer's consent, export, audit trail and erasure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audience.api.customers import CustomerId, metrics
from audience.api.edge import responses
from audience.api.views import ConsentView, Export
from audience.bootstrap import ProfilesApiDeps
from audience.domain.privacy import AuditEntry, Receipt
from audience.observability import count
from audience.services.privacy import customer_audit, erase_customer, export_customer, record_consent


class ConsentRequest(BaseModel):
    """Any of the purposes; the others keep their state."""

    model_config = ConfigDict(extra="forbid")

    analytics: bool | None = None
    personalization: bool | None = None
    marketing: bool | None = None
    source: Literal["api", "console"] = Field(
        default="api", description="where the decision was taken: the console says so (audited)"
    )

    @model_validator(mode="after")
    def _something(self) -> ConsentRequest:
        if not self.decisions():
            raise ValueError("give at least one of analytics, personalization, marketing")
        return self

    def decisions(self) -> dict[str, bool]:
        return self.model_dump(exclude_none=True, exclude={"source"})


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    def actor() -> str:
        """Who is asking: the API key's id, as API Gateway reports it (the key itself never)."""
        identity = cast(APIGatewayProxyEvent, routes.current_event).request_context.identity
        return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"

    @routes.put(
        "/v1/customers/<customerId>/consent",
        summary="Record the customer's consent per purpose (timestamped, source api or console)",
        responses=responses(400, 404, 415, 503),
    )
    def put_consent(customerId: CustomerId, decisions: ConsentRequest) -> ConsentView:  # noqa: N803
        d, now = deps(), datetime.now(UTC)
        count(metrics, ConsentChanges=1)
        profile = record_consent(customerId, decisions.decisions(), d.profiles, d.privacy, d.pepper, now, actor(),
                                 decisions.source)  # fmt: skip
        return ConsentView.of(profile)

    @routes.delete(
        "/v1/customers/<customerId>",
        summary="Erase everything held about the customer; later events and imports for them are dropped",
        responses=responses(400, 404, 503),
    )
    def delete_customer(customerId: CustomerId) -> Receipt:  # noqa: N803
        d = deps()
        receipt = erase_customer(customerId, d.profiles, d.privacy, d.pepper, datetime.now(UTC), actor(), d.scrubbing)
        count(metrics, CustomersErased=1)
        return receipt

    @routes.get(
        "/v1/customers/<customerId>/export",
        summary="Everything held about the customer, as JSON (the export is audited)",
        responses=responses(400, 404, 503),
    )
    def get_export(customerId: CustomerId) -> Export:  # noqa: N803
        d = deps()
        return Export.model_validate(export_customer(customerId, d.profiles, d.privacy, d.pepper, datetime.now(UTC),
                                                     actor()))  # fmt: skip

    @routes.get(
        "/v1/customers/<customerId>/audit",
        summary="The customer's audit trail (consent changes, exports, erasure), also after erasure",
        responses=responses(400, 503),
    )
    def get_audit(customerId: CustomerId) -> list[AuditEntry]:  # noqa: N803
        d = deps()
        return customer_audit(customerId, d.profiles, d.privacy, d.pepper)

    return routes
