"""Recommendations served by the read API from the model in force (fitted by the retrain
function: ``services.recommender_fit``). Serving weighs what the customer did (a purchase 1, a
cart add 0.5, a view 0.25) as of the request: a product viewed a second ago changes the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.profile import Profile, Touch
from audience.recommend.spec import RecommenderSpec

logger = logging.getLogger(__name__)

WEIGHTS = (1.0, 0.5, 0.25)  # a purchase, a cart add, a view


def interactions(products: Mapping[str, Touch]) -> dict[str, float]:
    """How much each product the customer touched counts."""
    return {p: WEIGHTS[0] if t.purchases else WEIGHTS[1] if t.adds else WEIGHTS[2] for p, t in products.items()}


class RecommendedItem(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    product_id: str = Field(alias="productId")
    name: str | None
    category: str | None
    score: float = Field(description="summed item-model weights (0 for a popular fill)")
    reason: str = Field(description='"bought with <product>", "popular in <segment>" or "popular"')


class Recommendations(BaseModel):
    """``GET /v1/customers/{customerId}/recommendations``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    model_version: str | None = Field(alias="modelVersion", description="none before a model is fitted")
    personalized: bool = Field(description="false: a popular list (no consent, or nothing to go on)")
    items: list[RecommendedItem]


def recommend(
    profile: Profile, spec: RecommenderSpec | None, n: int, category: str | None = None, exclude_purchased: bool = False
) -> Recommendations:
    """The customer's recommendations as of their profile; without consent to personalization,
    the popular list (marked so)."""
    if spec is None:
        return Recommendations(customer_id=profile.customer_id, model_version=None, personalized=False, items=[])
    allowed = profile.personalization_allowed
    touched = interactions(profile.products) if allowed else {}
    segment = profile.segments.name if allowed and profile.segments else None
    bought = frozenset(p for p, t in profile.products.items() if t.purchases) if exclude_purchased else frozenset()
    found, personalized = spec.recommend(touched, n, segment, bought, category)
    items = [RecommendedItem(product_id=r.product_id, name=spec.names.get(r.product_id),
                             category=spec.categories.get(r.product_id), score=r.score, reason=r.reason)
             for r in found]  # fmt: skip
    return Recommendations(customer_id=profile.customer_id, model_version=spec.version,
                           personalized=personalized and allowed, items=items)  # fmt: skip
