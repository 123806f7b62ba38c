"""Every customer, as the jobs read them: one scan of the profile table (parallel segments) that
keeps per customer only what a job needs, never the whole profile (a million must fit), and the
feature rows of the segmentation model. Packed as a fanned-out run's part (numpy, no pickle)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

import numpy as np

from audience.domain.profile import Profile, Touch
from audience.domain.segments import Segments
from audience.ports import ProfileScan
from audience.segmentation.features import FEATURES
from audience.segmentation.training import Matrix, feature_matrix
from audience.services.placement import Tiers
from audience.value.spec import OrderHistory

READ_CHUNK = 10_000  # profiles held at once while their features are taken


@dataclass(frozen=True)
class Customer:
    """What a job keeps per customer."""

    customer_id: str
    version: int
    segments: Segments | None
    tier_moves: bool = False  # predictions or a trigger rule's tier change (rescoring only)
    orders: OrderHistory | None = None  # order days (training only: the value model's input)
    products: Mapping[str, Touch] | None = None  # products touched (training only: the recommender's input)


def read_customers(
    profiles: ProfileScan,
    segments: int,
    now: datetime,
    only: int | None = None,
    tiers: Tiers | None = None,
    training: bool = False,
) -> tuple[list[Customer], Matrix]:
    """Every customer (redirects left out; for ``training``, those who refused analytics too)
    and their feature rows, read with ``segments`` parallel scans (or just scan segment ``only``);
    profiles are dropped as soon as their features are taken, ``READ_CHUNK`` at a time (and,
    with ``tiers``, whether their tier changes)."""

    def included(p: Profile) -> bool:
        return p.merged_into is None and (not training or p.allows("analytics"))

    def customer(p: Profile) -> Customer:
        orders = OrderHistory.of(p) if training and p.first_order_at is not None else None
        products = p.products if training else None
        return Customer(p.customer_id, p.version, p.segments, tiers is not None and tiers.moves(p, now), orders,
                        products)  # fmt: skip

    def read(segment: int) -> tuple[list[Customer], Matrix]:
        scanned = (p for p in profiles.scan(segment, segments) if included(p))
        found: list[Customer] = []
        parts: list[Matrix] = [np.empty((0, len(FEATURES)))]
        while chunk := list(islice(scanned, READ_CHUNK)):
            found += [customer(p) for p in chunk]
            parts.append(feature_matrix(chunk, now))
        return found, np.concatenate(parts)

    wanted = range(segments) if only is None else [only]
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        read_parts = list(pool.map(read, wanted))
    found = [c for part, _ in read_parts for c in part]
    x = np.concatenate([rows for _, rows in read_parts])
    order = sorted(range(len(found)), key=lambda i: found[i].customer_id)
    return [found[i] for i in order], x[order]


def row(values: Matrix) -> tuple[float | None, ...]:
    """A feature row as the spec scores it (NaN: not known)."""
    return tuple(None if np.isnan(v) else float(v) for v in values)


def pack(customers: list[Customer], x: Matrix) -> bytes:
    """Customers and their rows as one ``.npz`` (what a fanned-out training run keeps per segment)."""
    buffer = io.BytesIO()
    places = [c.segments.model_dump_json(by_alias=True) if c.segments else "" for c in customers]
    ids, versions = np.array([c.customer_id for c in customers], dtype=str), np.array([c.version for c in customers])
    orders = [c.orders or OrderHistory([], []) for c in customers]
    days = np.array([d for o in orders for d in o.days], dtype=np.int64)
    spend = np.array([v for o in orders for v in o.spend], dtype=float)
    sizes = np.array([len(o.days) for o in orders], dtype=np.int64)
    np.savez_compressed(buffer, x=x, ids=ids, versions=versions, segments=np.array(places, dtype=str), days=days,
                        spend=spend, sizes=sizes)  # fmt: skip
    return buffer.getvalue()


def unpack(data: bytes) -> tuple[list[Customer], Matrix]:
    with np.load(io.BytesIO(data), allow_pickle=False) as part:
        ends = np.cumsum(part["sizes"]).tolist()
        days, spend = part["days"].tolist(), part["spend"].tolist()
        orders = [OrderHistory(days[e - n : e], spend[e - n : e]) if n else None
                  for n, e in zip(part["sizes"].tolist(), ends, strict=True)]  # fmt: skip
        customers = [
            Customer(str(i), int(v), Segments.model_validate_json(str(s)) if s else None, orders=o)
            for i, v, s, o in zip(part["ids"], part["versions"], part["segments"], orders, strict=True)
        ]
        return customers, part["x"].reshape(len(customers), -1)
