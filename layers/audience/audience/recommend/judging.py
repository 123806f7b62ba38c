"""Which recommender to serve: every candidate beside the next-basket baselines on one split.

The candidates are the item models (``training.FITS``) alone and blended with the customer's own
repeat signal, its weight tuned on a separate ``tuning`` split (never the judged one); the
baselines are global popularity, P-TopFreq, GP-TopFreq (their ties broken by recency: a
stronger baseline than by product id) and TIFU-KNN. The best candidate by
NDCG@10 is the one to serve, when it beats every baseline (and the model in force: the caller's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audience.recommend.baselines import TifuKnn, gp_topfreq, p_topfreq
from audience.recommend.evaluation import Split, scores, top, tune_repeat_weight
from audience.recommend.spec import RecommenderSpec
from audience.recommend.training import FITS, Interactions, fit

BASELINES = ("global popularity", "P-TopFreq", "GP-TopFreq", "TIFU-KNN")


@dataclass(frozen=True)
class Judged:
    table: dict[str, dict[str, Any]]  # name -> its scores (and, for a blend, its weight and the tuning's)
    best: str  # the candidate to serve
    kind: str  # its item model
    repeat_weight: float

    def bar(self, others: Sequence[str] = ()) -> tuple[str, float]:
        """The strongest of the baselines (and ``others``: rows the caller added) and its NDCG@10."""
        name = max((*BASELINES, *others), key=lambda n: self.table[n]["ndcg"])
        return name, self.table[name]["ndcg"]


def judge(
    split: Split, tuning: Split, catalogue: Sequence[str], tifu: Mapping[str, Mapping[str, float]] | None = None,
    others: Mapping[str, RecommenderSpec] | None = None,
) -> Judged:  # fmt: skip
    """Every candidate and baseline judged on ``split`` over the ``catalogue`` modelled; the
    repeat weight tuned on ``tuning`` (its item models fitted on its own ``seen``); TIFU-KNN on the
    ``tifu`` vectors (default: the decayed purchase counts of ``split``); ``others`` judged too."""
    size = len(catalogue)

    def judged(spec: RecommenderSpec) -> dict[str, Any]:
        return scores(top(spec, split), split.truth, size, bought=split.history)

    table: dict[str, dict[str, Any]] = {}
    weights: dict[str, float] = {}
    interactions = Interactions.of(split.seen, catalogue)
    popular: list[str] = []
    for kind in FITS:
        item = fit(interactions, kind, "judged", counts=split.counts)
        popular = item.popular
        if tuning.seen is split.seen:
            tuned_on = item
        else:
            tuned_on = fit(Interactions.of(tuning.seen, catalogue), kind, "tuning", counts=tuning.counts)
        weights[kind], on_tuning = tune_repeat_weight(tuned_on, tuning)
        table[kind] = judged(item)
        table[f"{kind} + repeat"] = {**judged(item.blended(weights[kind])), "repeat_weight": weights[kind],
                                     "tuning_ndcg": {str(w): round(n, 4) for w, n in on_tuning.items()}}  # fmt: skip
    truth, bought = split.truth, split.history
    table["global popularity"] = scores(lambda c: popular[:10], truth, size, bought=bought)
    counts, recency = split.counts, split.repeat  # (ties between counts: the more recent first)
    table["P-TopFreq"] = scores(lambda c: p_topfreq(counts.get(c, {}), 10, recency.get(c)), truth, size, bought=bought)
    table["GP-TopFreq"] = scores(lambda c: gp_topfreq(counts.get(c, {}), popular, 10, recency.get(c)), truth, size,
                                 bought=bought)  # fmt: skip
    table["TIFU-KNN"] = scores(TifuKnn().ranker(tifu or split.repeat, list(truth)), truth, size, bought=bought)
    for name, spec in (others or {}).items():
        table[name] = judged(spec)
    best = max((n for n in table if n.split(" + ")[0] in FITS), key=lambda n: table[n]["ndcg"])
    kind = best.split(" + ")[0]
    return Judged(table, best, kind, weights[kind] if best.endswith("+ repeat") else 0.0)
