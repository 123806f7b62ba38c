"""Fit a segmentation model: buyers clustered on the ranks of their recency, frequency and
spend; customers with no order in a segment of their own.

Each of R, F and M becomes the buyer's rank among buyers (0 to 1; scikit-learn's uniform
``QuantileTransformer``): ranks have no tails and no outliers to handle, ties (the many
one-order buyers) share one value, and every axis weighs the same. Prospects (no order) have
no recency or spend to rank and are not clustered: the last segment is theirs. Candidates are
k-means for each k from 4 to 8 (enough segments to act on, few enough to staff), fitted on a
sample; each is refitted on bootstrap resamples of it (transform included) and compared with
itself by the adjusted Rand index: its stability, mean and worst. Of the k whose segments are
all big enough and whose stability meets the bar (none that a refit would redraw), the best
separated (silhouette) wins; when none qualifies, the most stable. The final fit uses every
buyer, starting from the chosen candidate's centres.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer

from audience.domain.profile import Profile
from audience.segmentation.features import FEATURES, SKEWED, features
from audience.segmentation.spec import (
    LEARNED_ACTIONS,
    RF_SEGMENTS,
    Clusters,
    Rfm,
    SegmentSpec,
    Transform,
    learned_name,
)

Matrix = NDArray[np.float64]
RFM = ("recency_days", "frequency", "monetary")
RFM_COLUMNS = [FEATURES.index(name) for name in RFM]


@dataclass(frozen=True)
class TrainingConfig:
    k_range: tuple[int, int] = (4, 8)  # at least four segments to act on differently, at most eight to staff
    n_init: int = 6
    selection_sample: int = 5_000  # buyers the candidates are compared on
    silhouette_sample: int = 3_000
    bootstrap_rounds: int = 10
    min_share: float = 0.03  # of buyers: a candidate with a smaller segment is not chosen
    stable: tuple[float, float] = (0.95, 0.90)  # mean and worst adjusted Rand index a chosen k meets
    quantiles: int = 500  # per rank transform (what the spec stores)
    seed: int = 7
    rf_segments: tuple[tuple[str, str], ...] = RF_SEGMENTS  # RF-score pattern -> name, first match wins


@dataclass
class Trained:
    pipeline: Pipeline
    spec: SegmentSpec
    labels: NDArray[np.int64]  # every row's segment (``k``: no order yet)
    metrics: dict[str, Any] = field(default_factory=dict)  # the choice and every score


def buyers(x: Matrix) -> NDArray[np.bool_]:
    """Rows with at least one order."""
    return ~np.isnan(x[:, RFM_COLUMNS[0]]) & (np.nan_to_num(x[:, RFM_COLUMNS[1]]) > 0)


class Ranks(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Recency, frequency and spend as ranks among the buyers seen in ``fit`` (0 to 1); NaN
    for a customer with no order."""

    def __init__(self, quantiles: int = 500, seed: int = 7) -> None:
        self.quantiles, self.seed = quantiles, seed

    def fit(self, x: Matrix, y: Any = None) -> Ranks:
        rows = x[buyers(x)][:, RFM_COLUMNS]
        self.transformer_ = QuantileTransformer(
            n_quantiles=max(2, min(self.quantiles, len(rows))), subsample=200_000, random_state=self.seed
        ).fit(rows)
        return self

    def transform(self, x: Matrix) -> Matrix:
        ranked = np.full((len(x), len(RFM)), np.nan)
        rows = buyers(x)
        if rows.any():
            ranked[rows] = self.transformer_.transform(x[rows][:, RFM_COLUMNS])
        return ranked


class BuyerSegments(BaseEstimator, ClusterMixin):  # type: ignore[misc]
    """k-means over the rows without a missing value; a row with one is in segment ``k``."""

    def __init__(self, n_clusters: int = 4, n_init: int = 4, random_state: int = 7, init: Any = "k-means++") -> None:
        self.n_clusters, self.n_init, self.random_state, self.init = n_clusters, n_init, random_state, init

    def fit(self, z: Matrix, y: Any = None) -> BuyerSegments:
        n_init = 1 if isinstance(self.init, np.ndarray) else self.n_init
        self.kmeans_ = KMeans(n_clusters=self.n_clusters, init=self.init, n_init=n_init, random_state=self.random_state)
        self.kmeans_.fit(z[~np.isnan(z).any(axis=1)])
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        return self

    def predict(self, z: Matrix) -> NDArray[np.int64]:
        labels = np.full(len(z), self.n_clusters, dtype=np.int64)
        complete = ~np.isnan(z).any(axis=1)
        if complete.any():
            labels[complete] = self.kmeans_.predict(z[complete])
        return labels


def model(k: int, config: TrainingConfig, seed: int | None = None, init: Any = "k-means++") -> Pipeline:
    """Ranks, then k-means: from ``config.n_init`` k-means++ starts, or once from ``init`` centres."""
    seed = config.seed if seed is None else seed
    segments = BuyerSegments(k, config.n_init, seed, init)
    return Pipeline([("ranks", Ranks(config.quantiles, seed)), ("segments", segments)])


def model_space(pipeline: Pipeline, x: Matrix) -> Matrix:
    """What a model's clusters see of each row (NaN rows: not clustered)."""
    return np.asarray(pipeline[:-1].transform(x), dtype=float)


def feature_matrix(profiles: Iterable[Profile], as_of: datetime) -> Matrix:
    """Rows of ``FEATURES`` (NaN for a missing value), one per profile. (Taking the aggregates
    column by column was measured at 1.3x this on a million profiles: not worth a second
    definition of the features beside the stream's.)"""
    return np.array([features(p, as_of) for p in profiles], dtype=float).reshape(-1, len(FEATURES))


def rfm_boundaries(x: Matrix, names: tuple[tuple[str, str], ...] = RF_SEGMENTS) -> Rfm:
    """Quintile cut points of recency, frequency and monetary value over the buyers, and the
    percentiles of their spend."""
    bought = x[buyers(x)]
    if len(bought) == 0:
        return Rfm(recency=[0.0] * 4, frequency=[0.0] * 4, monetary=[0.0] * 4, names=list(names))
    cuts = np.quantile(bought[:, RFM_COLUMNS], [0.2, 0.4, 0.6, 0.8], axis=0)
    percentiles = np.percentile(bought[:, RFM_COLUMNS[2]], np.arange(1, 100)).tolist()
    return Rfm(recency=cuts[:, 0].tolist(), frequency=cuts[:, 1].tolist(), monetary=cuts[:, 2].tolist(),
               names=list(names), monetary_percentiles=percentiles)  # fmt: skip


class NoBuyers(ValueError):
    """Too few customers with an order to learn segments from."""


def train(x: Matrix, version: str, config: TrainingConfig = TrainingConfig()) -> Trained:
    """Fit every part of a model on the raw feature matrix ``x`` (rows in ``FEATURES`` order,
    NaN for a missing value)."""
    rng = np.random.default_rng(config.seed)
    bought = x[buyers(x)]
    if len(bought) < 2 * config.k_range[1]:
        raise NoBuyers(f"{len(bought)} customers with an order; segments need at least {2 * config.k_range[1]}")
    sample = bought[rng.choice(len(bought), min(len(bought), config.selection_sample), replace=False)]
    candidates = [_candidate(sample, k, config) for k in range(config.k_range[0], config.k_range[1] + 1)]
    chosen = choose(candidates, config)
    k = chosen["k"]

    pipeline = model(k, config, init=chosen["centres"]).fit(bought)  # every buyer, from the sample's centres
    labels = pipeline.predict(x)
    z = model_space(pipeline, x)
    rfm = rfm_boundaries(x, config.rf_segments)
    names, descriptions = name_segments(x, z, labels, k + 1, rfm)
    spec = _spec(version, pipeline, rfm, names, descriptions, population_percentiles(x))
    clustered = labels < k
    shares = np.bincount(labels[clustered], minlength=k) / max(clustered.sum(), 1)
    sample_z, sample_labels = model_space(pipeline, sample), pipeline.predict(sample)
    metrics = {
        "kind": "kmeans",
        "transform": "ranks of recency, frequency and spend among buyers",
        "k": k,
        "rows": len(x),
        "buyers": int(clustered.sum()),
        "prospects": int((~clustered).sum()),
        "silhouette": silhouette(z, labels, config),
        "calinski_harabasz": float(calinski_harabasz_score(sample_z, sample_labels)),
        "davies_bouldin": float(davies_bouldin_score(sample_z, sample_labels)),
        "stability": chosen["stability"],
        "stability_worst": chosen["stability_worst"],
        "min_share": float(shares.min()),
        "shares": shares.round(4).tolist(),  # of buyers, per clustered segment
        "sizes": np.bincount(labels, minlength=k + 1).tolist(),  # customers, per segment (prospects last)
        "revenue_shares": revenue_shares(x, labels, k + 1),
        "choice": chosen["why"],
        "candidates": {"kmeans": [{n: v for n, v in c.items() if n != "centres"} for c in candidates]},
        "training_bins": training_bins(x),
    }
    return Trained(pipeline, spec, labels, metrics)


def choose(candidates: list[dict[str, Any]], config: TrainingConfig) -> dict[str, Any]:
    """Among the candidates whose segments are all at least ``min_share`` and whose stability
    meets ``stable``, the best separated (silhouette); when none qualifies, the most stable
    (the gate then says what it misses)."""
    mean, worst = config.stable
    meets = [c for c in candidates if c["min_share"] >= config.min_share and c["stability"] >= mean
             and c["stability_worst"] >= worst]  # fmt: skip
    if meets:
        best = max(meets, key=lambda c: c["silhouette"])
        why = (f"k = {best['k']}: the best silhouette of the k with every segment >= {config.min_share:.0%} of buyers"
               f" and stability >= {mean} (worst refit >= {worst})")  # fmt: skip
    else:
        best = max(candidates, key=lambda c: (c["min_share"] >= config.min_share, c["stability_worst"], c["k"]))
        why = f"k = {best['k']}: no candidate meets the bar; the most stable"
    return {**best, "why": why}


def _candidate(sample: Matrix, k: int, config: TrainingConfig) -> dict[str, Any]:
    """k-means with ``k`` segments on the sample: its separation, smallest share and stability
    (adjusted Rand index against refits on bootstrap resamples, the rank transform refitted too)."""
    reference = model(k, config).fit(sample)
    labels, z = reference.predict(sample), model_space(reference, sample)
    rng = np.random.default_rng(config.seed + k)
    agreement = []
    for round_ in range(config.bootstrap_rounds):
        resample = sample[rng.integers(0, len(sample), len(sample))]
        refit = model(k, config, seed=config.seed + round_ + 1).fit(resample)
        agreement.append(adjusted_rand_score(labels, refit.predict(sample)))
    return {
        "k": k,
        "min_share": float(np.bincount(labels, minlength=k).min() / len(labels)),
        "silhouette": silhouette(z, labels, config),
        "calinski_harabasz": float(calinski_harabasz_score(z, labels)),
        "davies_bouldin": float(davies_bouldin_score(z, labels)),
        "stability": float(np.mean(agreement)) if agreement else 1.0,
        "stability_worst": float(np.min(agreement)) if agreement else 1.0,
        "centres": reference.named_steps["segments"].cluster_centers_,
    }


# When segments share a cell: told apart on the axis (of ranks) where their medians differ most.
APART = {"recency_days": ("recent", "longer gone"), "frequency": ("more orders", "fewer orders"),
         "monetary": ("higher spend", "lower spend")}  # fmt: skip


def name_segments(x: Matrix, z: Matrix, labels: NDArray[np.int64], k: int, rfm: Rfm) -> tuple[list[str], list[str]]:
    """Each segment named in the learned segments' own vocabulary (``spec.LEARNED_NAMES``, ``NOT_YET_BOUGHT``: never
    an RFM cell's name) from its median member's R, F and M scores (Best Customers, Lapsed Big
    Spenders, First-time Buyers, ...), qualified where two share a name; and one line: the
    medians, then the suggested action. ``z``: the rows in the model's space (ranks)."""
    medians = []
    for i in range(k):
        members = x[labels == i]
        present = [members[~np.isnan(members[:, i]), i] for i in RFM_COLUMNS]
        medians.append([float(np.median(values)) if len(values) else np.nan for values in present])
    cells = [rfm.score(None if np.isnan(r) else r, np.nan_to_num(f), np.nan_to_num(m)) for r, f, m in medians]
    names = [learned_name(r, f, m) for r, f, m, _ in cells]  # a segment of no orders: NOT_YET_BOUGHT
    actions = list(names)
    for name in set(names):
        sharing = [i for i, n in enumerate(names) if n == name]
        if len(sharing) > 1:
            ranks = np.array([np.nanmedian(z[labels == i], axis=0) for i in sharing])
            axis = int(np.argmax(ranks.max(axis=0) - ranks.min(axis=0)))
            better, worse = APART[RFM[axis]]
            order = sorted(range(len(sharing)), key=lambda j: ranks[j, axis] * (1 if axis == 0 else -1))
            for place, j in enumerate(order):
                word = better if place == 0 else worse if place == len(order) - 1 else str(place + 1)
                names[sharing[j]] = f"{name} · {word}"
    descriptions = []
    for (recency, orders, spend), name in zip(medians, actions, strict=True):
        if np.isnan(recency):
            facts = "No order yet."
        else:
            count = f"{orders:.0f} order{'' if round(orders) == 1 else 's'}"
            facts = f"Typically last order {recency:.0f} days ago, {count}, {spend:,.0f} spent (medians)."
        descriptions.append(f"{facts} {LEARNED_ACTIONS.get(name, '')}".strip())
    return names, descriptions


def revenue_shares(x: Matrix, labels: NDArray[np.int64], segments: int) -> list[float]:
    """Each segment's share of the customers' net revenue."""
    revenue = np.nan_to_num(x[:, FEATURES.index("monetary")])
    total = revenue.sum() or 1.0
    shares: list[float] = (np.bincount(labels, weights=revenue, minlength=segments) / total).round(4).tolist()
    return shares


def population_percentiles(x: Matrix) -> dict[str, list[float]]:
    """Per feature, the 1st..99th percentiles of its present values."""
    found = {}
    for i, name in enumerate(FEATURES):
        present = x[~np.isnan(x[:, i]), i]
        if len(present):
            found[name] = np.percentile(present, np.arange(1, 100)).tolist()
    return found


def training_bins(x: Matrix) -> dict[str, dict[str, list[float]]]:
    """Per feature, decile edges and the share of rows in each bin (plus the missing share):
    what a later population is compared against (population stability index)."""
    bins = {}
    for i, name in enumerate(FEATURES):
        column = x[:, i]
        present = column[~np.isnan(column)]
        edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))) if len(present) else np.array([])
        bins[name] = {"edges": edges.tolist(), "shares": bin_shares(column, edges).tolist()}
    return bins


def bin_shares(column: Matrix, edges: Matrix) -> Matrix:
    """Shares of ``column`` in the bins the edges make, and the missing share last."""
    missing = np.isnan(column)
    counts = np.bincount(np.searchsorted(edges, column[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()) / max(len(column), 1)


def _spec(
    version: str, pipeline: Pipeline, rfm: Rfm, names: list[str], descriptions: list[str],
    percentiles: dict[str, list[float]],
) -> SegmentSpec:  # fmt: skip
    ranks: Ranks = pipeline.named_steps["ranks"]
    segments: BuyerSegments = pipeline.named_steps["segments"]
    quantiles = ranks.transformer_.quantiles_
    return SegmentSpec(
        version=version,
        features=list(RFM),
        transforms=[Transform(feature=name, quantiles=quantiles[:, i].tolist()) for i, name in enumerate(RFM)],
        scale_mean=[0.0] * len(RFM),
        scale_std=[1.0] * len(RFM),
        rfm=rfm,
        clusters=Clusters(
            kind="kmeans",
            centers=segments.cluster_centers_.tolist(),
            names=names,
            descriptions=descriptions,
            prospects=True,
        ),
        percentiles=percentiles,
    )


def silhouette(z: Matrix, labels: NDArray[np.int64], config: TrainingConfig) -> float:
    """Over the clustered rows (no missing value), on a sample of ``config.silhouette_sample``
    rows (the full index is quadratic in rows)."""
    complete = ~np.isnan(z).any(axis=1)
    z, labels = z[complete], labels[complete]
    rng = np.random.default_rng(config.seed)
    rows = rng.choice(len(z), min(len(z), config.silhouette_sample), replace=False)
    if len(set(labels[rows].tolist())) < 2:
        return -1.0
    return float(silhouette_score(z[rows], labels[rows]))


class Winsorizer(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Clips the first ``columns`` columns at percentiles learned in ``fit`` (models stored by
    earlier releases unpickle with it)."""

    def __init__(self, columns: int, quantiles: tuple[float, float] = (0.01, 0.99)) -> None:
        self.columns, self.quantiles = columns, quantiles

    def fit(self, x: Matrix, y: Any = None) -> Winsorizer:
        self.low_, self.high_ = np.quantile(x[:, : self.columns], self.quantiles, axis=0)
        return self

    def transform(self, x: Matrix) -> Matrix:
        clipped = np.array(x, dtype=float, copy=True)
        clipped[:, : self.columns] = np.clip(clipped[:, : self.columns], self.low_, self.high_)
        return clipped


def _log_skewed(x: Matrix) -> Matrix:
    """log1p of the skewed columns (models stored by earlier releases unpickle with it)."""
    out = np.array(x, dtype=float, copy=True)
    for i, name in enumerate(FEATURES):
        if name in SKEWED:
            out[:, i] = np.log1p(np.clip(out[:, i], 0, None))
    return out
