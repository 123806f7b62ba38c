"""Domain exceptions. Adapters translate infrastructure errors into these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One reason a field of the input was refused; ``field`` is a dotted path such as ``batch[2].userId``."""

    field: str
    reason: str


class AudienceError(Exception):
    """Base class of every error the services raise on purpose."""


class InvalidInput(AudienceError):
    """The input cannot be accepted; ``errors`` lists every failing field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} invalid field(s): " + "; ".join(f"{e.field}: {e.reason}" for e in errors))


class Unauthorized(AudienceError):
    """The request is not signed with a secret in force, or the signature is stale."""


class TooLarge(AudienceError):
    """The request is over a size limit (the message says which)."""


class NotFound(AudienceError):
    """What the request names does not exist."""


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(f"customer '{customer_id}' not found")


class SegmentNotFound(NotFound):
    def __init__(self, segment_id: str) -> None:
        self.segment_id = segment_id
        super().__init__(f"segment '{segment_id}' not found (GET /v1/segments lists them)")


class TransientError(AudienceError):
    """A fault that may succeed if retried (throttling, a conflict that kept losing, a timeout)."""


class ConcurrentUpdate(TransientError):
    """Another writer changed the item between our read and our conditional write."""
