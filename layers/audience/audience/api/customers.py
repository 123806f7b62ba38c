"""``/v1/customers/{customerId}``: the profile and what to show the customer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import AfterValidator

from audience.api.edge import responses
from audience.api.views import CustomerMatches, CustomerView
from audience.bootstrap import ProfilesApiDeps
from audience.domain.errors import FieldError, InvalidInput
from audience.domain.personalization import Choice
from audience.observability import count
from audience.services.experiments import personalize
from audience.services.explain import Explanation, explain
from audience.services.profiles import get_profile, with_contact
from audience.services.recommendations import Recommendations, recommend
from audience.services.timeline import Timeline, timeline

metrics = Metrics()  # Powertools instances share one metric set: the handler flushes it
# API Gateway's REST proxy hands the function the path as sent (percent-encoded) and the resolver
# routes on it: the id is decoded here, so ids such as "ユーザー" or "a+b" read back.
CustomerId = Annotated[
    str, Path(min_length=1, max_length=768, description="any id the customer is known by"), AfterValidator(unquote)
]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    @routes.get(
        "/v1/customers",
        summary="The customers with an email or a phone, found through its keyed hash (never in clear)",
        description="Exactly one of `email` and `phone`; matched as identify stores it (trimmed, lower-cased). "
        "Cost: one query of a keys-only index, whatever the customer base.",
        responses=responses(400, 503),
    )
    def find_customers(
        email: Annotated[str | None, Query(min_length=3, max_length=320, description="an email address")] = None,
        phone: Annotated[str | None, Query(min_length=3, max_length=64, description="a phone number, as sent")] = None,
    ) -> CustomerMatches:
        if (email is None) == (phone is None):
            raise InvalidInput([FieldError("email", "give exactly one of email and phone")])
        d = deps()
        trait, value = ("email", email) if email is not None else ("phone", phone)
        count(metrics, ContactLookups=1)
        return CustomerMatches(customers=with_contact(trait, str(value), d.pepper, d.profiles))

    @routes.get(
        "/v1/customers/<customerId>",
        summary="A customer's profile, segments, scores, consent and last change",
        responses=responses(400, 404, 503),
    )
    def get_customer(customerId: CustomerId) -> CustomerView:  # noqa: N803 (the path parameter's name)
        d = deps()
        count(metrics, ProfileLookups=1)
        profile, now = get_profile(customerId, d.profiles), datetime.now(UTC)
        value = d.value.get(now)
        # the churn risk's drivers, by the model in force
        drivers = value.explain(profile, profile.predictions.as_of) if profile.predictions and value else []
        return CustomerView.of(profile, now, d.currency, drivers)

    @routes.get(
        "/v1/customers/<customerId>/explain",
        summary="Why the customer is where they are: features, distances, RFM, rules, predictions, moves",
        responses=responses(400, 404, 503),
    )
    def get_explanation(customerId: CustomerId) -> Explanation:  # noqa: N803
        d, now = deps(), datetime.now(UTC)
        profile = get_profile(customerId, d.profiles)
        return explain(profile, d.model.get(now), d.rules.get(now), d.value.get(now), now)

    @routes.get(
        "/v1/customers/<customerId>/timeline",
        summary="What the customer did and what moved them: orders, browsing, moves, exposures, consent; newest first",
        responses=responses(400, 404, 503),
    )
    def get_timeline(customerId: CustomerId) -> Timeline:  # noqa: N803
        d = deps()
        return timeline(get_profile(customerId, d.profiles), d.currency)

    @routes.get(
        "/v1/customers/<customerId>/recommendations",
        summary="Products for the customer, with reasons; a popular list without consent to personalization",
        responses=responses(400, 404, 503),
    )
    def get_recommendations(
        customerId: CustomerId,  # noqa: N803
        n: Annotated[int, Query(ge=1, le=100, description="how many")] = 10,
        category: Annotated[str | None, Query(min_length=1, max_length=200, description="only this category")] = None,
        excludePurchased: Annotated[bool, Query(description="leave out what the customer bought")] = False,  # noqa: N803
    ) -> Recommendations:
        d, now = deps(), datetime.now(UTC)
        profile = get_profile(customerId, d.profiles)
        found = recommend(profile, d.recommender.get(now), n, category, excludePurchased, now)
        count(metrics, **{"Recommended" if found.personalized else "RecommendedPopular": 1})
        return found

    @routes.get(
        "/v1/customers/<customerId>/personalization",
        summary="What to show the customer, and why",
        responses=responses(400, 404, 503),
    )
    def get_personalization(customerId: CustomerId) -> Choice:  # noqa: N803
        d, now = deps(), datetime.now(UTC)
        choice = personalize(customerId, d.profiles, d.content.get(now), d.experiments.get(now), now)
        count(metrics, **{"Personalized" if choice.personalized else "NotPersonalized": 1})
        return choice

    return routes
