"""Fitting BG/NBD + Gamma-Gamma on customers drawn from known parameters, beside `lifetimes`'
`BetaGeoFitter` on the same data in the same run (in its own virtualenv: LIFETIMES_PYTHON).

Run alone: ``python -m tests.benchmarks.value_fit [customers]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from audience.value.btyd import BetaGeo, fit_bgnbd, fit_gamma_gamma

TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
LIFETIMES_PYTHON = os.environ.get("LIFETIMES_PYTHON", ".venv-lifetimes/bin/python")  # make bench creates it
LIFETIMES_FIT = """
import sys, time, resource, json, numpy as np
from lifetimes import BetaGeoFitter
d = np.load(sys.argv[1])
started = time.perf_counter()
fitter = BetaGeoFitter().fit(d["x"], d["t_x"], d["T"])
print(json.dumps({"seconds": time.perf_counter() - started, **fitter.params_.to_dict(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def simulate(customers: int, seed: int = 1) -> dict[str, np.ndarray]:
    """BG/NBD histories over 1-52 weeks (in weeks, to the day), and Gamma-Gamma spends (to the
    cent), from the parameters above."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], customers)
    drop = rng.beta(TRUTH["a"], TRUTH["b"], customers)
    big_t = rng.integers(1, 53, customers).astype(float)
    x, t_x, clock = np.zeros(customers), np.zeros(customers), np.zeros(customers)
    active = np.ones(customers, dtype=bool)
    while active.any():
        clock[active] += rng.exponential(1 / np.maximum(rate[active], 1e-12))
        bought = active & (clock <= big_t)
        x[bought] += 1
        t_x[bought] = clock[bought]
        active = bought & (rng.random(customers) >= drop)  # after each purchase, drop out with p
    nu = rng.gamma(SPEND["q"], 1 / SPEND["v"], customers)
    spends = np.where(x > 0, rng.gamma(SPEND["p"] * np.maximum(x, 1), 1 / nu) / np.maximum(x, 1), 0)
    # as the product holds them: order days (t_x to the day) and money (to the cent)
    return {"x": x, "t_x": np.round(t_x * 7) / 7, "T": big_t, "zbar": spends.round(2)}


def measure(customers: int = 1_000_000) -> dict[str, object]:
    data = simulate(customers)
    started = time.perf_counter()
    model = fit_bgnbd(data["x"], data["t_x"], data["T"])
    spend = fit_gamma_gamma(data["x"], data["zbar"])
    ours_s = time.perf_counter() - started
    ours_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fitted = {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b, "p": spend.p, "q": spend.q,
              "v": spend.v}  # fmt: skip
    theirs: dict[str, float] | None = None
    if Path(LIFETIMES_PYTHON).exists():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "data.npz"
            np.savez(path, **{k: data[k] for k in ("x", "t_x", "T")})
            result = subprocess.run([LIFETIMES_PYTHON, "-c", LIFETIMES_FIT, str(path)], capture_output=True,
                                    text=True, check=True)  # fmt: skip
            theirs = json.loads(result.stdout.strip().splitlines()[-1])
    return {"customers": customers, "ours_s": ours_s, "ours_mb": ours_mb, "fitted": fitted, "lifetimes": theirs}


def report(run: dict[str, object]) -> None:
    fitted, theirs = run["fitted"], run["lifetimes"]
    assert isinstance(fitted, dict)
    worst = max(abs(fitted[k] / v - 1) for k, v in {**TRUTH, **SPEND}.items())
    print(f"   {run['customers']:,} customers: ours BG/NBD + Gamma-Gamma {run['ours_s']:.2f} s, peak RSS"
          f" {run['ours_mb']:,.0f} MB; parameters within {worst:.1%} of the truth (target: 2%, < 10 s)")  # fmt: skip
    print("   fitted " + ", ".join(f"{k} {v:.4f}" for k, v in fitted.items()))
    if not isinstance(theirs, dict):
        print("   lifetimes: not measured (no LIFETIMES_PYTHON virtualenv with lifetimes)")
        return
    print(f"   lifetimes BetaGeoFitter alone: {theirs['seconds']:.1f} s, peak RSS {theirs['peak_mb']:,.0f} MB;"
          f" ours is {theirs['seconds'] / float(run['ours_s']):.0f}x faster (target: >= 20x)")  # type: ignore[arg-type]  # fmt: skip


def scoring(customers: int = 2_000) -> dict[str, float]:
    """Microseconds per customer: the stream's plain-Python predictions (the value part, the churn
    risk by 100 exported trees, everything ``ValueSpec.predict`` does from a profile) beside the
    same predictions by scipy/numpy called for one customer, as a stream would without the spec."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from audience.domain.profile import LedgerEntry, Profile
    from audience.value.spec import OrderHistory
    from audience.value.training import fit_value
    from tests.unit.value.test_value_product import simulated_log

    fit = fit_value(simulated_log(3_000), datetime.fromordinal(739_600).replace(tzinfo=UTC), "bench")
    spec, now = fit.spec, datetime.fromordinal(739_600).replace(tzinfo=UTC)
    trees = spec if spec.churn.kind == "trees" else None
    rng = np.random.default_rng(3)
    profiles = []
    for n in range(customers):
        days = sorted({now.date() - timedelta(days=int(d)) for d in rng.integers(0, 500, rng.integers(1, 8))})
        ledger = {f"o{n}-{i}": LedgerEntry(Decimal(40 + i), d) for i, d in enumerate(days)}
        first, last = (datetime.combine(d, datetime.min.time(), UTC) for d in (days[0], days[-1]))
        profiles.append(Profile(customer_id=f"c{n}", orders=len(days), ledger=ledger, first_order_at=first,
                                last_order_at=last))  # fmt: skip
    today = now.date().toordinal()
    summaries = [OrderHistory.of(p).summary(today) for p in profiles]
    rows = [spec.churn.row(OrderHistory.of(p), today) for p in profiles]
    purchases = BetaGeo(*spec.purchases.params(), modified=spec.purchases.modified)
    values = [spec.values(*summary) for summary in summaries]

    def timed(work: object) -> float:
        started = time.perf_counter()
        for i in range(customers):
            work(i)  # type: ignore[operator]
        return (time.perf_counter() - started) / customers * 1e6

    periods = np.array([90.0, 182.625, 273.9375, 365.25])
    return {
        "values": timed(lambda i: spec.values(*summaries[i])),
        "values_scipy": timed(
            lambda i: (purchases.p_alive(*summaries[i][:3]), purchases.conditional_expected(periods, *summaries[i][:3]))
        ),
        "intervals": timed(lambda i: spec.intervals(*summaries[i], *values[i][2:])),
        "risk": timed(lambda i: spec.risk(rows[i])),
        "predict": timed(lambda i: spec.predict(profiles[i], now)),
        "trees": float(len(spec.churn.trees)) if trees else 0.0,
        "draws": float(len(spec.purchases.uncertain())),
    }


def report_scoring(run: dict[str, float]) -> None:
    print(f"   scoring a customer in plain Python: value predictions {run['values']:.0f} us (P(alive), 90-day orders,"
          f" order value, 12-month value over 4 periods) beside {run['values_scipy']:.0f} us for the same by"
          f" numpy/scipy one customer at a time (target: < 50 us)")  # fmt: skip
    print(f"   the 80 % and 95 % intervals of the 90-day orders and the 12-month value {run['intervals']:.0f} us"
          f" (the count distributions over {run['draws']:.0f} parameter draws, the spend's mixture)")  # fmt: skip
    print(f"   churn risk {run['risk']:.0f} us ({run['trees']:.0f} trees); the whole prediction from a profile"
          f" (ledger to features, pydantic model) {run['predict']:.0f} us")  # fmt: skip


if __name__ == "__main__":
    report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
    report_scoring(scoring())
