"""Recommendations offline on Online Retail II: leave the last basket out, every candidate
(the item models alone and blended with the repeat signal) beside the next-basket baselines
(popularity, P-TopFreq, GP-TopFreq, TIFU-KNN), popularity in the customer's segment (and ``implicit`` ALS when
``IMPLICIT_PYTHON`` names a virtualenv with it)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from scipy import sparse

from audience.domain.imports import builtin_mapping
from audience.domain.money import Currencies
from audience.domain.orders import OrderFileCleaner
from audience.recommend.baselines import tifu_vectors
from audience.recommend.evaluation import Basket, leave_last_basket_out, scores
from audience.recommend.judging import judge
from audience.recommend.training import FITS, Interactions, fit
from tests.real_data import RETAIL


def baskets() -> tuple[list[Basket], dict[str, str]]:
    """Every invoice's products (cancellations and non-product lines left out), and names."""
    cleaner = OrderFileCleaner(builtin_mapping("online-retail"), Currencies("GBP", {}), lambda _: None)
    lines: dict[tuple[str, str], set[str]] = defaultdict(set)
    when, names = {}, {}
    with gzip.open(RETAIL, "rb") as raw:
        for line in cleaner.records(raw):
            if line.is_cancellation or not line.is_product or not line.product_id or line.amount <= 0:
                continue
            lines[(line.customer_id, line.order_id)].add(line.product_id)
            when[(line.customer_id, line.order_id)] = line.at
            names.setdefault(line.product_id, line.product_name or line.product_id)
    return [(c, when[(c, o)], o, frozenset(p)) for (c, o), p in lines.items()], names


def segments_of_online_retail() -> dict[str, str]:
    """Each customer's learned segment, from the retrain on the whole file (it has seen the last
    baskets too: a baseline with an advantage, not a straw man)."""
    from audience.segmentation.drift import PromotionPolicy
    from tests.real_data import AS_OF, _imported
    from tests.unit.fakes import MemoryRegistry
    from tests.unit.jobs import retraining

    bucket, profiles, _ = _imported()
    retraining(profiles, bucket, MemoryRegistry(), PromotionPolicy()).retrain(AS_OF)
    return {c: p.segments.name for c, p in profiles.items.items() if p.segments is not None}


def without_last_baskets(found: list[Basket]) -> list[Basket]:
    """Every customer's baskets but their last (the tuning split's history and truth)."""
    last = {}
    for basket in sorted(found, key=lambda b: (b[1], b[2])):
        last[basket[0]] = basket
    return [b for b in found if last[b[0]] is not b]


def evaluate(segments: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Every candidate and baseline on the last baskets; the blend's weight tuned on the baskets
    before them (each customer's second-to-last basket, item models fitted on what came before)."""
    found, names = baskets()
    split = leave_last_basket_out(found)
    earlier = without_last_baskets(found)
    tuning = leave_last_basket_out(earlier)
    by_customer: dict[str, list[Basket]] = defaultdict(list)
    for basket in sorted(earlier, key=lambda b: (b[1], b[2])):
        by_customer[basket[0]].append(basket)
    tifu = {c: tifu_vectors([b[3] for b in theirs]) for c, theirs in by_customer.items()}
    interactions = Interactions.of(split.seen)
    catalogue = interactions.products
    started = time.perf_counter()
    judged = judge(split, tuning, catalogue, tifu)
    table: dict[str, dict[str, Any]] = {**judged.table, "judge_s": {"seconds": time.perf_counter() - started}}
    for kind in FITS:
        started = time.perf_counter()
        spec = fit(interactions, kind, "offline", segments, names)
        table[kind] |= {"fit_s": time.perf_counter() - started, "bytes": len(spec.model_dump_json())}
    table.update(implicit_als(interactions, split.truth, len(catalogue), split.history))
    if segments:
        table["popular in the customer's segment"] = scores(
            lambda c: (spec.popular_in.get(segments.get(c, ""), []) or spec.popular)[:10],
            split.truth,
            len(catalogue),
            bought=split.history,
        )
    table["chosen"] = {"name": judged.best, "repeat_weight": judged.repeat_weight}
    return table


ALS_GRID = ((64, 0.05, 10.0), (128, 0.1, 20.0), (64, 0.1, 40.0))  # factors, regularization, alpha


def implicit_als(
    interactions: Interactions, truth: dict[str, frozenset[str]], catalogue: int,
    bought: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``implicit``'s ALS on the same interactions, in its own virtualenv (its pins are its own),
    with a small grid: each setting's scores (the best is the baseline to beat)."""
    python = os.environ.get("IMPLICIT_PYTHON")
    if not python:
        return {}
    row = {c: i for i, c in enumerate(interactions.customers)}
    customers = [c for c in truth if c in row]
    found = {}
    with tempfile.TemporaryDirectory() as folder:
        sparse.save_npz(f"{folder}/x.npz", interactions.matrix.tocsr())
        Path(f"{folder}/rows.json").write_text(json.dumps([row[c] for c in customers]))
        for factors, regularization, alpha in ALS_GRID:
            script = str(Path(__file__).with_name("implicit_als.py"))
            command = [python, script, f"{folder}/x.npz", f"{folder}/rows.json", str(factors), str(regularization),
                       str(alpha), "15"]  # fmt: skip
            result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            top = {c: [interactions.products[j] for j in ids] for c, ids in zip(customers, result["top"], strict=True)}
            name = f"implicit ALS ({factors} factors, reg {regularization}, alpha {alpha})"
            found[name] = {**scores(top.__getitem__, truth, catalogue, bought=bought), "fit_s": result["fit_s"],
                           "bytes": 0}  # fmt: skip
    return found


def report(table: dict[str, dict[str, Any]]) -> None:
    print(f"   {'model':<52} {'HR@10':>6} {'NDCG@10':>8} {'recall':>7} {'MAP@10':>7} {'coverage':>8}"
          f" {'rep R':>6} {'rep N':>6} {'exp R':>6} {'exp N':>6}   fit, artifact")  # fmt: skip
    for name, row in table.items():
        if "ndcg" not in row:
            continue
        artifact = f", {row['bytes'] / 1e6:.1f} MB" if row.get("bytes") else ""
        extra = f"   {row['fit_s']:.1f} s{artifact}" if "fit_s" in row else ""
        weight = f" (repeat weight {row['repeat_weight']:.2f})" if "repeat_weight" in row else ""
        parts = "".join(f" {row.get(m, float('nan')):>6.3f}"
                        for m in ("repeat_recall", "repeat_ndcg", "explore_recall", "explore_ndcg"))  # fmt: skip
        print(f"   {name + weight:<52} {row['hr']:>6.3f} {row['ndcg']:>8.3f} {row['recall']:>7.3f} {row['map']:>7.3f}"
              f" {row['coverage']:>8.1%}{parts}{extra}")  # fmt: skip
    print(f"   chosen: {table['chosen']['name']}; judged in {table['judge_s']['seconds']:.0f} s")


def touch_cost(repeats: int = 2_000) -> dict[str, float]:
    """What the bounded product record costs a stream write: folding one ``Product Viewed`` into
    a profile with no products and into one with the full ``MAX_PRODUCTS``, and the stored item's
    size for each (DynamoDB bills writes by the KB)."""
    from datetime import UTC, datetime, timedelta

    from audience.adapters.profile_items import to_item
    from audience.domain.events import parse_request
    from audience.domain.folding import fold
    from audience.domain.profile import MAX_PRODUCTS, PositionedMessage, Profile, StreamPosition, Touch

    now = datetime(2026, 11, 30, tzinfo=UTC)
    currencies = Currencies("USD", {})
    view = parse_request({"type": "track", "event": "Product Viewed", "userId": "u1",
                          "properties": {"product_id": "p-new"}}, now, currencies)[0]  # fmt: skip
    empty = Profile(customer_id="u1")
    full = empty.model_copy(update={"products": {f"p{i:05d}": Touch(1, 2, 1, now - timedelta(minutes=i))
                                                 for i in range(MAX_PRODUCTS)}})  # fmt: skip
    found = {}
    for name, profile in (("none", empty), ("full", full)):
        timings = []
        for n in range(repeats):
            event = PositionedMessage(view, StreamPosition("shard", "u1", n))
            started = time.perf_counter()
            fold(profile, [event], currencies, now)
            timings.append(time.perf_counter() - started)
        found[f"{name}_us"] = sorted(timings)[len(timings) // 2] * 1e6
        found[f"{name}_kb"] = len(json.dumps(to_item(profile), default=str)) / 1024
    return found


def report_touch_cost(cost: dict[str, float]) -> None:
    print(
        f"   a Product Viewed folded into a profile with no products {cost['none_us']:.0f} us, with the full 200"
        f" {cost['full_us']:.0f} us; the stored item {cost['none_kb']:.1f} KB -> {cost['full_kb']:.1f} KB"
    )


if __name__ == "__main__":
    report(evaluate(segments_of_online_retail()))
    report_touch_cost(touch_cost())
