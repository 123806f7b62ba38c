"""Webhook signatures: who may write events.

Two schemes, checked against every secret in force (two during a rotation):

- ``X-Signature``: the hex HMAC-SHA1 of the raw body, as Segment's and Customer.io's webhook
  destinations send it. It carries no time, so a captured request can be replayed; message ids
  make a replay harmless (it is recognised and counted once).
- ``X-Audience-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` for our own
  clients: a request whose ``t`` is more than ``tolerance`` away from now is refused as a replay.

Comparisons are constant-time. An unsigned or wrongly signed request is refused before anything
is parsed or written.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from audience.domain.errors import Unauthorized

SEGMENT_HEADER = "x-signature"
TIMED_HEADER = "x-audience-signature"
TOLERANCE = timedelta(minutes=5)


def segment_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def timed_signature(secret: str, body: bytes, at: datetime) -> str:
    """The ``X-Audience-Signature`` header value for ``body`` sent at ``at``."""
    t = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Return if ``body`` is signed by one of ``secrets`` (header names lower-cased); raise
    ``Unauthorized`` saying why not (never echoing a secret or a signature)."""
    if not secrets:
        raise Unauthorized("no webhook secret is configured")
    timed, plain = headers.get(TIMED_HEADER), headers.get(SEGMENT_HEADER)
    if timed is not None:
        _verify_timed(body, timed, secrets, now, tolerance)
    elif plain is not None:
        if not any(hmac.compare_digest(plain.strip().lower(), segment_signature(s, body)) for s in secrets):
            raise Unauthorized("X-Signature does not match the body")
    else:
        raise Unauthorized("missing signature: send X-Signature or X-Audience-Signature")


def _verify_timed(body: bytes, header: str, secrets: Sequence[str], now: datetime, tolerance: timedelta) -> None:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        sent = parts["v1"].strip().lower()
    except (KeyError, ValueError):
        raise Unauthorized("X-Audience-Signature must be t=<unix seconds>,v1=<hex>") from None
    if abs(now.timestamp() - t) > tolerance.total_seconds():
        raise Unauthorized(f"X-Audience-Signature is stale: t is more than {tolerance} from now (a replay?)")
    payload = f"{t}.".encode() + body
    if not any(hmac.compare_digest(sent, hmac.new(s.encode(), payload, hashlib.sha256).hexdigest()) for s in secrets):
        raise Unauthorized("X-Audience-Signature does not match the body")
