"""Recommendations on Online Retail II (../shared/data; skipped when absent): the offline table
of docs/models.md as tests that fail when a model regresses, and the retrain's gate on the
imported profiles (its split is the file's, views change nothing, the blend is put in force)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from audience.domain.events import parse_request
from audience.domain.folding import fold
from audience.domain.money import Currencies
from audience.domain.profile import MAX_PRODUCTS, PositionedMessage, Profile, StreamPosition
from audience.recommend.evaluation import leave_latest_out
from audience.services.artifacts import Artifacts
from audience.services.recommender_fit import fit_and_store
from tests.data import RETAIL, needs
from tests.real_data import AS_OF
from tests.unit.fakes import MemoryBucket

pytestmark = needs(RETAIL)

BASELINES = ("global popularity", "P-TopFreq", "GP-TopFreq", "TIFU-KNN", "ease", "cosine")
# measured (docs/models.md): NDCG@10 and HR@10 of the last baskets of 2,872 customers
MEASURED = {"ease + repeat": (0.286, 0.725), "ease": (0.195, 0.612), "TIFU-KNN": (0.278, 0.720),
            "GP-TopFreq": (0.244, 0.677), "P-TopFreq": (0.243, 0.670), "global popularity": (0.086, 0.434)}  # fmt: skip


@pytest.fixture(scope="module")
def table() -> dict[str, dict[str, Any]]:
    from tests.benchmarks.recommendations import evaluate

    return evaluate()


def test_the_blend_beats_every_baseline_and_reaches_the_target_on_the_last_baskets(
    table: dict[str, dict[str, Any]],
) -> None:
    blend = table["ease + repeat"]
    assert table["chosen"] == {"name": "ease + repeat", "repeat_weight": blend["repeat_weight"]}
    assert 0.5 <= blend["repeat_weight"] <= 0.9  # tuned on the second-to-last baskets
    assert blend["ndcg"] >= 0.215 and blend["ndcg"] >= 0.281 and blend["hr"] >= 0.715, blend  # measured 0.286, 0.725
    for name in BASELINES:
        assert blend["ndcg"] > table[name]["ndcg"], (name, table[name])
    assert all(table[name]["customers"] == 2_872 for name in MEASURED)


def test_the_baselines_measure_what_the_documented_table_says(table: dict[str, dict[str, Any]]) -> None:
    for name, (ndcg, hr) in MEASURED.items():
        assert table[name]["ndcg"] == pytest.approx(ndcg, abs=0.003), name
        assert table[name]["hr"] == pytest.approx(hr, abs=0.005), name
    # repeat carries the accuracy; the item model alone finds more new products
    assert table["ease + repeat"]["repeat_ndcg"] > table["GP-TopFreq"]["repeat_ndcg"] > 0.35
    assert table["ease"]["explore_ndcg"] > 0.035 > table["ease + repeat"]["explore_ndcg"]
    assert table["P-TopFreq"]["explore_recall"] == 0.0


@pytest.fixture(scope="module")
def profiles() -> list[Profile]:
    from tests.real_data import imported_profiles

    return [p for p in imported_profiles() if p.products]


def test_the_gates_split_of_the_profiles_is_the_files_and_views_after_an_order_change_nothing(
    profiles: list[Profile],
) -> None:
    from tests.benchmarks.recommendations import baskets

    split = leave_latest_out((p.customer_id, p.products) for p in profiles)
    by_customer = defaultdict(list)
    for basket in baskets()[0]:
        by_customer[basket[0]].append(basket)
    same = differ = 0
    for customer, truth in split.truth.items():
        theirs = by_customer[customer]
        latest = max(b[1] for b in theirs)
        if len({p for b in theirs for p in b[3]}) <= MAX_PRODUCTS:  # (a profile keeps the newest 200)
            assert truth == frozenset(p for b in theirs if b[1] == latest for p in b[3]), customer
        counts: dict[str, int] = defaultdict(int)
        for basket in (b for b in theirs if b[1] < latest):
            for product in basket[3]:
                counts[product] += 1
        assert all(split.counts[customer].get(p, 0) <= counts.get(p, 0) for p in truth), customer  # a leak: more
        if len({p for b in theirs for p in b[3]}) <= MAX_PRODUCTS:  # (a profile keeps the newest 200)
            same, differ = same + (split.counts[customer] == counts), differ + (split.counts[customer] != counts)
    # the few that differ: lines the import keeps and the benchmark's own reading leaves out
    assert len(split.truth) == 2_872 and same > 2_600 and differ < 30, (same, differ)

    viewed = [_viewed_after_the_latest_order(p) for p in profiles]
    again = leave_latest_out((p.customer_id, p.products) for p in viewed)
    assert again.truth == split.truth and sorted(again.seen) == sorted(split.seen)
    assert again.counts == split.counts and again.repeat == split.repeat


def _viewed_after_the_latest_order(profile: Profile) -> Profile:
    """The profile after its customer viewed and added to their cart every product of their
    latest order, a day later (what once moved a product's "last purchase" into the held-out order)."""
    latest = max(t.last_bought for t in profile.products.values() if t.last_bought)
    events = []
    for product, touch in profile.products.items():
        if touch.last_bought == latest:
            for name in ("Product Viewed", "Product Added"):
                at = (latest + timedelta(days=1)).isoformat()
                body = {"type": "track", "event": name, "userId": profile.customer_id, "timestamp": at,
                        "properties": {"product_id": product}}  # fmt: skip
                events.append(parse_request(body, AS_OF, Currencies("GBP", {}))[0])
    positioned = [PositionedMessage(e, StreamPosition("s", profile.customer_id, i)) for i, e in enumerate(events)]
    return fold(profile, positioned, Currencies("GBP", {}), AS_OF)[0]


def test_the_retrains_gate_puts_the_blend_in_force_over_every_baseline(profiles: list[Profile]) -> None:
    bucket = MemoryBucket()
    metrics = fit_and_store([(p.customer_id, p.products) for p in profiles], {}, "v1", Artifacts(bucket), None)
    assert metrics is not None and metrics["promoted"] and metrics["chosen"] == "ease + repeat", metrics["why"]
    offline = metrics["offline"]
    chosen = offline["ease + repeat"]
    assert chosen["ndcg"] >= 0.285 and chosen["customers"] == metrics["heldOut"] > 1_900  # measured 0.2905, 1,952
    for name in BASELINES:
        assert chosen["ndcg"] > offline[name]["ndcg"], (name, offline[name])
    assert offline["ease + repeat"]["ndcg"] / offline["global popularity"]["ndcg"] == pytest.approx(3.44, abs=0.1)
