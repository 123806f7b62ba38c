"""The recommendation model, fitted and judged by the retrain function: each item model, alone
and blended with the customer's own repeat signal, is judged offline on each customer's latest
purchase (``recommend.evaluation.leave_latest_out``) beside popularity, P-TopFreq, GP-TopFreq and
TIFU-KNN (``recommend.judging``). The blend's weight is tuned on a third of the customers and
everything is judged on the other two thirds (at most ``MAX_TUNING`` and ``MAX_JUDGED`` of
them). The best one is stored with its table; it goes live only when it beats every baseline
and the model in force on the same split. The judgement uses no segment labels: this retrain's
labels know the held-out purchases. (``services.recommendations`` serves it; this module loads
numpy, scipy and scikit-learn.)
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from audience.domain.profile import Touch
from audience.recommend.evaluation import leave_latest_out
from audience.recommend.judging import judge
from audience.recommend.spec import RecommenderSpec
from audience.recommend.training import Interactions, fit
from audience.services.artifacts import Artifacts

logger = logging.getLogger(__name__)

MAX_CATALOGUE = 5_000  # products modelled, the most bought first (the item models are dense in them)
# customers the weight is tuned on (11 weights, 2 item models) and customers judged: what bounds
# the judgement's cost (ranked in Python, one customer at a time) however many customers there are
MAX_TUNING, MAX_JUDGED = 5_000, 20_000


def tuning(customer: str) -> bool:
    """The third of the customers the repeat weight is tuned on (stable across retrains)."""
    return _hash(customer) % 3 == 0


def _hash(customer: str) -> int:
    return zlib.crc32(customer.encode())


def _sample(customers: Iterable[str], n: int) -> set[str]:
    """At most ``n`` of ``customers``, the same ones every retrain."""
    return set(sorted(customers, key=lambda c: (_hash(c), c))[:n])


def fit_and_store(
    histories: Sequence[tuple[str, Mapping[str, Touch]]], segments: Mapping[str, str], version: str,
    artifacts: Artifacts, active: RecommenderSpec | None,
) -> dict[str, Any] | None:  # fmt: skip
    """Fit every candidate, judge them offline, store the best, make it live when it beats
    every baseline and ``active``; its metrics (None when nobody bought anything)."""
    buyers = Counter(p for _, products in histories for p, t in products.items() if t.purchases)
    if not buyers:
        return None
    catalogue = [p for p, _ in buyers.most_common(MAX_CATALOGUE)]
    split = leave_latest_out(histories)
    others = {"in force": active} if active is not None else {}
    tuned = _sample((c for c in split.truth if tuning(c)), MAX_TUNING)
    judged = _sample((c for c in split.truth if not tuning(c)), MAX_JUDGED)
    found = judge(split.only(judged.__contains__), split.only(tuned.__contains__), catalogue, others=others)
    best = found.table[found.best]["ndcg"]
    bar_name, bar = found.bar(tuple(others))
    promoted = best > bar
    pairs = [(c, p) for c, products in histories for p, t in products.items() if t.purchases]
    known = artifacts.recommenders.catalogue()
    names = {p: str(k["name"]) for p, k in known.items() if k.get("name")}
    categories = {p: str(k["category"]) for p, k in known.items() if k.get("category")}
    counts = {c: {p: t.purchases for p, t in products.items() if t.purchases} for c, products in histories}
    spec = fit(Interactions.of(pairs, catalogue), found.kind, version, dict(segments), names, categories, counts)
    spec = spec.blended(found.repeat_weight)
    why = f"{found.best}: NDCG@10 {best:.3f} vs {bar:.3f} ({bar_name}, the strongest baseline or the model in force)"
    metrics = {"version": version, "kind": found.kind, "repeatWeight": found.repeat_weight, "chosen": found.best,
               "products": len(catalogue), "customers": len(histories),
               "heldOut": found.table[found.best]["customers"], "offline": found.table, "promoted": promoted,
               "why": why}  # fmt: skip
    artifacts.recommenders.save(spec, metrics, promoted)
    logger.info("recommender %s", metrics["why"], extra={"promoted": promoted})
    return metrics
