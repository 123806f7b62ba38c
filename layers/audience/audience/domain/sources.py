"""Sources and their write keys: what the Segment-compatible tracking API authenticates.

A source (``web``, ``ios``, ``backend``) has one or more write keys; a key is kept only as its
keyed hash (HMAC-SHA256 under the PII pepper) with a short public id (the first 8 hex digits of
that hash) to name it by. Rotating a key: issue a new one for the same source, move the senders
to it, then revoke the old one by its id. The registry is one small document (sources are few).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from audience.domain.errors import AudienceError, FieldError, InvalidInput, NotFound

SOURCE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_KEYS_PER_SOURCE = 10


def key_hash(pepper: str, key: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


class WriteKey(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    key_id: str = Field(alias="keyId", description="the first 8 hex digits of the key's hash: safe to show")
    hash: str
    created_at: AwareDatetime = Field(alias="createdAt")
    revoked_at: AwareDatetime | None = Field(default=None, alias="revokedAt")


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str = Field(pattern=SOURCE_NAME)
    created_at: AwareDatetime = Field(alias="createdAt")
    keys: list[WriteKey] = Field(default_factory=list)
    allowed_origins: list[str] = Field(
        default_factory=list,
        alias="allowedOrigins",
        description="origins a browser may send from: scheme://host[:port], a port of '*' for any",
    )

    def allows(self, origin: str) -> bool:
        """Whether a page at ``origin`` may send with this source's keys."""
        return any(origin_matches(pattern, origin) for pattern in self.allowed_origins)


class SourceRegistry(BaseModel):
    """Every source by name; ``version`` guards concurrent changes (conditional writes)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    sources: dict[str, Source] = Field(default_factory=dict)
    version: int = 0

    def source_of(self, hashed: str) -> Source | None:
        """The source whose unrevoked key has this hash."""
        for source in self.sources.values():
            if any(hmac.compare_digest(k.hash, hashed) and k.revoked_at is None for k in source.keys):
                return source
        return None

    def issued(self, name: str, hashed: str, now: datetime) -> SourceRegistry:
        """With a new key for ``name`` (the source is created if new); the old keys stay valid."""
        if not _valid_name(name):
            raise InvalidInput([FieldError("name", "lower-case letters, digits and '-', at most 63")])
        source = self.sources.get(name) or Source(name=name, created_at=now)
        if sum(k.revoked_at is None for k in source.keys) >= MAX_KEYS_PER_SOURCE:
            raise InvalidInput([FieldError("name", f"{name} has {MAX_KEYS_PER_SOURCE} live keys: revoke one first")])
        key = WriteKey(key_id=hashed[:8], hash=hashed, created_at=now)
        updated = source.model_copy(update={"keys": [*source.keys, key]})
        return self.model_copy(update={"sources": {**self.sources, name: updated}})

    def revoked(self, name: str, key_id: str | None, now: datetime) -> tuple[SourceRegistry, list[str]]:
        """Without ``name``'s key ``key_id`` (every live key when None); and the ids revoked."""
        source = self.sources.get(name)
        if source is None:
            raise NotFound(f"no source named {name!r}")
        chosen = [k for k in source.keys if k.revoked_at is None and key_id in (None, k.key_id)]
        if key_id is not None and not chosen:
            raise NotFound(f"{name} has no live key {key_id!r}")
        keys = [k.model_copy(update={"revoked_at": now}) if k in chosen else k for k in source.keys]
        updated = source.model_copy(update={"keys": keys})
        return self.model_copy(update={"sources": {**self.sources, name: updated}}), [k.key_id for k in chosen]

    def with_origins(self, name: str, origins: list[str]) -> SourceRegistry:
        """``name`` allowing exactly ``origins`` (deduplicated, in order); ``InvalidInput`` naming
        each origin that is not ``scheme://host[:port]``."""
        source = self.sources.get(name)
        if source is None:
            raise NotFound(f"no source named {name!r}")
        updated = source.model_copy(update={"allowed_origins": checked_origins(origins)})
        return self.model_copy(update={"sources": {**self.sources, name: updated}})


class OriginRefused(AudienceError):
    """A page sent with a write key whose source does not list the page's origin."""

    def __init__(self, origin: str, source: str | None = None) -> None:
        self.origin, self.source = origin, source
        whose = f"source {source!r}" if source else "any source"
        super().__init__(f"origin {origin!r} is not allowed by {whose} (make source-origins NAME=... ORIGINS=...)")


ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:]+\])(?::(\d{1,5}|\*))?$")


def valid_origin(pattern: str) -> bool:
    """``scheme://host[:port]``, lower case, no path; ``:*`` for any port."""
    return ORIGIN.fullmatch(pattern) is not None


def checked_origins(origins: list[str]) -> list[str]:
    """``origins`` as a source keeps them (lower case, no trailing '/', each once, in order);
    ``InvalidInput`` naming each one that is not ``scheme://host[:port]``."""
    cleaned = list(dict.fromkeys(o.strip().rstrip("/").lower() for o in origins if o.strip()))
    bad = [FieldError("origins", f"{o!r} is not an origin: scheme://host[:port], no path, ':*' for any port")
           for o in cleaned if not valid_origin(o)]  # fmt: skip
    if bad:
        raise InvalidInput(bad)
    return cleaned


def origin_matches(pattern: str, origin: str) -> bool:
    """Whether ``origin`` (as a browser sends it) is the one ``pattern`` allows."""
    allowed, sent = ORIGIN.fullmatch(pattern), ORIGIN.fullmatch(origin.lower())
    if allowed is None or sent is None:
        return False
    same = allowed.group(1, 2) == sent.group(1, 2)
    return same and allowed.group(3) in ("*", sent.group(3))


def _valid_name(name: str) -> bool:
    return re.fullmatch(SOURCE_NAME, name) is not None


def basic_user(headers: Mapping[str, str]) -> str | None:
    """The user name of ``Authorization: Basic base64(user:password)`` (``headers`` by lower-case
    name): a write key, as the browser SDKs send it with an empty password."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, _, _ = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None
