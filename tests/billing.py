"""What DynamoDB bills, counted from the items themselves (../shared/REFERENCE.md, "What DynamoDB
bills"): a write unit per KB of the larger of the item before and after (double in a
transaction), a read unit per 4 KB read (strongly consistent; a Query or Scan sums its items
before rounding). Used by the tests and ``make bench`` to count what a write really costs:
moto does not report consumed capacity by size."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

KB = 1024


def value_size(value: dict[str, Any]) -> int:
    """A DynamoDB attribute value's size: strings and binaries by their bytes, numbers about a
    byte per two significant digits plus one, maps and lists 3 bytes plus a byte per element."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v).encode()) for v in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size in bytes: every attribute's name and value."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(before: dict[str, Any] | None, after: dict[str, Any] | None, transactional: bool = False) -> int:
    """What one write costs: the larger of the item before and after, per KB (at least one)."""
    units = max(1, math.ceil(max(item_size(before), item_size(after)) / KB))
    return 2 * units if transactional else units


def read_units(items: Iterable[dict[str, Any]]) -> int:
    """A strongly consistent read of ``items`` together (a Query's page): per 4 KB, at least one."""
    return max(1, math.ceil(sum(item_size(i) for i in items) / (4 * KB)))
