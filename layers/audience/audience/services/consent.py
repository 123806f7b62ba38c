"""Consent decisions made through the API (``PUT /v1/customers/{customerId}/consent``)."""

from __future__ import annotations

from datetime import datetime

from audience.domain.profile import Profile
from audience.ports import ProfileRepository
from audience.services.profiles import get_profile
from audience.services.unit_of_work import until_unchanged


def set_consent(
    customer_id: str, decisions: dict[str, bool], profiles: ProfileRepository, now: datetime, source: str = "api"
) -> Profile:
    """Record ``decisions`` (purpose -> granted) on the customer's profile, as of ``now``, from
    ``source`` (the API, or the console through it); the write is conditional, retried from a
    fresh read if the profile changed."""

    def attempt(_: int) -> Profile:
        profile = get_profile(customer_id, profiles)
        updated = profile.consented(decisions, now, source)
        if updated.consent == profile.consent:
            return profile
        profiles.save(updated)
        return updated.model_copy(update={"version": updated.version + 1})

    return until_unchanged(attempt, f"the profile of {customer_id!r}")
