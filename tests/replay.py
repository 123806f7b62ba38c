"""A real order history as Segment messages, replayed through the embedded stack's webhook as an
SDK would send it (retrying what fails), and the profiles it leaves, for comparing two replays.

Online Retail II: each invoice of a customer becomes a ``Product Viewed`` of its first line a
minute before an ``Order Completed`` with its ``products[]``; message ids are fixed, so a resent
batch is recognised."""

from __future__ import annotations

import csv
import gzip
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from embedded.demo import get, post
from tests.data import RETAIL

# What differs between two replays of the same history by design: the ids, and what the
# (possibly shared) stack's models and rules made of the profile at the moment it was read.
NOT_COMPARED = ("customerId", "identities", "segments", "segment", "tier", "moves", "predictions", "updatedAt",
                "experiments", "exposures")  # fmt: skip


def _invoices(customers: int) -> Iterator[tuple[str, str, datetime, list[dict[str, Any]]]]:
    lines: dict[str, list[dict[str, str]]] = defaultdict(list)
    chosen: list[str] = []
    with gzip.open(RETAIL, "rt", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            customer, invoice = row["Customer ID"], row["Invoice"]
            if not customer or invoice.startswith("C") or float(row["Quantity"]) <= 0 or float(row["Price"]) <= 0:
                continue
            if customer not in chosen:
                if len(chosen) == customers:
                    continue
                chosen.append(customer)
            lines[invoice].append(row)
    for invoice, rows_ in lines.items():
        when = datetime.strptime(rows_[0]["InvoiceDate"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        products = [{"product_id": r["StockCode"], "name": r["Description"], "price": float(r["Price"]),
                     "quantity": int(float(r["Quantity"]))} for r in rows_]  # fmt: skip
        yield rows_[0]["Customer ID"].split(".")[0], invoice, when, products


def online_retail_messages(customers: int, prefix: str) -> list[dict[str, Any]]:
    """The first ``customers`` customers' invoices as Segment messages, in time order."""
    messages = []
    for customer, invoice, when, products in _invoices(customers):
        user = f"{prefix}{customer}"
        total = sum(Decimal(str(p["price"])) * p["quantity"] for p in products)
        viewed = {"product_id": products[0]["product_id"], "name": products[0]["name"]}
        before = _iso(when - timedelta(minutes=1))
        messages.append({"type": "track", "event": "Product Viewed", "userId": user, "properties": viewed,
                         "messageId": f"{prefix}{invoice}-view", "timestamp": before})  # fmt: skip
        messages.append({"type": "track", "event": "Order Completed", "userId": user,
                         "messageId": f"{prefix}{invoice}-order", "timestamp": _iso(when),
                         "properties": {"order_id": f"{prefix}{invoice}", "total": float(total), "currency": "GBP",
                                        "products": products}})  # fmt: skip
    return sorted(messages, key=lambda m: m["timestamp"])


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def replay(api: str, messages: list[dict[str, Any]], batch_size: int = 100) -> None:
    """POST every batch to the webhook; a failed POST is sent again, as SDKs do (``post`` retries)."""
    for start in range(0, len(messages), batch_size):
        status, body = post(f"{api}/v1/events", {"batch": messages[start : start + batch_size]})
        if status != 202:
            raise AssertionError(f"batch at {start} refused: {status} {body}")


def wait_for_profiles(api: str, messages: list[dict[str, Any]], timeout: float = 300) -> dict[str, dict[str, Any]]:
    """Every customer's profile once it has counted all of its messages (or AssertionError)."""
    expected = Counter(m["userId"] for m in messages)
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(expected) and time.monotonic() < deadline:
        for user in sorted(set(expected) - set(found)):
            status, profile = get(f"{api}/v1/customers/{urllib.parse.quote(user)}")
            if status == 200 and sum(profile["eventCounts"].values()) >= expected[user]:
                found[user] = profile
        time.sleep(0.5)
    missing = sorted(set(expected) - set(found))
    assert not missing, f"{len(missing)} profiles incomplete after {timeout:.0f}s: {missing[:5]}"
    return found


def comparable(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile without what differs by design (and without when a move was made)."""
    kept = {k: v for k, v in profile.items() if k not in NOT_COMPARED}
    if isinstance(kept.get("lastSegmentChange"), dict):
        kept["lastSegmentChange"] = {k: v for k, v in kept["lastSegmentChange"].items() if k != "at"}
    return kept
