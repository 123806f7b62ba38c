"""Consent decisions made through the API (``PUT /v1/customers/{customerId}/consent``)."""

from __future__ import annotations

from datetime import datetime

from audience.domain.errors import ConcurrentUpdate, TransientError
from audience.domain.profile import Profile
from audience.ports import ProfileRepository
from audience.services.profiles import CONFLICT_RETRIES, get_profile


def set_consent(customer_id: str, decisions: dict[str, bool], profiles: ProfileRepository, now: datetime) -> Profile:
    """Record ``decisions`` (purpose -> granted) on the customer's profile, as of ``now``, from
    the API; the write is conditional, retried from a fresh read if the profile changed."""
    for _ in range(CONFLICT_RETRIES + 1):
        profile = get_profile(customer_id, profiles)
        updated = profile.consented(decisions, now, "api")
        if updated.consent == profile.consent:
            return profile
        try:
            profiles.save(updated)
        except ConcurrentUpdate:
            continue
        return updated.model_copy(update={"version": updated.version + 1})
    raise TransientError("the profile kept changing; retry the request")
