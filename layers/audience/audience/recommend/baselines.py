"""The next-basket baselines every recommender is judged against (Li et al., "A Next Basket
Recommendation Reality Check", TOIS 2023):

- P-TopFreq: the customer's own most often bought products;
- GP-TopFreq: the same, then the most popular products they did not buy;
- TIFU-KNN (Hu et al., SIGIR 2020): a customer is a vector of time-decayed item frequencies;
  the prediction is ``alpha`` times their own vector plus the rest times the mean vector of
  their ``k`` nearest customers (cosine). From baskets (``tifu_vectors``): baskets in groups of
  ``group_size``, decayed by ``basket_decay`` within a group and ``group_decay`` across groups,
  as in the paper; from profiles (the retrain): the decayed purchase count each keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse


def p_topfreq(frequency: Mapping[str, float], k: int = 10, recency: Mapping[str, float] | None = None) -> list[str]:
    """The ``k`` products bought most often (ties: the larger ``recency``, then the product id)."""
    later = recency or {}
    return sorted(frequency, key=lambda p: (-frequency[p], -later.get(p, 0.0), p))[:k]


def gp_topfreq(
    frequency: Mapping[str, float], popular: Sequence[str], k: int = 10, recency: Mapping[str, float] | None = None
) -> list[str]:
    """``p_topfreq``, filled up to ``k`` with ``popular`` products not in it."""
    own = p_topfreq(frequency, k, recency)
    return own + [p for p in popular if p not in frequency][: k - len(own)]


def tifu_vectors(
    baskets: Sequence[frozenset[str]], group_size: int = 7, basket_decay: float = 0.9, group_decay: float = 0.7
) -> dict[str, float]:
    """A customer's TIFU vector from their baskets, oldest first: the baskets cut into groups of
    ``group_size`` from the newest back (the oldest group may be smaller); a group is the mean of
    its baskets weighted ``basket_decay ** (baskets after it in the group)``, the vector the mean
    of the groups weighted ``group_decay ** (groups after it)``."""
    groups = [baskets[max(end - group_size, 0) : end] for end in range(len(baskets), 0, -group_size)][::-1]
    vector: dict[str, float] = {}
    for g, group in enumerate(groups):
        group_weight = group_decay ** (len(groups) - 1 - g) / len(groups)
        for b, basket in enumerate(group):
            weight = group_weight * basket_decay ** (len(group) - 1 - b) / len(group)
            for product in basket:
                vector[product] = vector.get(product, 0.0) + weight
    return vector


@dataclass(frozen=True)
class TifuKnn:
    """TIFU-KNN's ranking over customers' vectors (a customer's neighbours come from ``pool``
    customers at most: the cost is the judged customers times the pool)."""

    neighbours: int = 300
    alpha: float = 0.7
    pool: int = 20_000

    def ranker(self, vectors: Mapping[str, Mapping[str, float]], judged: Sequence[str], k: int = 10
               ) -> Callable[[str], list[str]]:  # fmt: skip
        """Each of the ``judged`` customers' top ``k`` (a customer without a vector: nothing)."""
        customers = sorted(vectors)
        products = sorted({p for v in vectors.values() for p in v})
        column = {p: j for j, p in enumerate(products)}
        row = {c: i for i, c in enumerate(customers)}
        entries = [(row[c], column[p], w) for c in customers for p, w in vectors[c].items()]
        rows, columns, weights = zip(*entries, strict=True) if entries else ((), (), ())
        x = sparse.csr_matrix((weights, (rows, columns)), shape=(len(customers), len(products)))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        unit = sparse.diags(1 / np.where(norms > 0, norms, 1)) @ x
        pool = np.random.default_rng(0).permutation(len(customers))[: self.pool]
        wanted = [c for c in judged if c in row]
        found: dict[str, list[str]] = {}
        for start in range(0, len(wanted), 1_000):
            chunk = np.array([row[c] for c in wanted[start : start + 1_000]], dtype=np.int64)
            similarity = (unit[chunk] @ unit[pool].T).toarray()
            similarity[pool[None, :] == chunk[:, None]] = -np.inf  # not one's own neighbour
            count = min(self.neighbours, len(pool) - 1)
            nearest = np.argpartition(-similarity, count - 1, axis=1)[:, :count] if count > 0 else None
            for i, customer in enumerate(chunk):
                score: NDArray[np.float64] = self.alpha * x[customer].toarray().ravel()
                if nearest is not None:
                    score += (1 - self.alpha) * np.asarray(x[pool[nearest[i]]].mean(axis=0)).ravel()
                best = np.lexsort((np.arange(len(products)), -score))[:k]
                found[customers[customer]] = [products[j] for j in best if score[j] > 0]
        return lambda c: found.get(c, [])
