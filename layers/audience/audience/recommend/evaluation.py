"""Offline evaluation: leave the last basket out.

Each customer with at least two baskets (invoices) has their last one held out as the truth;
every model and baseline sees the same interactions (every other basket) and ranks the top ``k``
products for the customer, products they bought before included (in retail, people buy again).
HR@k: the share of customers with at least one hit; NDCG@k with binary gains; MAP@k (average
precision over min(k, |truth|)); recall@k: the share of the truth found, per customer; coverage:
the share of the catalogue recommended to anyone. Repeat and explore (Li et al., TOIS 2023) are
the same recall and NDCG against the part of the truth the customer bought before (repeat) or
never bought (explore), over the customers whose truth has such a part.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from audience.domain.profile import Touch, decay
from audience.recommend.spec import RecommenderSpec

Basket = tuple[str, datetime, str, frozenset[str]]  # customer, time, invoice, products
WEIGHTS = tuple(i / 10 for i in range(11))  # the repeat weights tried


@dataclass(frozen=True)
class Split:
    seen: list[tuple[str, str]]  # (customer, product) the models may learn from
    truth: dict[str, frozenset[str]]  # customer -> the products of their last basket
    history: dict[str, dict[str, float]]  # customer -> what they bought before it (1 each)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # ... and in how many orders
    repeat: dict[str, dict[str, float]] = field(default_factory=dict)  # ... decayed to the held-out time

    def only(self, customers: Callable[[str], bool]) -> Split:
        """The same split judged on ``customers`` only (everyone's history is still learned from)."""
        return Split(self.seen, {c: t for c, t in self.truth.items() if customers(c)}, self.history, self.counts,
                     self.repeat)  # fmt: skip


def leave_last_basket_out(baskets: Iterable[Basket]) -> Split:
    by_customer: dict[str, list[Basket]] = defaultdict(list)
    for basket in baskets:
        by_customer[basket[0]].append(basket)
    seen: list[tuple[str, str]] = []
    truth: dict[str, frozenset[str]] = {}
    history: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    repeat: dict[str, dict[str, float]] = {}
    for customer, theirs in by_customer.items():
        theirs.sort(key=lambda b: (b[1], b[2]))
        earlier = theirs[:-1] if len(theirs) >= 2 else theirs
        if len(theirs) >= 2:
            truth[customer] = theirs[-1][3]
        at = theirs[-1][1]
        counts[customer], repeat[customer] = defaultdict(int), defaultdict(float)
        for _, when, _, products in earlier:
            for p in products:
                counts[customer][p] += 1
                repeat[customer][p] += decay((at - when).total_seconds() / 86_400)
        seen += [(customer, p) for p in counts[customer]]
        history[customer] = dict.fromkeys(counts[customer], 1.0)
    return Split(seen, truth, history, counts, repeat)


def leave_latest_out(histories: Iterable[tuple[str, Mapping[str, Touch]]]) -> Split:
    """The same protocol from what profiles keep (per product: orders that held it, the last
    purchase, the decayed purchase count): a customer's latest purchases (the products last bought
    at their latest purchase time) are the truth when they bought something earlier too. The
    held-out order is taken out of everything learned from: a product of it bought in an earlier
    order too stays in the history with one order less (one first bought at that very time, in
    two orders then, does not); views and cart adds are not purchases."""
    seen: list[tuple[str, str]] = []
    truth: dict[str, frozenset[str]] = {}
    history: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    repeat: dict[str, dict[str, float]] = {}
    for customer, products in histories:
        bought = {p: t for p, t in products.items() if t.purchases > 0 and t.last_bought is not None}
        latest = max((t.last_bought for t in bought.values() if t.last_bought), default=None)
        if latest is None:
            continue
        newest = frozenset(p for p, t in bought.items() if t.last_bought == latest)
        only_now = {p for p in newest if bought[p].first_bought == latest}  # (two orders at that instant too)
        before = {p: 0 if p in only_now else t.purchases - (p in newest) for p, t in bought.items()}
        if any(before.values()):
            truth[customer] = newest
            kept = {p: n for p, n in before.items() if n > 0}
            decayed = {p: max(bought[p].repeat_at(latest) - (p in newest), 0.0) for p in kept}
        else:  # one purchase time: learned from, not judged
            kept = {p: t.purchases for p, t in bought.items()}
            decayed = {p: t.repeat_at(latest) for p, t in bought.items()}
        seen += [(customer, p) for p in kept]
        history[customer], counts[customer], repeat[customer] = dict.fromkeys(kept, 1.0), kept, decayed
    return Split(seen, truth, history, counts, repeat)


def top(
    spec: RecommenderSpec, split: Split, segments: Mapping[str, str] | None = None, k: int = 10
) -> Callable[[str], list[str]]:
    """What ``spec`` recommends to a customer from their history in ``split`` (what they bought
    and, for a model that blends it in, how often and how lately): the ranking ``scores`` judges."""
    segments = segments or {}

    def ranked(customer: str) -> list[str]:
        repeat = {p: (r, "bought before") for p, r in split.repeat.get(customer, {}).items()}
        found, _ = spec.recommend(split.history.get(customer, {}), k, segments.get(customer), repeat=repeat)
        return [r.product_id for r in found]

    return ranked


def scores(
    recommend: Callable[[str], Sequence[str]], truth: Mapping[str, frozenset[str]], catalogue: int, k: int = 10,
    bought: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:  # fmt: skip
    """The metrics of the module's docstring; repeat and explore ones when ``bought`` says what
    each customer bought before."""
    totals: dict[str, float] = defaultdict(float)
    shown: set[str] = set()
    for customer, wanted in truth.items():
        ranked = list(recommend(customer))[:k]
        shown.update(ranked)
        found = [p in wanted for p in ranked]
        totals["hr"] += any(found)
        totals["ndcg"] += _ndcg(ranked, wanted, k)
        totals["recall"] += sum(found) / len(wanted)
        precision_sum, seen_hits = 0.0, 0
        for i, hit in enumerate(found):
            if hit:
                seen_hits += 1
                precision_sum += seen_hits / (i + 1)
        totals["map"] += precision_sum / min(k, len(wanted))
        if bought is not None:
            before = bought.get(customer, {})
            for part, items in (("repeat", wanted & before.keys()), ("explore", wanted - before.keys())):
                if items:
                    totals[f"{part}_customers"] += 1
                    totals[f"{part}_recall"] += len(items & set(ranked)) / len(items)
                    totals[f"{part}_ndcg"] += _ndcg(ranked, items, k)
    n = max(len(truth), 1)
    found_scores = {m: totals[m] / n for m in ("hr", "ndcg", "map", "recall")}
    found_scores |= {"coverage": len(shown) / max(catalogue, 1), "customers": len(truth)}
    if bought is not None:
        for part in ("repeat", "explore"):
            judged = totals[f"{part}_customers"]
            found_scores[f"{part}_customers"] = judged
            for metric in ("recall", "ndcg"):
                found_scores[f"{part}_{metric}"] = totals[f"{part}_{metric}"] / max(judged, 1)
    return found_scores


def _ndcg(ranked: Sequence[str], wanted: frozenset[str] | set[str], k: int) -> float:
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(wanted))))
    return sum(1 / math.log2(i + 2) for i, p in enumerate(ranked[:k]) if p in wanted) / ideal


def tune_repeat_weight(
    spec: RecommenderSpec, validation: Split, grid: Sequence[float] = WEIGHTS
) -> tuple[float, dict[float, float]]:
    """The weight of the customer's own repeat signal beside ``spec``'s item model with the best
    NDCG@10 on ``validation`` (never the split the model is then judged on), and each weight's."""
    found = {w: scores(top(spec.blended(w), validation), validation.truth, 1)["ndcg"] for w in grid}
    return max(found, key=lambda w: (found[w], -abs(w - 0.5))), found
