"""The next-basket baselines, the repeat and explore metrics, and the blend of the customer's own
repeat signal with the item model, on tiny hand-made data where the right answer is known."""

from __future__ import annotations

import math

import pytest

from audience.recommend.baselines import TifuKnn, gp_topfreq, p_topfreq, tifu_vectors
from audience.recommend.evaluation import Split, scores, tune_repeat_weight
from audience.recommend.spec import RecommenderSpec
from audience.recommend.training import repeat_rates


def test_p_topfreq_ranks_the_customers_own_purchases_by_count_then_recency() -> None:
    bought = {"tea": 3, "cup": 1, "cake": 3}
    assert p_topfreq(bought) == ["cake", "tea", "cup"]  # ties: the product id
    assert p_topfreq(bought, recency={"tea": 0.9, "cake": 0.1}) == ["tea", "cake", "cup"]
    assert p_topfreq(bought, k=1) == ["cake"] and p_topfreq({}) == []


def test_gp_topfreq_fills_with_popular_products_the_customer_did_not_buy() -> None:
    assert gp_topfreq({"tea": 2, "cup": 1}, ["lamp", "tea", "jam"], k=4) == ["tea", "cup", "lamp", "jam"]
    assert gp_topfreq({}, ["lamp", "jam"], k=1) == ["lamp"]


def test_tifu_vectors_decay_baskets_within_groups_and_groups_across() -> None:
    # groups of 2 from the newest back: [{a}] then [{a, b}, {b}]; each decays by half
    vector = tifu_vectors([frozenset("a"), frozenset("ab"), frozenset("b")], 2, basket_decay=0.5, group_decay=0.5)
    # a: 0.5/2 (older group) * 1/1 + 1/2 (newer group) * 0.5/2 = 0.375; b: 1/2 * (0.5/2 + 1/2) = 0.375
    assert vector == pytest.approx({"a": 0.375, "b": 0.375})
    newest_counts_more = tifu_vectors([frozenset("a"), frozenset("b")], 7, basket_decay=0.5)
    assert newest_counts_more == pytest.approx({"a": 0.25, "b": 0.5})


def test_tifu_knn_blends_the_customers_vector_with_their_nearest_customers_not_themselves() -> None:
    vectors = {"c1": {"a": 1.0}, "c2": {"a": 1.0, "b": 1.0}, "c3": {"a": 1.0, "b": 1.0}, "c4": {"z": 1.0}}
    ranked = TifuKnn(neighbours=2, alpha=0.5).ranker(vectors, ["c1", "c4"])
    assert ranked("c1") == ["a", "b"]  # a: 0.5 * 1 + 0.5 * 1; b: 0.5 * 1 (from c2 and c3)
    assert "z" in ranked("c4") and ranked("nobody") == []
    alone = TifuKnn(neighbours=3, alpha=1.0).ranker(vectors, ["c2"])
    assert alone("c2") == ["a", "b"]  # alpha 1: the customer's own vector only


def test_repeat_and_explore_are_judged_on_their_part_of_the_truth() -> None:
    truth = {"a": frozenset({"tea", "cake"}), "b": frozenset({"lamp"})}
    bought = {"a": {"tea": 1.0}, "b": {"cup": 1.0}}
    ranked = {"a": ["cake", "x", "tea"], "b": ["cup", "lamp"]}
    got = scores(ranked.__getitem__, truth, catalogue=10, bought=bought)
    assert got["recall"] == 1.0 and got["repeat_customers"] == 1 and got["explore_customers"] == 2
    assert got["repeat_recall"] == 1.0 and got["repeat_ndcg"] == pytest.approx(1 / math.log2(4))  # tea third
    assert got["explore_recall"] == 1.0 and got["explore_ndcg"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


SPEC = RecommenderSpec(
    version="v1", kind="ease", names={"tea": "Green tea"}, popular=["lamp", "tea", "cup", "cake"],
    neighbours={"tea": [("cup", 0.8), ("cake", 0.4)]}, repeat_weight=0.5, repeat_rates={"tea": 1.0, "jam": 0.25},
)  # fmt: skip


def test_the_blend_adds_the_repeat_signal_weighed_by_how_often_a_product_is_bought_again() -> None:
    repeat = {"tea": (2.0, "you buy this every month"), "jam": (2.0, "you bought this twice")}
    found, personalized = SPEC.recommend({"tea": 1.0, "jam": 1.0}, n=4, repeat=repeat)
    # tea: 0.5 * (2 * 1) / 2; jam: 0.5 * (2 * 0.5) / 2; cup 0.5 * 0.8 / 0.8; cake: 0.5 * 0.4 / 0.8
    assert personalized and [(r.product_id, r.score) for r in found] == [
        ("cup", 0.5), ("tea", 0.5), ("cake", 0.25), ("jam", 0.25)]  # fmt: skip
    reasons = ["bought with Green tea", "you buy this every month", "bought with Green tea", "you bought this twice"]
    assert [r.reason for r in found] == reasons
    discovery, _ = SPEC.recommend({"tea": 1.0, "jam": 1.0}, n=4, exclude=frozenset({"tea", "jam"}), repeat=repeat)
    assert [(r.product_id, r.reason) for r in discovery] == [
        ("cup", "bought with Green tea"), ("cake", "bought with Green tea"), ("lamp", "popular")]  # fmt: skip
    item_alone, _ = SPEC.blended(0.0).recommend({"tea": 1.0}, n=2, repeat=repeat)
    assert [(r.product_id, r.score) for r in item_alone] == [("cup", 0.8), ("cake", 0.4)]


def test_the_repeat_weight_is_the_best_on_the_validation_split() -> None:
    validation = Split(seen=[("a", "tea")], truth={"a": frozenset({"tea"})}, history={"a": {"tea": 1.0}},
                       counts={"a": {"tea": 1}}, repeat={"a": {"tea": 1.0}})  # fmt: skip
    weight, table = tune_repeat_weight(SPEC, validation)
    # the item model alone puts tea fourth (cup, cake, then the popular lamp and tea); the repeat signal first
    assert table[0.0] == pytest.approx(1 / math.log2(5)) and table[1.0] == 1.0
    assert weight > 0.5 and table[weight] == 1.0


def test_repeat_rates_are_the_smoothed_share_of_buyers_who_bought_again() -> None:
    counts = {"a": {"tea": 3, "cup": 1}, "b": {"tea": 1}, "c": {"tea": 2}}
    assert repeat_rates(counts, ["tea", "cup", "lamp"]) == {"tea": round(3 / 5, 4), "cup": round(1 / 3, 4)}
