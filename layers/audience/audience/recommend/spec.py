"""A recommendation model as plain JSON, and scoring one customer from it in plain Python.

Each product keeps its nearest neighbours (the ``NEIGHBOURS`` heaviest weights of the fitted
item-to-item model); a customer's item score for a product is the sum of the weights from the
products they interacted with, and the reason is the product that contributed most. A blended
model adds the customer's own repeat signal (their time-decayed purchase count of the product,
times the root of how often the product is bought again by those who bought it: some products
are bought once, some every month): ``repeat_weight`` times it over the customer's largest, plus
the rest times the item score over the customer's largest; the reason is the larger part's.
Customers with nothing to go on get their segment's most popular products, then everyone's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

NEIGHBOURS = 50
UNKNOWN_RATE = 0.5  # the repeat rate of a product nobody was seen buying (smoothed: (0 + 1) / (0 + 2))


class Recommendation(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: str
    score: float
    reason: str


class RecommenderSpec(BaseModel):
    """What the retrain stores as ``models/<version>/recommender.json``."""

    model_config = ConfigDict(frozen=True)

    version: str
    kind: str = Field(description="the item model that won offline (cosine or ease); popular: none yet")
    neighbours: dict[str, list[tuple[str, float]]] = Field(description="product -> its heaviest neighbours")
    popular: list[str] = Field(description="the most bought products, most first")
    popular_in: dict[str, list[str]] = Field(default_factory=dict, description="per segment name")
    names: dict[str, str] = Field(default_factory=dict, description="product -> its name")
    categories: dict[str, str] = Field(default_factory=dict, description="product -> its category")
    repeat_weight: float = Field(default=0.0, ge=0.0, le=1.0, description="the repeat signal's share (0: none)")
    repeat_rates: dict[str, float] = Field(
        default_factory=dict, description="product -> the share of its buyers who bought it again (smoothed)"
    )

    def blended(self, weight: float) -> RecommenderSpec:
        return self.model_copy(update={"repeat_weight": weight})

    def recommend(
        self, interactions: Mapping[str, float], n: int = 10, segment: str | None = None,
        exclude: frozenset[str] = frozenset(), category: str | None = None,
        repeat: Mapping[str, tuple[float, str]] | None = None,
    ) -> tuple[list[Recommendation], bool]:  # fmt: skip
        """The top ``n`` (of ``category`` only, when given) for a customer whose ``interactions``
        weigh each product they touched and whose ``repeat`` gives each product they bought its
        repeat signal and the reason to say; and whether they were personalized (False: a popular list)."""

        def allowed(product: str) -> bool:
            return product not in exclude and (category is None or self.categories.get(product) == category)

        items: dict[str, float] = defaultdict(float)
        best: dict[str, tuple[float, str]] = {}
        for product, weight in interactions.items():
            for neighbour, similarity in self.neighbours.get(product, ()):
                contribution = weight * similarity
                items[neighbour] += contribution
                if contribution > best.get(neighbour, (0.0, ""))[0]:
                    best[neighbour] = (contribution, product)
        rate = self.repeat_rates.get
        own = {p: r * rate(p, UNKNOWN_RATE) ** 0.5 for p, (r, _) in (repeat or {}).items() if r > 0}
        own = own if self.repeat_weight else {}
        top_item, top_own = max(items.values(), default=0.0), max(own.values(), default=0.0)
        share = self.repeat_weight
        parts = {p: ((1 - share) * items.get(p, 0.0) / (top_item or 1), share * own.get(p, 0.0) / (top_own or 1))
                 for p in items.keys() | own.keys()}  # fmt: skip
        scores = {p: item + mine for p, (item, mine) in parts.items() if item + mine > 0 and allowed(p)}
        ranked = sorted(scores, key=lambda p: (-scores[p], p))[:n]

        def why(product: str) -> str:
            item, mine = parts[product]
            return (repeat or {})[product][1] if mine > item else f"bought with {self.name(best[product][1])}"

        scale = 1.0 if self.repeat_weight else top_item  # (an item model alone: its summed weights)
        found = [Recommendation(product_id=p, score=round(scores[p] * scale, 6), reason=why(p)) for p in ranked]
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
