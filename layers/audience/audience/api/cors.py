"""CORS for the browser routes (tracking, the settings document, in-page personalization).

Each source lists the origins its pages may send from (``Source.allowed_origins``). A preflight
carries no write key, so it is answered for an origin that some source allows, echoing what the
browser asks to send (RudderStack adds headers on retries: a fixed list would refuse them). Every
answer to an allowed origin, errors included, echoes that origin: a browser reports an answer
without it as a network failure, and the SDKs then retry what was already accepted. Never
``Access-Control-Allow-Credentials``: the write key is the credential, not a cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_AGE_SECONDS = 900  # what rudder-server answers: a page preflights once per quarter hour
METHODS = "GET, POST, OPTIONS"


def allowed(origin: str | None) -> dict[str, str]:
    """The headers of an answer to a page at ``origin`` (which the caller found allowed)."""
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight(origin: str, request_headers: Mapping[str, str]) -> dict[str, str]:
    """The answer to a preflight from ``origin``: the methods, the headers it asked for, how long to keep it."""
    asked = request_headers.get("access-control-request-headers", "")
    return {
        **allowed(origin),
        "Access-Control-Allow-Methods": METHODS,
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        **({"Access-Control-Allow-Headers": asked} if asked else {}),
        "Vary": "Origin, Access-Control-Request-Headers",
    }


def echoed(response: dict[str, Any], origin: str | None) -> dict[str, Any]:
    """A Lambda proxy answer with ``allowed(origin)``'s headers added (those it has already kept:
    a preflight's own). For the answers made after the route ran, errors included."""
    headers = allowed(origin)
    if not headers:
        return response
    if "multiValueHeaders" in response:
        present = {name.lower() for name in response["multiValueHeaders"] or {}}
        added = {name: [value] for name, value in headers.items() if name.lower() not in present}
        return {**response, "multiValueHeaders": {**(response["multiValueHeaders"] or {}), **added}}
    present = {name.lower() for name in response.get("headers") or {}}
    added_single = {name: value for name, value in headers.items() if name.lower() not in present}
    return {**response, "headers": {**(response.get("headers") or {}), **added_single}}
