"""Recommendations: fitted and judged by the retrain function, served by the read API.

Training reads what profiles keep (per product: orders that held it, views, adds, last time),
fits each item model on who bought what, and judges it offline against global popularity on
each customer's latest purchases (``recommend.evaluation.leave_latest_out``). The best one is
stored as ``models/<version>/recommender.json`` with its table; it goes live
(``live/recommender.json``) only when it beats popularity and the model in force on the same
split. Serving weighs what the customer did (a purchase 1, a cart add 0.5, a view 0.25) as of
the request: a product viewed a second ago changes the answer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.profile import Profile, Touch
from audience.recommend.spec import RecommenderSpec
from audience.services.artifacts import Artifacts
from audience.services.scoring import LiveArtifact

logger = logging.getLogger(__name__)

WEIGHTS = (1.0, 0.5, 0.25)  # a purchase, a cart add, a view
MAX_CATALOGUE = 5_000  # products modelled, the most bought first (the item models are dense in them)
CATALOGUE_PREFIX = "catalogue/"  # what imports learned of products: id -> name, category, last price


class LiveRecommender(LiveArtifact[RecommenderSpec]):
    """The recommendation model in force."""

    KEY, MODEL = "live/recommender.json", RecommenderSpec


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


def fit_and_store(
    histories: Sequence[tuple[str, Mapping[str, Touch]]], segments: Mapping[str, str], version: str,
    artifacts: Artifacts, active: RecommenderSpec | None,
) -> dict[str, Any] | None:  # fmt: skip
    """Fit every candidate, judge them offline, store the best, make it live when it beats
    popularity and ``active``; its metrics (None when nobody bought anything)."""
    from audience.recommend.evaluation import leave_latest_out, scores, top
    from audience.recommend.training import FITS, Interactions, fit

    buyers = Counter(p for _, products in histories for p, t in products.items() if t.purchases)
    if not buyers:
        return None
    catalogue = [p for p, _ in buyers.most_common(MAX_CATALOGUE)]
    split = leave_latest_out((c, {p: (t.purchases, t.last) for p, t in products.items()}) for c, products in histories)
    held_out = Interactions.of(split.seen, catalogue)
    known = artifacts.recommenders.catalogue()
    names = {p: str(k["name"]) for p, k in known.items() if k.get("name")}

    def judged(spec: RecommenderSpec) -> dict[str, float]:
        return scores(top(spec, split.history, segments), split.truth, len(catalogue))

    candidates = {kind: fit(held_out, kind, version, dict(segments)) for kind in FITS}
    table = {kind: judged(spec) for kind, spec in candidates.items()}
    popular = candidates["cosine"].popular[:10]  # (every candidate holds the same popular list)
    table["global popularity"] = scores(lambda c: popular, split.truth, len(catalogue))
    if active is not None:
        table["in force"] = judged(active)
    best = max(FITS, key=lambda kind: table[kind]["ndcg"])
    bar = max(table["global popularity"]["ndcg"], table.get("in force", {}).get("ndcg", 0.0))
    promoted = table[best]["ndcg"] > bar
    pairs = [(c, p) for c, products in histories for p, t in products.items() if t.purchases]
    categories = {p: str(k["category"]) for p, k in known.items() if k.get("category")}
    spec = fit(Interactions.of(pairs, catalogue), best, version, dict(segments), names, categories)
    why = f"{best}: NDCG@10 {table[best]['ndcg']:.3f} vs {bar:.3f} (popularity, or the model in force)"
    metrics = {"version": version, "kind": best, "products": len(catalogue), "customers": len(histories),
               "heldOut": len(split.truth), "offline": table, "promoted": promoted, "why": why}  # fmt: skip
    artifacts.recommenders.save(spec, metrics, promoted)
    logger.info("recommender %s", metrics["why"], extra={"promoted": promoted})
    return metrics
