"""What changed between the active model and a candidate, and whether to promote it.

Drift: the population stability index of each feature against the active model's training
data; the candidate's clusters matched to the active ones (Hungarian assignment on the
distance between cluster means, both measured in the candidate's standardised space); the
shift of each matched centre; the change in segment sizes; and a shadow assignment: which
customers the candidate would move, from which segment to which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from scipy.optimize import linear_sum_assignment

from audience.segmentation.features import FEATURES
from audience.segmentation.training import Matrix, bin_shares

PSI_FLOOR = 1e-4  # an empty bin counts as this share: the index stays finite


class PromotionPolicy(BaseModel):
    """When a candidate may replace the active model (the RetrainFunction's settings)."""

    min_silhouette: float = Field(default=0.33, description="quality gate")
    min_cluster_share: float = Field(default=0.03, description="quality gate: the smallest segment's share of buyers")
    min_stability: float = Field(default=0.95, description="quality gate: mean bootstrap adjusted Rand index")
    min_stability_worst: float = Field(default=0.9, description="quality gate: the worst refit's adjusted Rand index")
    drift_psi: float = Field(default=0.2, description="a feature's PSI above this means the population moved")
    min_improvement: float = Field(default=0.02, description="silhouette gain that justifies a change on its own")


@dataclass
class Drift:
    psi: dict[str, float] = field(default_factory=dict)
    matching: dict[int, int] = field(default_factory=dict)  # candidate cluster -> active cluster
    centre_shift: dict[int, float] = field(default_factory=dict)  # by candidate cluster
    active_shares: list[float] = field(default_factory=list)
    candidate_shares: list[float] = field(default_factory=list)
    moves: dict[str, int] = field(default_factory=dict)  # "active name -> candidate name": customers
    moved: int = 0
    active_silhouette: float | None = None
    active_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def psi(expected: list[float], actual: Matrix) -> float:
    e = np.clip(np.asarray(expected), PSI_FLOOR, None)
    a = np.clip(actual, PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


def population_stability(training_bins: dict[str, dict[str, list[float]]], x: Matrix) -> dict[str, float]:
    return {
        name: psi(training_bins[name]["shares"], bin_shares(x[:, i], np.asarray(training_bins[name]["edges"])))
        for i, name in enumerate(FEATURES)
        if name in training_bins
    }


def compare(
    z: Matrix,
    active_labels: NDArray[np.int64],
    candidate_labels: NDArray[np.int64],
    active_names: list[str],
    candidate_names: list[str],
) -> Drift:
    """Match clusters and count moves; ``z`` is every customer in the candidate's space (a row
    it does not cluster, a prospect's, is placed at -1 on every axis)."""
    ka, kc = len(active_names), len(candidate_names)
    z = np.nan_to_num(z, nan=-1.0)
    far = np.full(z.shape[1], 1e6)  # a segment nobody is in today matches nothing

    def means(labels: NDArray[np.int64], k: int) -> Matrix:
        return np.array([z[labels == i].mean(axis=0) if (labels == i).any() else far for i in range(k)])

    active_means, candidate_means = means(active_labels, ka), means(candidate_labels, kc)
    cost = np.linalg.norm(candidate_means[:, None, :] - active_means[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    matching = {int(c): int(a) for c, a in zip(rows, cols, strict=True)}
    drift = Drift(
        matching=matching,
        centre_shift={c: round(float(cost[c, a]), 4) for c, a in matching.items()},
        active_shares=(np.bincount(active_labels, minlength=ka) / len(z)).round(4).tolist(),
        candidate_shares=(np.bincount(candidate_labels, minlength=kc) / len(z)).round(4).tolist(),
        active_names=list(active_names),
    )
    same = np.array([matching.get(int(c), -1) for c in candidate_labels]) == active_labels
    drift.moved = int((~same).sum())
    pairs, counts = np.unique(np.stack([active_labels[~same], candidate_labels[~same]]), axis=1, return_counts=True)
    drift.moves = {
        f"{active_names[a]} -> {candidate_names[c]}": int(n) for (a, c), n in zip(pairs.T, counts, strict=True)
    }
    return drift


SAME_PLACE = 0.25  # a matched segment whose centre moved less (standardised units) keeps its name


def kept_names(candidate_names: list[str], drift: Drift, max_shift: float = SAME_PLACE) -> list[str]:
    """The candidate's names, except that a segment matched to an active one that has not moved
    keeps the active one's name (so marketers' audiences keep their names across retrains), as
    long as the names stay unique."""
    names = list(candidate_names)
    for c, a in drift.matching.items():
        if drift.centre_shift.get(c, max_shift) < max_shift and a < len(drift.active_names):
            names[c] = drift.active_names[a]
    repeated = {n for n in names if names.count(n) > 1}
    return [candidate if name in repeated else name for name, candidate in zip(names, candidate_names, strict=True)]


def decide(metrics: dict[str, Any], drift: Drift | None, policy: PromotionPolicy) -> tuple[bool, str]:
    """Promote or keep, and why."""
    failures = []
    if metrics["silhouette"] < policy.min_silhouette:
        failures.append(f"silhouette {metrics['silhouette']:.3f} < {policy.min_silhouette}")
    if metrics["min_share"] < policy.min_cluster_share:
        failures.append(f"smallest segment {metrics['min_share']:.3f} of buyers < {policy.min_cluster_share}")
    if metrics["stability"] < policy.min_stability:
        failures.append(f"stability {metrics['stability']:.3f} < {policy.min_stability}")
    worst = metrics.get("stability_worst", metrics["stability"])
    if worst < policy.min_stability_worst:
        failures.append(f"worst refit's stability {worst:.3f} < {policy.min_stability_worst}")
    if failures:
        return False, "quality gate failed: " + "; ".join(failures)
    if drift is None:
        return True, "first model"
    moved_features = {f: round(v, 3) for f, v in drift.psi.items() if v > policy.drift_psi}
    if moved_features:
        return True, f"the population moved (PSI above {policy.drift_psi}: {moved_features})"
    gain = metrics["silhouette"] - (drift.active_silhouette if drift.active_silhouette is not None else -1.0)
    if gain >= policy.min_improvement:
        return True, f"silhouette better by {gain:.3f} on today's customers"
    return (
        False,
        f"no drift and no better (silhouette gain {gain:.3f} < {policy.min_improvement}): keeping the active model",
    )
