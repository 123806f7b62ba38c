"""Write keys: issue, revoke, and authenticate the tracking API's requests by them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from audience.domain.errors import Unauthorized
from audience.domain.sources import Source, SourceRegistry, key_hash
from audience.ports import SourceStore
from audience.services.unit_of_work import until_unchanged


def issue_key(name: str, store: SourceStore, pepper: str, now: datetime, key: str | None = None) -> tuple[str, str]:
    """A new write key for source ``name`` (created if new): the key (shown once, never stored)
    and its public id. ``key``: register this key instead of a random one (the embedded stack's
    documented local key); registering a live key again changes nothing."""
    key = key or secrets.token_urlsafe(24)
    hashed = key_hash(pepper, key)

    def attempt(_: int) -> None:
        registry = store.load()
        if registry.source_of(hashed) is None:
            store.save(registry.issued(name, hashed, now))

    until_unchanged(attempt, "the source registry")
    return key, hashed[:8]


def revoke_keys(name: str, key_id: str | None, store: SourceStore, now: datetime) -> list[str]:
    """Revoke ``name``'s key ``key_id`` (every live key of the source when None); the ids revoked."""

    def attempt(_: int) -> list[str]:
        registry, revoked = store.load().revoked(name, key_id, now)
        store.save(registry)
        return revoked

    return until_unchanged(attempt, "the source registry")


def set_origins(name: str, origins: list[str], store: SourceStore) -> list[str]:
    """Let pages at ``origins`` (``scheme://host[:port]``, ``:*`` for any port) send with source
    ``name``'s keys, instead of the origins it had; the origins now in force. Browsers' answers
    change within a container's registry refresh (``WriteKeys``)."""

    def attempt(_: int) -> list[str]:
        registry = store.load().with_origins(name, origins)
        store.save(registry)
        return registry.sources[name].allowed_origins

    return until_unchanged(attempt, "the source registry")


class WriteKeys:
    """Which source a write key belongs to. The registry is read at most once per ``refresh``
    per container, so a revoked key stops working within that time; an unknown key makes it read
    again (at most once per ``recheck``), so a key issued a moment ago works at once."""

    def __init__(self, store: SourceStore, pepper: str, refresh: timedelta = timedelta(seconds=60),
                 recheck: timedelta = timedelta(seconds=1)) -> None:  # fmt: skip
        self.store, self.pepper, self.refresh, self.recheck = store, pepper, refresh, recheck
        self._registry = SourceRegistry()
        self._read_at: datetime | None = None

    def source_of(self, key: str, now: datetime) -> str:
        """The name of the source ``key`` belongs to; ``Unauthorized`` for an unknown or revoked key."""
        return self.source(key, now).name

    def allows(self, origin: str, now: datetime) -> bool:
        """Whether some source lets pages at ``origin`` send (what a preflight, which carries no
        key, is answered by)."""
        if self._read_at is None or now - self._read_at >= self.refresh:
            self._read(now)
        return any(source.allows(origin) for source in self._registry.sources.values())

    def source(self, key: str, now: datetime) -> Source:
        """The source ``key`` belongs to; ``Unauthorized`` for an unknown or revoked key."""
        hashed = key_hash(self.pepper, key) if key else ""
        if self._read_at is None or now - self._read_at >= self.refresh:
            self._read(now)
        source = self._registry.source_of(hashed) if hashed else None
        if source is None and hashed and now - self._read_at >= self.recheck:  # type: ignore[operator]
            self._read(now)
            source = self._registry.source_of(hashed)
        if source is None:
            raise Unauthorized("unknown or revoked write key")
        return source

    def _read(self, now: datetime) -> None:
        self._registry, self._read_at = self.store.load(), now
