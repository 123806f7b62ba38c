"""Training benchmark, run in a process of its own (``python -m tests.benchmarks.training N``):
N synthetic profiles from known segments through feature building, model selection, fitting
and assignment; prints one JSON line: timings, the process's peak RSS, and the adjusted Rand
index against the generator's segments."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from audience.segmentation.features import features
from audience.segmentation.training import TrainingConfig, train
from tests.synthetic import NOW, draw


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak resident memory."""
    match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def main(n: int) -> None:
    started = time.perf_counter()
    rows, truth = [], []
    for profile, kind in draw(n, seed=42):
        rows.append(features(profile, NOW))
        truth.append(kind)
    x = np.array(rows, dtype=float)
    del rows
    built = time.perf_counter()
    trained = train(x, "bench", TrainingConfig())
    fitted = time.perf_counter()
    labels = trained.pipeline.predict(x)  # assignment of every customer
    done = time.perf_counter()
    print(json.dumps({
        "customers": n,
        "features_s": built - started,
        "training_s": fitted - built,
        "assignment_s": done - fitted,
        "total_s": done - started,
        "peak_mb": peak_rss_mb(),
        "ari": adjusted_rand_score(truth, labels),
        "k": trained.metrics["k"],
        "kind": trained.metrics["kind"],
        "silhouette": trained.metrics["silhouette"],
        "stability": trained.metrics["stability"],
    }))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
