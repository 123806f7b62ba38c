"""Churn risk learned from history: gradient-boosted trees on the churn features at a cut-off,
labelled by whether the customer ordered in the following days, chosen by cross-validation;
compared with BG/NBD on the same holdout; exported node by node for plain-Python scoring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.calibration import calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from audience.value.spec import CHURN_FEATURES, Tree

Matrix = NDArray[np.float64]
GRID = (
    {"max_leaf_nodes": 8, "learning_rate": 0.1},
    {"max_leaf_nodes": 16, "learning_rate": 0.05},
    {"max_leaf_nodes": 4, "learning_rate": 0.1},
)
MAX = np.finfo(float).max  # an infinite threshold (JSON has no infinity): x <= MAX holds for every x
ITERATIONS = 100  # trees: the stream walks every one of them on each order
MIN_ROWS = 200  # fewer labelled buyers, or one class only: no classifier is trained


def classifier(settings: dict[str, Any], seed: int = 0) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=ITERATIONS, min_samples_leaf=20, random_state=seed, early_stopping=False, **settings
    )


def cross_validate(x: Matrix, y: NDArray[np.int64], folds: int = 5) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings with the best cross-validated log loss, and every candidate's score."""
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


def scores(y: NDArray[np.int64], risk: Matrix) -> dict[str, Any]:
    """AUC, log loss, Brier score and a ten-bin calibration table (predicted vs observed)."""
    risk = np.clip(risk, 1e-9, 1 - 1e-9)
    observed, predicted = calibration_curve(y, risk, n_bins=10, strategy="quantile")
    return {
        "auc": float(roc_auc_score(y, risk)),
        "log_loss": float(log_loss(y, risk)),
        "brier": float(brier_score_loss(y, risk)),
        "calibration": [
            {"predicted": float(p), "observed": float(o)} for p, o in zip(predicted, observed, strict=True)
        ],
    }


def importance(model: HistGradientBoostingClassifier, x: Matrix, y: NDArray[np.int64]) -> list[dict[str, Any]]:
    """Permutation importance on the holdout: how much the log loss worsens when one feature's
    values are shuffled across customers (mean of five shuffles)."""
    found = permutation_importance(model, x, y, scoring="neg_log_loss", n_repeats=5, random_state=0)
    rows = [
        {"feature": name, "importance": float(mean), "std": float(std)}
        for name, mean, std in zip(CHURN_FEATURES, found.importances_mean, found.importances_std, strict=True)
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
