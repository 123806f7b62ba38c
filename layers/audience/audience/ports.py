"""The interfaces the services need from the outside world; ``adapters`` implements them on AWS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from audience.domain.events import Message
from audience.domain.profile import Profile


class EventSink(Protocol):
    def publish(self, messages: Sequence[Message]) -> None:
        """Durably accept every message, or raise (``TransientError`` if a retry may succeed)."""


class ProfileRepository(Protocol):
    def get(self, customer_id: str) -> Profile | None: ...

    def get_many(self, customer_ids: Iterable[str]) -> Mapping[str, Profile]:
        """The stored profiles among ``customer_ids``; unknown ids are absent from the result."""

    def save(self, profile: Profile) -> None:
        """Store ``profile`` if the stored version is still ``profile.version``, bumping it;
        raise ``ConcurrentUpdate`` otherwise."""


class DeadLetters(Protocol):
    def send(self, reason: str, payload: Mapping[str, Any]) -> None:
        """Park something that can never succeed, with the reason, for an operator."""
