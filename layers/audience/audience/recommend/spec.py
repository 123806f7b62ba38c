"""A recommendation model as plain JSON, and scoring one customer from it in plain Python.

Each product keeps its nearest neighbours (the ``NEIGHBOURS`` heaviest weights of the fitted
item-to-item model); a customer's score for a product is the sum of the weights from the
products they interacted with, and the reason is the product that contributed most. Customers
with nothing to go on get their segment's most popular products, then everyone's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

NEIGHBOURS = 50


class Recommendation(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: str
    score: float
    reason: str


class RecommenderSpec(BaseModel):
    """What the retrain stores as ``models/<version>/recommender.json``."""

    model_config = ConfigDict(frozen=True)

    version: str
    kind: str = Field(description="the item model that won offline: cosine or ease")
    neighbours: dict[str, list[tuple[str, float]]] = Field(description="product -> its heaviest neighbours")
    popular: list[str] = Field(description="the most bought products, most first")
    popular_in: dict[str, list[str]] = Field(default_factory=dict, description="per segment name")
    names: dict[str, str] = Field(default_factory=dict, description="product -> its name")
    categories: dict[str, str] = Field(default_factory=dict, description="product -> its category")

    def recommend(
        self, interactions: Mapping[str, float], n: int = 10, segment: str | None = None,
        exclude: frozenset[str] = frozenset(), category: str | None = None,
    ) -> tuple[list[Recommendation], bool]:  # fmt: skip
        """The top ``n`` (of ``category`` only, when given) for a customer whose ``interactions``
        weigh each product they touched; and whether they were personalized (False: a popular list)."""

        def allowed(product: str) -> bool:
            return product not in exclude and (category is None or self.categories.get(product) == category)

        scores: dict[str, float] = defaultdict(float)
        best: dict[str, tuple[float, str]] = {}
        for product, weight in interactions.items():
            for neighbour, similarity in self.neighbours.get(product, ()):
                contribution = weight * similarity
                scores[neighbour] += contribution
                if contribution > best.get(neighbour, (0.0, ""))[0]:
                    best[neighbour] = (contribution, product)
        ranked = sorted((p for p in scores if scores[p] > 0 and allowed(p)), key=lambda p: (-scores[p], p))
        found = [Recommendation(product_id=p, score=round(scores[p], 6), reason=f"bought with {self.name(best[p][1])}")
                 for p in ranked[:n]]  # fmt: skip
        personalized = bool(found)
        taken = {r.product_id for r in found}
        fallbacks = [(self.popular_in.get(segment or "", []), f"popular in {segment}"), (self.popular, "popular")]
        for products, reason in fallbacks:
            for product in products:
                if len(found) >= n:
                    return found, personalized
                if product not in taken and allowed(product):
                    found.append(Recommendation(product_id=product, score=0.0, reason=reason))
                    taken.add(product)
        return found, personalized

    def name(self, product: str) -> str:
        return self.names.get(product, product)
