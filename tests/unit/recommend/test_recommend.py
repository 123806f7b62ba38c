"""Recommendations: the item models, the served spec's ranking, reasons and fallbacks, the
offline metrics, and (with ../shared/data) the offline targets on Online Retail II."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from audience.domain.profile import Profile, Touch
from audience.recommend.evaluation import leave_last_basket_out, scores
from audience.recommend.spec import RecommenderSpec
from audience.recommend.training import Interactions, cosine, ease, fit
from audience.services.artifacts import Artifacts, live_recommender
from audience.services.recommendations import recommend
from audience.services.recommender_fit import fit_and_store
from tests.data import RETAIL, needs
from tests.unit.fakes import MemoryBucket

NOW = datetime(2026, 11, 30, tzinfo=UTC)

PAIRS = [("a", "tea"), ("a", "cup"), ("b", "tea"), ("b", "cup"), ("c", "tea"), ("c", "cake"), ("d", "lamp")]


def test_cosine_is_co_occurrence_over_the_root_of_the_counts_and_ease_links_what_is_bought_together() -> None:
    interactions = Interactions.of([*PAIRS, ("a", "tea")])  # a pair seen twice counts once
    products = interactions.products  # cake, cup, lamp, tea
    similarity = cosine(interactions.matrix)
    assert similarity[products.index("tea"), products.index("cup")] == pytest.approx(2 / math.sqrt(3 * 2))
    assert similarity[products.index("lamp")].sum() == 0 and np.all(np.diag(similarity) == 0)
    weights = ease(interactions.matrix, penalty=0.5)
    assert (
        weights[products.index("tea"), products.index("cup")] > weights[products.index("tea"), products.index("lamp")]
    )


def test_the_spec_ranks_by_summed_weights_names_the_reason_and_falls_back_to_popular_lists() -> None:
    spec = RecommenderSpec(
        version="v1", kind="cosine", names={"tea": "Green tea"}, popular=["lamp", "tea", "cup", "cake"],
        neighbours={"tea": [("cup", 0.8), ("cake", 0.4)], "cup": [("tea", 0.8), ("cake", 0.5)]},
        popular_in={"Champions": ["cake", "lamp"]},
    )  # fmt: skip
    found, personalized = spec.recommend({"tea": 1.0, "cup": 1.0}, n=2)
    assert personalized and [r.product_id for r in found] == ["cake", "cup"]  # cake 0.4 + 0.5 beats cup's 0.8
    assert found[0].score == pytest.approx(0.9) and found[0].reason == "bought with cup"
    assert found[1].reason == "bought with Green tea"

    found, _ = spec.recommend({"tea": 1.0}, n=4, segment="Champions", exclude=frozenset({"tea"}))
    assert [(r.product_id, r.reason) for r in found] == [
        ("cup", "bought with Green tea"), ("cake", "bought with Green tea"), ("lamp", "popular in Champions"),
    ]  # fmt: skip
    cold, personalized = spec.recommend({}, n=3, segment="Champions")
    assert not personalized and [r.product_id for r in cold] == ["cake", "lamp", "tea"]
    assert [r.reason for r in cold] == ["popular in Champions", "popular in Champions", "popular"]


def test_fit_exports_neighbours_and_the_popular_lists_per_segment() -> None:
    spec = fit(Interactions.of(PAIRS), "cosine", "v1", segments={"a": "Champions", "b": "Champions", "d": "Lost"})
    assert spec.popular[:2] == ["tea", "cup"] and spec.popular_in["Lost"] == ["lamp"]
    assert spec.neighbours["cup"][0][0] == "tea" and "lamp" not in spec.neighbours


def test_the_offline_metrics_on_a_worked_example() -> None:
    at = [datetime(2010, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    split = leave_last_basket_out([
        ("a", at[0], "1", frozenset({"tea"})), ("a", at[1], "2", frozenset({"cup", "cake"})),
        ("b", at[0], "3", frozenset({"lamp"})),  # one basket: learned from, not judged
    ])  # fmt: skip
    assert split.truth == {"a": frozenset({"cup", "cake"})} and sorted(split.seen) == [("a", "tea"), ("b", "lamp")]
    got = scores(lambda c: ["lamp", "cake", "cup"], split.truth, catalogue=4, k=10)
    ideal = 1 + 1 / math.log2(3)
    assert got["hr"] == 1.0 and got["ndcg"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 2) and got["coverage"] == 0.75


@needs(RETAIL)
def test_on_online_retail_ii_the_item_models_beat_popularity_by_half_again() -> None:
    from tests.benchmarks.recommendations import evaluate

    table = evaluate()
    best = max(("cosine", "ease"), key=lambda k: table[k]["ndcg"])
    assert best == "ease" and table[best]["ndcg"] >= 1.5 * table["global popularity"]["ndcg"], table
    assert table["global popularity"]["customers"] == table[best]["customers"] == 2_872  # with two invoices or more


def _bought(customer: str, *products: tuple[str, int]) -> Profile:
    """A customer who bought each product on its day (of November 2026)."""
    touched = {p: Touch(1, 0, 0, datetime(2026, 11, day, tzinfo=UTC)) for p, day in products}
    return Profile(customer_id=customer, products=touched)


def test_the_retrain_fits_judges_stores_and_puts_in_force_a_model_that_beats_popularity() -> None:
    profiles = [
        profile
        for pair in range(30)  # three bought a then b later; a fourth bought both at once (the co-occurrence)
        for profile in (*(_bought(f"c{pair}-{i}", (f"a{pair:02d}", 1), (f"b{pair:02d}", 5)) for i in range(3)),
                        _bought(f"c{pair}-both", (f"a{pair:02d}", 2), (f"b{pair:02d}", 2)))
    ]  # fmt: skip
    bucket = MemoryBucket()
    bucket.objects["catalogue/import-1.json"] = b'{"b07": {"name": "Blue cup", "category": "Kitchen"}}'
    segments = {p.customer_id: "Champions" for p in profiles}

    metrics = fit_and_store([(p.customer_id, p.products) for p in profiles], segments, "v1", Artifacts(bucket), None)

    assert metrics is not None and metrics["heldOut"] == 90 and metrics["promoted"], metrics
    offline = metrics["offline"]
    assert offline[metrics["kind"]]["hr"] == 1.0 and offline["global popularity"]["hr"] < 0.5
    live = live_recommender(bucket).get(NOW)
    assert live is not None and live.version == "v1" and bucket.objects["models/v1/recommender.json"]

    customer = _bought("new", ("a07", 20))
    found = recommend(customer, live, n=3)
    assert found.personalized and found.items[0].product_id == "b07" and found.items[0].name == "Blue cup"
    assert found.items[0].reason == "bought with a07" and found.items[0].category == "Kitchen"
    assert [i.product_id for i in recommend(customer, live, n=3, category="Kitchen").items] == ["b07"]
    assert "a07" not in [i.product_id for i in recommend(customer, live, n=60, exclude_purchased=True).items]
    refused = customer.consented({"personalization": False}, NOW, "api")
    plain = recommend(refused, live, n=3)
    assert not plain.personalized and all(i.reason == "popular" for i in plain.items)

    again = fit_and_store([(p.customer_id, p.products) for p in profiles], segments, "v2", Artifacts(bucket), live)
    assert again is not None and not again["promoted"] and live_recommender(bucket).get(NOW).version == "v1"  # type: ignore[union-attr]
