"""One unit of work for conditional writes: read, apply, write only if the version read is still
the stored one; on a lost race back off with jitter and start again from a fresh read; give up
with a clear, retryable error. The stream fold, consent and erasure use it; model placement runs
the same rule over a whole batch at once (``services.rescoring``: one read, the writes, one re-read
of the conflicted, the same retries and backoff)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from audience.domain.errors import ConcurrentUpdate, TransientError

T = TypeVar("T")

CONFLICT_RETRIES = 3  # after the first attempt; backoff 0-10, 0-20, 0-40 ms


class KeptConflicting(TransientError):
    """The item kept changing between our read and our write; the whole operation may be retried."""


def until_unchanged(
    attempt: Callable[[int], T],
    what: str,
    retries: int = CONFLICT_RETRIES,
    on_conflict: Callable[[], None] | None = None,
) -> T:
    """Run ``attempt(n)`` (n = 0, 1, ...: it reads, applies and writes conditionally; from n = 1 it
    must read afresh) until it does not raise ``ConcurrentUpdate``; ``KeptConflicting`` naming
    ``what`` after ``retries`` lost races."""
    for n in range(retries + 1):
        try:
            return attempt(n)
        except ConcurrentUpdate:
            if on_conflict is not None:
                on_conflict()
            if n < retries:
                time.sleep(random.uniform(0, 0.01 * 2**n))  # noqa: S311 (jitter, not secrets)
    raise KeptConflicting(f"{what} kept changing; retry the request")
