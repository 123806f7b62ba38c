"""Experiments at the personalization answer: the global holdout, the customer's variant in the
first running experiment whose segments they hold, and their first exposure recorded once."""

from __future__ import annotations

from datetime import datetime, timedelta

from audience.domain.experiments import Experiments
from audience.domain.personalization import Arm, Choice, ContentMapping
from audience.domain.profile import Profile
from audience.ports import ProfileRepository
from audience.services.profiles import get_profile
from audience.services.unit_of_work import until_unchanged


def choose(profile: Profile, mapping: ContentMapping, experiments: Experiments, now: datetime) -> Choice:
    """What to show: the holdout gets the default; a customer in a running experiment gets its
    variant's content (a control: the default); otherwise the mapping's choice. The variant is the
    one the profile recorded at first exposure, else the hash of the canonical id: after an
    identity merge the survivor's recorded variant, or (only the retired id was exposed) the one
    carried over with its exposure, so nobody switches arm mid-experiment."""
    choice = mapping.choose(profile)
    if not profile.personalization_allowed:
        return choice
    if experiments.held_out(profile.customer_id):
        return choice.model_copy(update={"personalized": False, "content": mapping.default, "segment_id": None,
                                         "reason": "in the global holdout"})  # fmt: skip
    held = profile.segment_ids()
    for experiment in experiments.experiments:
        if experiment.running(now) and (not experiment.segments or set(held) & set(experiment.segments)):
            recorded = profile.exposures.get(experiment.id)  # sticky: nobody changes arm once exposed
            variant = experiment.arm(recorded.variant) if recorded else experiment.variant(profile.customer_id)
            content = variant.content or mapping.default
            return choice.model_copy(update={
                "personalized": variant.content is not None, "content": content,
                "reason": f"experiment {experiment.id}: variant {variant.id}",
                "experiment": Arm(id=experiment.id, variant=variant.id),
            })  # fmt: skip
    return choice


def personalize(
    customer_id: str, profiles: ProfileRepository, mapping: ContentMapping, experiments: Experiments, now: datetime
) -> Choice:
    """The answer for the customer; a first exposure to an experiment is written to the profile
    (once per customer and experiment: later answers find it there and write nothing)."""

    def attempt(n: int) -> Choice:
        profile = get_profile(customer_id, profiles)
        choice = choose(profile, mapping, experiments, now)
        if choice.experiment is not None:
            window = next(e.window_days for e in experiments.experiments if e.id == choice.experiment.id)
            exposed = profile.exposed(choice.experiment.id, choice.experiment.variant, now, timedelta(days=window))
            if exposed is not None:
                profiles.save(exposed)
        return choice

    return until_unchanged(attempt, f"the profile of {customer_id!r}")
