"""The recommendation model, fitted and judged by the retrain function: each item model is fitted
on who bought what and judged offline against global popularity on each customer's latest
purchases (``recommend.evaluation.leave_latest_out``). The best one is stored with its table; it
goes live only when it beats popularity and the model in force on the same split.
(``services.recommendations`` serves it; this module loads numpy, scipy and scikit-learn.)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from audience.domain.profile import Touch
from audience.recommend.evaluation import leave_latest_out, scores, top
from audience.recommend.spec import RecommenderSpec
from audience.recommend.training import FITS, Interactions, fit
from audience.services.artifacts import Artifacts

logger = logging.getLogger(__name__)

MAX_CATALOGUE = 5_000  # products modelled, the most bought first (the item models are dense in them)


def fit_and_store(
    histories: Sequence[tuple[str, Mapping[str, Touch]]], segments: Mapping[str, str], version: str,
    artifacts: Artifacts, active: RecommenderSpec | None,
) -> dict[str, Any] | None:  # fmt: skip
    """Fit every candidate, judge them offline, store the best, make it live when it beats
    popularity and ``active``; its metrics (None when nobody bought anything)."""
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
