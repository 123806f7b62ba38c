"""Learned segments on real data beside the notebook pipeline, under one protocol.

The notebook pipeline is what analysts run today: buyers' recency, frequency and spend,
log1p, standardised, k-means with k chosen by silhouette. Ours is the retrain's
(``segmentation/training.py``): ranks among buyers, k the most segments that stay stable. Both
are scored the same way on the same buyers: silhouette in their own space, the smallest
segment's share, and stability (mean and worst adjusted Rand index of refits, transform
included, on bootstrap resamples against the fit on all of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from audience.segmentation.training import RFM_COLUMNS, Matrix, TrainingConfig, buyers, model, model_space


def notebook(k: int, config: TrainingConfig, seed: int) -> Pipeline:
    return make_pipeline(
        FunctionTransformer(lambda x: np.log1p(np.clip(x[:, RFM_COLUMNS], 0, None))),
        StandardScaler(),
        KMeans(n_clusters=k, n_init=config.n_init, random_state=seed),
    )


def scores(make: Any, x: Matrix, k: int, config: TrainingConfig) -> dict[str, float]:
    reference = make(k, config, config.seed).fit(x)
    labels = reference.predict(x)
    space = model_space(reference, x)
    rng = np.random.default_rng(config.seed + k)
    agreement = []
    for r in range(config.bootstrap_rounds):
        refit = make(k, config, config.seed + r + 1).fit(x[rng.integers(0, len(x), len(x))])
        agreement.append(adjusted_rand_score(labels, refit.predict(x)))
    rows = np.random.default_rng(config.seed).choice(len(x), min(len(x), config.silhouette_sample), replace=False)
    return {
        "k": k,
        "silhouette": float(silhouette_score(space[rows], labels[rows])),
        "stability": float(np.mean(agreement)),
        "worst": float(np.min(agreement)),
        "smallest": float(np.bincount(labels, minlength=k).min() / len(labels)),
    }


def compare(x: Matrix, config: TrainingConfig | None = None) -> dict[str, list[dict[str, float]]]:
    """Every k of ``config.k_range`` (and up to 10 for the notebook), for both pipelines."""
    config = config or TrainingConfig()
    bought = x[buyers(x)]
    ours = lambda k, c, seed: model(k, c, seed)  # noqa: E731
    return {
        "notebook (log1p RFM, standardised, k-means)": [scores(notebook, bought, k, config) for k in range(2, 11)],
        "ranks of RFM among buyers (the retrain's)": [
            scores(ours, bought, k, config) for k in range(config.k_range[0], config.k_range[1] + 1)
        ],
    }


def report(table: dict[str, list[dict[str, float]]]) -> None:
    print(f"   {'pipeline':<44} {'k':>3} {'silhouette':>10} {'stability':>9} {'worst':>6} {'smallest':>8}")
    for name, rows in table.items():
        best = max(rows, key=lambda r: r["silhouette"])
        for r in rows:
            mark = " <- best silhouette" if r is best else ""
            print(f"   {name:<44} {r['k']:>3} {r['silhouette']:>10.3f} {r['stability']:>9.3f} {r['worst']:>6.3f}"
                  f" {r['smallest']:>8.1%}{mark}")  # fmt: skip
