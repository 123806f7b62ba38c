"""Offline evaluation: leave the last basket out.

Each customer with at least two baskets (invoices) has their last one held out as the truth;
every model and baseline sees the same interactions (every other basket) and ranks the top ``k``
products for the customer, products they bought before included (in retail, people buy again).
HR@k: the share of customers with at least one hit; NDCG@k with binary gains; MAP@k (average
precision over min(k, |truth|)); coverage: the share of the catalogue recommended to anyone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from audience.recommend.spec import RecommenderSpec

Basket = tuple[str, datetime, str, frozenset[str]]  # customer, time, invoice, products


@dataclass(frozen=True)
class Split:
    seen: list[tuple[str, str]]  # (customer, product) the models may learn from
    truth: dict[str, frozenset[str]]  # customer -> the products of their last basket
    history: dict[str, dict[str, float]]  # customer -> what they bought before it


def leave_last_basket_out(baskets: Iterable[Basket]) -> Split:
    by_customer: dict[str, list[Basket]] = defaultdict(list)
    for basket in baskets:
        by_customer[basket[0]].append(basket)
    seen, truth, history = [], {}, {}
    for customer, theirs in by_customer.items():
        theirs.sort(key=lambda b: (b[1], b[2]))
        earlier = theirs[:-1] if len(theirs) >= 2 else theirs
        if len(theirs) >= 2:
            truth[customer] = theirs[-1][3]
        bought = {p for b in earlier for p in b[3]}
        seen += [(customer, p) for p in bought]
        history[customer] = dict.fromkeys(bought, 1.0)
    return Split(seen, truth, history)


def leave_latest_out(histories: Iterable[tuple[str, Mapping[str, tuple[int, datetime]]]]) -> Split:
    """The same protocol from what profiles keep (per product: orders that held it, last time):
    a customer's latest purchases (the products last bought at their latest purchase time) are
    the truth when they bought something earlier too; a product of the latest purchase bought in
    an earlier order too (two orders or more) is also history, as in the basket protocol."""
    seen, truth, history = [], {}, {}
    for customer, products in histories:
        bought = {p: (purchases, last) for p, (purchases, last) in products.items() if purchases > 0}
        latest = max((last for _, last in bought.values()), default=None)
        newest = frozenset(p for p, (_, last) in bought.items() if last == latest)
        earlier = {p for p, (purchases, _) in bought.items() if p not in newest or purchases >= 2}
        if earlier:
            truth[customer] = newest
        kept = earlier or set(bought)
        seen += [(customer, p) for p in kept]
        history[customer] = dict.fromkeys(kept, 1.0)
    return Split(seen, truth, history)


def top(
    spec: RecommenderSpec, history: Mapping[str, Mapping[str, float]], segments: Mapping[str, str], k: int = 10
) -> Callable[[str], list[str]]:
    """What ``spec`` recommends to a customer from their ``history``: the ranking ``scores`` judges."""
    return lambda c: [r.product_id for r in spec.recommend(history.get(c, {}), k, segments.get(c))[0]]


def scores(
    recommend: Callable[[str], Sequence[str]], truth: dict[str, frozenset[str]], catalogue: int, k: int = 10
) -> dict[str, float]:
    hits = ndcg = average_precision = 0.0
    shown: set[str] = set()
    for customer, wanted in truth.items():
        ranked = list(recommend(customer))[:k]
        shown.update(ranked)
        found = [p in wanted for p in ranked]
        hits += any(found)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(wanted))))
        ndcg += sum(1 / math.log2(i + 2) for i, hit in enumerate(found) if hit) / ideal
        precision_sum, seen_hits = 0.0, 0
        for i, hit in enumerate(found):
            if hit:
                seen_hits += 1
                precision_sum += seen_hits / (i + 1)
        average_precision += precision_sum / min(k, len(wanted))
    n = max(len(truth), 1)
    return {"hr": hits / n, "ndcg": ndcg / n, "map": average_precision / n, "coverage": len(shown) / max(catalogue, 1),
            "customers": len(truth)}  # fmt: skip
