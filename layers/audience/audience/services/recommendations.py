"""Recommendations served by the read API from the model in force (fitted by the retrain
function: ``services.recommender_fit``). Serving weighs what the customer did (a purchase 1, a
cart add 0.5, a view 0.25) as of the request: a product viewed a second ago changes the answer;
a blended model adds what they buy again, by their decayed purchase counts as of the request.
Before a model is fitted: the customer's own purchases, then the products imports described, by
the orders that held them (``Recommenders.starter``). No heavy work per request: a pass over
the profile's (at most 200) products and their neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.profile import Profile, Touch
from audience.recommend.spec import RecommenderSpec

logger = logging.getLogger(__name__)

WEIGHTS = (1.0, 0.5, 0.25)  # a purchase, a cart add, a view
NOTHING_FITTED = RecommenderSpec(version="", kind="popular", neighbours={}, popular=[], repeat_weight=1.0)


def interactions(products: Mapping[str, Touch]) -> dict[str, float]:
    """How much each product the customer touched counts."""
    return {p: WEIGHTS[0] if t.purchases else WEIGHTS[1] if t.adds else WEIGHTS[2] for p, t in products.items()}


def habit(touch: Touch) -> str:
    """Why a product the customer bought comes back, in their words: how often they buy it."""
    if touch.purchases >= 3 and touch.first_bought and touch.bought:
        days = (touch.bought - touch.first_bought).total_seconds() / 86_400 / (touch.purchases - 1)
        for most, every in ((1.5, "day"), (10, "week"), (20, "two weeks"), (45, "month")):
            if days <= most:
                return f"you buy this every {every}"
        return f"you buy this every {round(days / 30.4)} months" if days < 300 else "you buy this every year"
    return {1: "you bought this before", 2: "you bought this twice"}.get(
        touch.purchases, f"you bought this {touch.purchases} times"
    )


def repeats(products: Mapping[str, Touch], now: datetime) -> dict[str, tuple[float, str]]:
    """Each product the customer bought: their decayed purchase count as of ``now``, and why."""
    return {p: (t.repeat_at(now), habit(t)) for p, t in products.items() if t.purchases}


class RecommendedItem(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    product_id: str = Field(alias="productId")
    name: str | None
    category: str | None
    score: float = Field(description="the blended score, or summed item-model weights (0 for a popular fill)")
    reason: str = Field(description='"you buy this every month", "bought with <product>", "popular in <segment>", '
                                    '"popular"')  # fmt: skip


class Recommendations(BaseModel):
    """``GET /v1/customers/{customerId}/recommendations``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    model_version: str | None = Field(alias="modelVersion", description="none before a model is fitted")
    personalized: bool = Field(description="false: a popular list (no consent, or nothing to go on)")
    items: list[RecommendedItem]


def recommend(
    profile: Profile, spec: RecommenderSpec | None, n: int, category: str | None = None,
    exclude_purchased: bool = False, now: datetime | None = None,
) -> Recommendations:  # fmt: skip
    """The customer's recommendations as of their profile (and ``now``: the repeat signal's
    age; default the profile's last event); without consent to personalization, the popular
    list (marked so). ``exclude_purchased``: only products new to the customer."""
    spec = spec or NOTHING_FITTED
    allowed = profile.personalization_allowed
    touched = interactions(profile.products) if allowed else {}
    at = now or profile.last_seen
    again = repeats(profile.products, at) if allowed and at and spec.repeat_weight else {}
    segment = profile.segments.name if allowed and profile.segments else None
    bought = frozenset(p for p, t in profile.products.items() if t.purchases) if exclude_purchased else frozenset()
    found, personalized = spec.recommend(touched, n, segment, bought, category, again)
    items = [RecommendedItem(product_id=r.product_id, name=spec.names.get(r.product_id),
                             category=spec.categories.get(r.product_id), score=r.score, reason=r.reason)
             for r in found]  # fmt: skip
    return Recommendations(customer_id=profile.customer_id, model_version=spec.version or None,
                           personalized=personalized and allowed, items=items)  # fmt: skip
