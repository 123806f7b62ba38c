"""Item-to-item models fitted on who bought what, exported as ``RecommenderSpec``.

Interactions are binary (a customer bought a product at least once: in retail, what is bought
together matters more than how many of it). Candidates:
- ``cosine``: the co-occurrence of two products over the square root of their counts;
- ``ease``: Steck's EASE (2019), the closed-form linear item model
  B = I - P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal.
Each exports its ``NEIGHBOURS`` heaviest weights per product, so the served model is small.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from audience.recommend.spec import NEIGHBOURS, RecommenderSpec

Matrix = NDArray[np.float64]
EASE_LAMBDA = 250.0


@dataclass(frozen=True)
class Interactions:
    """Customers by products, 1 where the customer bought the product."""

    customers: list[str]
    products: list[str]
    matrix: sparse.csr_matrix

    @classmethod
    def of(cls, pairs: Sequence[tuple[str, str]], products: Sequence[str] | None = None) -> Interactions:
        customers = sorted({c for c, _ in pairs})
        catalogue = list(products) if products is not None else sorted({p for _, p in pairs})
        row, column = {c: i for i, c in enumerate(customers)}, {p: j for j, p in enumerate(catalogue)}
        kept = [(row[c], column[p]) for c, p in pairs if p in column]
        rows, columns = (np.array(v, dtype=np.int64) for v in zip(*kept, strict=True)) if kept else (np.empty(0),) * 2
        matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(customers), len(catalogue)))
        matrix.data[:] = 1.0  # (a pair seen twice counts once)
        return cls(customers, catalogue, matrix)


def cosine(x: sparse.csr_matrix) -> Matrix:
    co: Matrix = (x.T @ x).toarray()
    counts = np.sqrt(np.diag(co))
    with np.errstate(divide="ignore", invalid="ignore"):
        weights: Matrix = np.nan_to_num(co / counts[:, None] / counts[None, :])
    np.fill_diagonal(weights, 0.0)
    return weights


def ease(x: sparse.csr_matrix, penalty: float = EASE_LAMBDA) -> Matrix:
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += penalty
    inverse = np.linalg.inv(gram)
    weights: Matrix = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


FITS = {"cosine": cosine, "ease": ease}


def neighbours(weights: Matrix, products: list[str], k: int = NEIGHBOURS) -> dict[str, list[tuple[str, float]]]:
    """Per product (a row), its ``k`` heaviest positive weights to others."""
    k = min(k, weights.shape[1])
    top = np.argpartition(-weights, k - 1, axis=1)[:, :k] if k else np.empty((len(products), 0), dtype=int)
    found = {}
    for i, columns in enumerate(top):
        kept = sorted(((products[j], float(weights[i, j])) for j in columns if weights[i, j] > 0), key=lambda t: -t[1])
        if kept:
            found[products[i]] = [(p, round(w, 6)) for p, w in kept]
    return found


def popular(
    x: sparse.csr_matrix, products: list[str], rows: NDArray[np.bool_] | None = None, n: int = 100
) -> list[str]:
    counts = np.asarray((x if rows is None else x[rows]).sum(axis=0)).ravel()
    order = np.lexsort((np.arange(len(products)), -counts))[:n]
    return [products[j] for j in order if counts[j] > 0]


def repeat_rates(counts: Mapping[str, Mapping[str, int]], products: Sequence[str]) -> dict[str, float]:
    """Per product, the share of its buyers who bought it in two orders or more, smoothed
    (Laplace: (again + 1) / (buyers + 2)), from ``counts``: customer -> product -> orders."""
    buyers: Counter[str] = Counter()
    again: Counter[str] = Counter()
    for bought in counts.values():
        for product, orders in bought.items():
            buyers[product] += 1
            again[product] += orders >= 2
    return {p: round((again[p] + 1) / (buyers[p] + 2), 4) for p in products if buyers[p]}


def fit(
    interactions: Interactions, kind: str, version: str, segments: dict[str, str] | None = None,
    names: dict[str, str] | None = None, categories: dict[str, str] | None = None,
    counts: Mapping[str, Mapping[str, int]] | None = None,
) -> RecommenderSpec:  # fmt: skip
    """The ``kind`` model on ``interactions``; ``segments``: customer -> segment name (the
    popular lists per segment); ``names`` and ``categories``: the catalogue's, kept for the
    modelled products; ``counts`` (customer -> product -> orders): the products' repeat rates."""
    x, products = interactions.matrix, interactions.products
    modelled = set(products)
    by_segment: dict[str, list[str]] = {}
    if segments:
        labels = np.array([segments.get(c, "") for c in interactions.customers])
        by_segment = {s: popular(x, products, labels == s) for s in sorted(set(labels) - {""})}
    return RecommenderSpec(version=version, kind=kind, neighbours=neighbours(FITS[kind](x), products),
                           popular=popular(x, products), popular_in=by_segment,
                           names={p: n for p, n in (names or {}).items() if p in modelled},
                           categories={p: c for p, c in (categories or {}).items() if p in modelled},
                           repeat_rates=repeat_rates(counts or {}, products))  # fmt: skip
