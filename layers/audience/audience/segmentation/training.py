"""Fit a segmentation model: transforms, RFM boundaries, the choice of clustering, its names.

Transforms are fitted on the data (log1p for skewed columns, median imputation with missing
flags, winsorising at the 1st and 99th percentiles, standardising); IsolationForest marks
outliers, which are left out of fitting but still get a segment. Candidates are k-means
(k = 2..10, several initialisations) and Gaussian mixtures (chosen by BIC); k-means' k is
chosen by its mean rank on silhouette, Calinski-Harabasz and Davies-Bouldin; between the best
of each family, the higher silhouette wins. Selection runs on a sample, the final fit on every
inlier; stability is the mean adjusted Rand index of refits on bootstrap samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from audience.domain.profile import Profile
from audience.segmentation.features import FEATURES, SKEWED, features
from audience.segmentation.spec import ACTIONS, RF_SEGMENTS, Clusters, Rfm, SegmentSpec, Transform

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class TrainingConfig:
    k_range: tuple[int, int] = (2, 10)
    n_init: int = 4
    selection_sample: int = 20_000  # rows the candidates are compared on
    silhouette_sample: int = 5_000
    bootstrap_rounds: int = 5
    outlier_share: float = 0.01
    min_share: float = 0.02  # a candidate with a smaller segment is not chosen (the gate would refuse it)
    winsor: tuple[float, float] = (0.01, 0.99)
    seed: int = 7
    rf_segments: tuple[tuple[str, str], ...] = RF_SEGMENTS  # RF-score pattern -> name, first match wins


@dataclass
class Trained:
    pipeline: Pipeline
    spec: SegmentSpec
    labels: NDArray[np.int64]  # every row's segment
    outliers: int
    metrics: dict[str, Any] = field(default_factory=dict)  # the choice and every score


class Winsorizer(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Clips the first ``columns`` columns at percentiles learned in ``fit``."""

    def __init__(self, columns: int, quantiles: tuple[float, float] = (0.01, 0.99)) -> None:
        self.columns, self.quantiles = columns, quantiles

    def fit(self, x: Matrix, y: Any = None) -> Winsorizer:
        self.low_, self.high_ = np.quantile(x[:, : self.columns], self.quantiles, axis=0)
        return self

    def transform(self, x: Matrix) -> Matrix:
        clipped = np.array(x, dtype=float, copy=True)
        clipped[:, : self.columns] = np.clip(clipped[:, : self.columns], self.low_, self.high_)
        return clipped


def feature_matrix(profiles: Iterable[Profile], as_of: datetime) -> Matrix:
    """Rows of ``FEATURES`` (NaN for a missing value), one per profile."""
    return np.array([features(p, as_of) for p in profiles], dtype=float).reshape(-1, len(FEATURES))


def _log_skewed(x: Matrix) -> Matrix:
    out = np.array(x, dtype=float, copy=True)
    for i, name in enumerate(FEATURES):
        if name in SKEWED:
            out[:, i] = np.log1p(np.clip(out[:, i], 0, None))
    return out


def transforms(config: TrainingConfig) -> Pipeline:
    return Pipeline(
        [
            ("log", FunctionTransformer(_log_skewed)),
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("winsorise", Winsorizer(len(FEATURES), config.winsor)),
            ("scale", StandardScaler()),
        ]
    )


def rfm_boundaries(x: Matrix, names: tuple[tuple[str, str], ...] = RF_SEGMENTS) -> Rfm:
    """Quintile cut points of recency, frequency and monetary value over the buyers, and the
    percentiles of their spend."""
    buyers = x[~np.isnan(x[:, 0]) & (x[:, 1] > 0)]
    if len(buyers) == 0:
        return Rfm(recency=[0.0] * 4, frequency=[0.0] * 4, monetary=[0.0] * 4, names=list(names))
    cuts = np.quantile(buyers[:, :3], [0.2, 0.4, 0.6, 0.8], axis=0)
    percentiles = np.percentile(buyers[:, 2], np.arange(1, 100)).tolist()
    return Rfm(recency=cuts[:, 0].tolist(), frequency=cuts[:, 1].tolist(), monetary=cuts[:, 2].tolist(),
               names=list(names), monetary_percentiles=percentiles)  # fmt: skip


def train(x: Matrix, version: str, config: TrainingConfig = TrainingConfig()) -> Trained:
    """Fit every part of a model on the raw feature matrix ``x`` (rows in ``FEATURES`` order,
    NaN for a missing value)."""
    rng = np.random.default_rng(config.seed)
    prepared = transforms(config).fit(x)
    z = prepared.transform(x)
    inliers = IsolationForest(contamination=config.outlier_share, random_state=config.seed).fit_predict(z) == 1
    fit_rows = z[inliers]
    sample = fit_rows[rng.choice(len(fit_rows), min(len(fit_rows), config.selection_sample), replace=False)]

    kmeans_scores = [_kmeans_scores(sample, k, config) for k in range(config.k_range[0], config.k_range[1] + 1)]
    gmm_scores = [_gmm_scores(sample, k, config) for k in range(config.k_range[0], config.k_range[1] + 1)]
    kmeans_eligible = [s for s in kmeans_scores if s["min_share"] >= config.min_share] or kmeans_scores
    gmm_eligible = [s for s in gmm_scores if s["min_share"] >= config.min_share] or gmm_scores
    _rank(kmeans_eligible)
    best_kmeans = min(kmeans_eligible, key=lambda s: (s["rank"], s["k"]))
    best_gmm = min(gmm_eligible, key=lambda s: s["bic"])
    kind, k = (
        ("gmm", best_gmm["k"]) if best_gmm["silhouette"] > best_kmeans["silhouette"] else ("kmeans", best_kmeans["k"])
    )

    model = _model(kind, k, config, config.n_init).fit(fit_rows)
    stability, stability_worst = _stability(kind, k, model, sample, rng, config)
    pipeline = Pipeline([*prepared.steps, ("segments", model)])
    labels = model.predict(z)
    rfm = rfm_boundaries(x, config.rf_segments)
    names, descriptions = name_segments(x, labels, k, rfm)
    spec = _spec(version, pipeline, rfm, kind, model, names, descriptions)
    spec = spec.model_copy(update={"percentiles": population_percentiles(x)})
    shares = np.bincount(labels, minlength=k) / len(labels)
    metrics = {
        "kind": kind,
        "k": k,
        "rows": len(x),
        "outliers": int((~inliers).sum()),
        "silhouette": silhouette(z, labels, config),
        "calinski_harabasz": float(calinski_harabasz_score(sample, model.predict(sample))),
        "davies_bouldin": float(davies_bouldin_score(sample, model.predict(sample))),
        "stability": stability,
        "stability_worst": stability_worst,
        "min_share": float(shares.min()),
        "shares": shares.round(4).tolist(),
        "candidates": {"kmeans": kmeans_scores, "gmm": gmm_scores},
        "training_bins": training_bins(x),
    }
    return Trained(pipeline, spec, labels, int((~inliers).sum()), metrics)


def name_segments(x: Matrix, labels: NDArray[np.int64], k: int, rfm: Rfm) -> tuple[list[str], list[str]]:
    """Each segment named in the words marketers use: the RFM cell of its median member
    (Champions, At Risk, Hibernating, ...), qualified by spend when two share a cell; and one
    line: the medians, then the suggested action."""
    medians = []
    for i in range(k):
        members = x[labels == i]
        medians.append([float(np.nanmedian(members[:, FEATURES.index(f)])) if len(members) else np.nan
                        for f in ("recency_days", "frequency", "monetary")])  # fmt: skip
    cells = [rfm.score(None if np.isnan(r) else r, np.nan_to_num(f), np.nan_to_num(m)) for r, f, m in medians]
    names = [cell[3] for cell in cells]
    for name in set(names):
        sharing = [i for i, n in enumerate(names) if n == name]
        if len(sharing) > 1:  # the same cell: told apart by spend, highest first
            for rank, i in enumerate(sorted(sharing, key=lambda i: -medians[i][2])):
                names[i] = f"{name} · {'big spenders' if rank == 0 else 'smaller baskets' if rank == 1 else rank + 1}"
    descriptions = []
    for (recency, orders, spend), (_, _, _, cell) in zip(medians, cells, strict=True):
        last = "no order yet" if np.isnan(recency) else f"last order {recency:.0f} days ago"
        facts = f"Typically {last}, {np.nan_to_num(orders):.0f} orders, {np.nan_to_num(spend):,.0f} spent (medians)."
        descriptions.append(f"{facts} {ACTIONS.get(cell, '')}".strip())
    return names, descriptions


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
    version: str, pipeline: Pipeline, rfm: Rfm, kind: str, model: Any, names: list[str], descriptions: list[str]
) -> SegmentSpec:
    imputer: SimpleImputer = pipeline.named_steps["impute"]
    winsor: Winsorizer = pipeline.named_steps["winsorise"]
    scaler: StandardScaler = pipeline.named_steps["scale"]
    flagged = set(imputer.indicator_.features_) if imputer.indicator_ is not None else set()
    transforms_ = [
        Transform(
            feature=name,
            log=name in SKEWED,
            median=float(imputer.statistics_[i]),
            flag=i in flagged,
            clip=(float(winsor.low_[i]), float(winsor.high_[i])),
        )
        for i, name in enumerate(FEATURES)
    ]
    centers = model.cluster_centers_ if kind == "kmeans" else model.means_
    clusters = Clusters(
        kind=kind,  # type: ignore[arg-type]
        centers=centers.tolist(),
        names=names,
        descriptions=descriptions,
        precisions_cholesky=model.precisions_cholesky_.tolist() if kind == "gmm" else [],
        log_weights=np.log(model.weights_).tolist() if kind == "gmm" else [],
    )
    return SegmentSpec(
        version=version,
        features=list(FEATURES),
        transforms=transforms_,
        scale_mean=scaler.mean_.tolist(),
        scale_std=scaler.scale_.tolist(),
        rfm=rfm,
        clusters=clusters,
    )


def _model(kind: str, k: int, config: TrainingConfig, n_init: int, seed: int | None = None) -> Any:
    seed = config.seed if seed is None else seed
    if kind == "kmeans":
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    return GaussianMixture(n_components=k, covariance_type="full", n_init=1, random_state=seed, reg_covar=1e-4)


def _kmeans_scores(sample: Matrix, k: int, config: TrainingConfig) -> dict[str, Any]:
    model = _model("kmeans", k, config, config.n_init).fit(sample)
    labels = model.labels_
    return {
        "k": k,
        "min_share": float(np.bincount(labels, minlength=k).min() / len(labels)),
        "inertia": float(model.inertia_),
        "silhouette": silhouette(sample, labels, config),
        "calinski_harabasz": float(calinski_harabasz_score(sample, labels)),
        "davies_bouldin": float(davies_bouldin_score(sample, labels)),
    }


def _gmm_scores(sample: Matrix, k: int, config: TrainingConfig) -> dict[str, Any]:
    model = _model("gmm", k, config, 1).fit(sample)
    labels = model.predict(sample)
    return {
        "k": k,
        "min_share": float(np.bincount(labels, minlength=k).min() / len(labels)),
        "bic": float(model.bic(sample)),
        "silhouette": silhouette(sample, labels, config),
    }


def _rank(scores: list[dict[str, Any]]) -> None:
    """Mean rank over the three indices (1 = best on each)."""
    for key, best_high in (("silhouette", True), ("calinski_harabasz", True), ("davies_bouldin", False)):
        ordered = sorted(scores, key=lambda s: -s[key] if best_high else s[key])
        for position, s in enumerate(ordered, start=1):
            s.setdefault("ranks", {})[key] = position
    for s in scores:
        s["rank"] = sum(s["ranks"].values()) / 3


def silhouette(z: Matrix, labels: NDArray[np.int64], config: TrainingConfig) -> float:
    """On a sample of ``config.silhouette_sample`` rows (the full index is quadratic in rows)."""
    rng = np.random.default_rng(config.seed)
    if len(set(labels.tolist())) < 2:
        return -1.0
    size = min(len(z), config.silhouette_sample)
    rows = rng.choice(len(z), size, replace=False)
    if len(set(labels[rows].tolist())) < 2:
        return -1.0
    return float(silhouette_score(z[rows], labels[rows]))


def _stability(
    kind: str, k: int, model: Any, sample: Matrix, rng: np.random.Generator, config: TrainingConfig
) -> tuple[float, float]:
    """Mean and worst adjusted Rand index between the model's labels of the sample and those of
    models refitted on bootstrap resamples of it."""
    reference = model.predict(sample)
    scores = []
    for round_ in range(config.bootstrap_rounds):
        resample = sample[rng.integers(0, len(sample), len(sample))]
        refit = _model(kind, k, config, 1, seed=config.seed + round_ + 1).fit(resample)
        scores.append(adjusted_rand_score(reference, refit.predict(sample)))
    return float(np.mean(scores)), float(np.min(scores))
