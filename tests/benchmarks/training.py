"""Training benchmark, run in a process of its own (``python -m tests.benchmarks.training N``):
N synthetic profiles from known segments through feature building, model selection, fitting
and assignment; prints one JSON line: timings, the process's peak RSS (the generator's chunk
included), and the adjusted Rand index against the generator's segments."""

from __future__ import annotations

import json
import re
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from audience.segmentation.training import TrainingConfig, feature_matrix, train
from tests.synthetic import NOW, draw


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak resident memory."""
    match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def main(n: int, chunk: int = 10_000) -> None:
    """Profiles come from the generator ``chunk`` at a time, as the retrain reads them from its scan;
    the generator's own time is not the engine's and is reported apart (before issue 15 it was
    counted as the features' time: 42 of the 46 s)."""
    generating = extracting = 0.0
    parts, truth = [], []
    profiles = draw(n, seed=42)
    while True:
        started = time.perf_counter()
        drawn = list(islice(profiles, chunk))
        generating += time.perf_counter() - started
        if not drawn:
            break
        chunk_profiles = [p for p, _ in drawn]
        truth += [kind for _, kind in drawn]
        started = time.perf_counter()
        parts.append(feature_matrix(chunk_profiles, NOW))
        extracting += time.perf_counter() - started
        del drawn, chunk_profiles
    x = np.concatenate(parts)
    del parts
    built = time.perf_counter()
    trained = train(x, "bench", TrainingConfig())
    fitted = time.perf_counter()
    labels = trained.pipeline.predict(x)  # assignment of every customer
    done = time.perf_counter()
    print(json.dumps({
        "customers": n,
        "generating_s": generating,
        "features_s": extracting,
        "training_s": fitted - built,
        "assignment_s": done - fitted,
        "total_s": extracting + done - built,
        "peak_mb": peak_rss_mb(),
        "ari": adjusted_rand_score(truth, labels),
        "k": trained.metrics["k"],
        "kind": trained.metrics["kind"],
        "silhouette": trained.metrics["silhouette"],
        "stability": trained.metrics["stability"],
        "stability_worst": trained.metrics["stability_worst"],
    }))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
