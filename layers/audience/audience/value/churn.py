"""Churn risk learned from history: gradient-boosted trees on the churn features and the season
at many cut-offs, each labelled by whether the customer ordered in the following days, chosen
by cross-validation and calibrated on a later time split; compared with BG/NBD on the same
holdout; exported node by node for plain-Python scoring.

Why many cut-offs: one cut-off is one season, and a model trained at one season is miscalibrated
at another (the Online Retail II holdout, September to December, churns ten points less than the
summer the trees were trained on). Rows at a cut-off every ``SNAPSHOT_DAYS`` days, each with the
day of the year (``SEASON_FEATURES``), let the trees see several seasons' base rates.

Why a temperature, not Platt's intercept or isotonic regression: the calibration rows are one
season (the latest labelled horizon); a calibrator with an intercept (or a free curve) learns
that season's base rate and undoes what the season features learned. One factor on the trees'
log-odds (Platt scaling without the intercept) corrects only their over-confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from audience.value.orders import AsOf, OrderLog
from audience.value.spec import CHURN_FEATURES, SEASON_FEATURES, Tree, season

Matrix = NDArray[np.float64]
GRID = (
    {"max_leaf_nodes": 8, "learning_rate": 0.1},
    {"max_leaf_nodes": 16, "learning_rate": 0.05},
    {"max_leaf_nodes": 4, "learning_rate": 0.1},
)
MAX = np.finfo(float).max  # an infinite threshold (JSON has no infinity): x <= MAX holds for every x
ITERATIONS = 100  # trees: the stream walks every one of them on each order
MIN_ROWS = 200  # fewer labelled buyers, or one class only: no classifier is trained
SNAPSHOT_DAYS = 14  # between two training cut-offs (7 and 30 were measured too: docs/models.md)
HISTORY_DAYS = 730  # cut-offs over two years at most: every season twice
MAX_ROWS = 400_000  # training rows (~32 MB of features): a million buyers at 52 cut-offs would be 52 million
BINS = 10  # the calibration table's: deciles of predicted risk


def classifier(settings: dict[str, Any], seed: int = 0) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=ITERATIONS, min_samples_leaf=20, random_state=seed, early_stopping=False, **settings
    )


@dataclass(frozen=True)
class Snapshots:
    """Training rows: buyers' churn features and the season at a cut-off, labelled 1 when they
    had no order day in the horizon after it; ``cutoffs`` says each row's cut-off day."""

    x: Matrix
    y: NDArray[np.int64]
    cutoffs: NDArray[np.int64]

    def where(self, rows: NDArray[np.bool_]) -> Snapshots:
        return Snapshots(self.x[rows], self.y[rows], self.cutoffs[rows])


def at(log: OrderLog, day: int) -> Matrix:
    """The buyers' churn features and the season as of ``day`` (what the trees score)."""
    return _rows(log.as_of(day), day)


def _rows(stats: AsOf, day: int) -> Matrix:
    features = stats.features[stats.buyer]
    return np.column_stack([features, np.tile(season(day), (len(features), 1))])


def snapshots(log: OrderLog, end: int, horizon: int, step: int = SNAPSHOT_DAYS) -> Snapshots:
    """Rows at cut-offs every ``step`` days back from ``end - horizon`` to the first order day
    (at most ``HISTORY_DAYS`` back): every label is known by day ``end`` (nothing after it is
    read). At most ``MAX_ROWS`` in all: a random share of each cut-off's buyers beyond that."""
    first = max(int(log.day.min()) if len(log.day) else end, end - horizon - HISTORY_DAYS)
    days = range(end - horizon, first, -step)
    per_cutoff = MAX_ROWS // max(len(days), 1)
    xs, ys, cutoffs = [], [], []
    for cutoff in reversed(days):
        stats = log.as_of(cutoff)
        x = _rows(stats, cutoff)
        y = (log.orders_between(cutoff, cutoff + horizon)[stats.buyer] == 0).astype(np.int64)
        if len(y) > per_cutoff:
            kept = np.sort(np.random.default_rng(cutoff).choice(len(y), per_cutoff, replace=False))
            x, y = x[kept], y[kept]
        xs.append(x)
        ys.append(y)
        cutoffs.append(np.full(len(y), cutoff, dtype=np.int64))
    if not xs:
        return Snapshots(np.empty((0, len(CHURN_FEATURES) + len(SEASON_FEATURES))), np.empty(0, np.int64),
                         np.empty(0, np.int64))  # fmt: skip
    return Snapshots(np.vstack(xs), np.concatenate(ys), np.concatenate(cutoffs))


@dataclass(frozen=True)
class Calibrated:
    """Trees, the factor on their log-odds that calibrates them (1: not calibrated), the settings
    chosen and how (JSON)."""

    model: HistGradientBoostingClassifier
    scale: float
    settings: dict[str, Any]
    table: list[dict[str, Any]]  # every candidate setting's validation log loss
    calibration: dict[str, Any]

    def risk(self, x: Matrix) -> Matrix:
        return np.asarray(1 / (1 + np.exp(-self.scale * self.model.decision_function(x))), dtype=float)


def fit_calibrated(rows: Snapshots, horizon: int, settings: dict[str, Any] | None = None) -> Calibrated:
    """The trees on every row, with their settings and calibration from a time split by cut-off:
    the rows at cut-offs whose labels were known by the latest cut-off train a probe per candidate
    setting, which scores the rows of the later cut-offs (the latest horizon's); the setting with
    the lowest log loss there wins (or ``settings`` is kept), and one factor on its probe's
    log-odds is fitted on those rows by logistic regression without an intercept. (Random folds
    would let a customer's rows at other cut-offs into the training folds, and reward memorising
    customers.) The probe's label windows may overlap the calibration rows' (every calibration
    row's is later than its own cut-off): a split with no overlap leaves the probe a season or less
    of history on a one-year file and over-tempers (docs/models.md has both figures)."""
    latest = int(rows.cutoffs.max())
    earlier = rows.cutoffs <= latest - horizon
    early, late = rows.where(earlier), rows.where(~earlier)
    if not (trainable(early.y) and 0 < int(late.y.sum()) < len(late.y)):
        chosen, table = (settings, []) if settings else cross_validate(rows.x, rows.y)
        model = classifier(chosen).fit(rows.x, rows.y)
        return Calibrated(model, 1.0, chosen, table, {"kind": "none", "why": "too few rows for a time split"})
    probes = {}
    table = []
    for candidate in [settings] if settings else GRID:
        probes[str(candidate)] = probe = classifier(candidate).fit(early.x, early.y)
        table.append({**candidate, "cv_log_loss": float(log_loss(late.y, probe.predict_proba(late.x)[:, 1]))})
    best = min(table, key=lambda row: row["cv_log_loss"])
    chosen = {k: best[k] for k in GRID[0]}
    fitted = LogisticRegression(fit_intercept=False, penalty=None)
    fitted.fit(probes[str(chosen)].decision_function(late.x)[:, None], late.y)
    factor = float(fitted.coef_[0, 0])
    found = {"kind": "temperature", "factor": factor, "trainRows": len(early.y), "calibrationRows": len(late.y),
             "cutoffs": [_iso(int(early.cutoffs.min())), _iso(int(early.cutoffs.max())), _iso(int(late.cutoffs.min())),
                         _iso(latest)]}  # fmt: skip
    if factor <= 0:  # trees that rank the calibration rows backwards: left as they are
        found = {**found, "kind": "none", "why": f"factor {factor:.3f} is not positive"}
    model = classifier(chosen).fit(rows.x, rows.y)
    return Calibrated(model, factor if factor > 0 else 1.0, chosen, table, found)


def cross_validate(x: Matrix, y: NDArray[np.int64], folds: int = 5) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings with the best cross-validated log loss, and every candidate's score (when
    the history is too short for a time split)."""
    splits = StratifiedKFold(folds, shuffle=True, random_state=0)
    table = [
        {
            **settings,
            "cv_log_loss": -float(
                np.mean(cross_val_score(classifier(settings), x, y, cv=splits, scoring="neg_log_loss"))
            ),
        }
        for settings in GRID
    ]
    best = min(table, key=lambda row: row["cv_log_loss"])
    return {k: best[k] for k in GRID[0]}, table


def trainable(y: NDArray[np.int64]) -> bool:
    return len(y) >= MIN_ROWS and 0 < int(y.sum()) < len(y)


def deciles(y: NDArray[np.int64], risk: Matrix) -> list[dict[str, Any]]:
    """Customers in ten equal groups by predicted risk: each group's mean prediction and churn rate."""
    groups = np.array_split(np.argsort(risk, kind="stable"), BINS)
    return [{"predicted": float(risk[g].mean()), "observed": float(y[g].mean()), "customers": len(g)} for g in groups]


def scores(y: NDArray[np.int64], risk: Matrix) -> dict[str, Any]:
    """AUC, log loss, Brier score, the calibration table by decile of predicted risk and its
    expected calibration error (the customers' mean gap between predicted and observed)."""
    risk = np.clip(risk, 1e-9, 1 - 1e-9)
    table = deciles(y, risk)
    return {
        "auc": float(roc_auc_score(y, risk)),
        "log_loss": float(log_loss(y, risk)),
        "brier": float(brier_score_loss(y, risk)),
        "ece": sum(row["customers"] * abs(row["predicted"] - row["observed"]) for row in table) / len(y),
        "calibration": table,
    }


def importance(model: Calibrated, x: Matrix, y: NDArray[np.int64]) -> list[dict[str, Any]]:
    """Permutation importance on the holdout: how much the log loss worsens when one feature's
    values are shuffled across customers (mean of five shuffles). The season is one value on a
    holdout (one cut-off): its importance there is nil by construction."""

    def calibrated_log_loss(_: Any, x: Matrix, y: NDArray[np.int64]) -> float:
        return -float(log_loss(y, np.clip(model.risk(x), 1e-9, 1 - 1e-9)))

    found = permutation_importance(model.model, x, y, scoring=calibrated_log_loss, n_repeats=5, random_state=0)
    rows = [
        {"feature": name, "importance": float(mean), "std": float(std)}
        for name, mean, std in zip(
            CHURN_FEATURES + SEASON_FEATURES, found.importances_mean, found.importances_std, strict=True
        )
    ]
    return sorted(rows, key=lambda row: -row["importance"])


def export(model: HistGradientBoostingClassifier) -> tuple[float, list[Tree]]:
    """The ensemble's baseline (log-odds) and its trees as plain node arrays."""
    trees = []
    for (predictor,) in model._predictors:  # one tree per iteration for a binary problem
        nodes = predictor.nodes
        trees.append(
            Tree(
                feature=nodes["feature_idx"].tolist(),
                threshold=np.clip(nodes["num_threshold"], -MAX, MAX).tolist(),
                missing_left=nodes["missing_go_to_left"].astype(bool).tolist(),
                left=nodes["left"].tolist(),
                right=nodes["right"].tolist(),
                value=nodes["value"].tolist(),
                leaf=nodes["is_leaf"].astype(bool).tolist(),
            )
        )
    return float(np.ravel(model._baseline_prediction)[0]), trees


def _iso(day: int) -> str:
    return date.fromordinal(day).isoformat()
