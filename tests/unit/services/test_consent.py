"""Consent per purpose: set by identify traits, imports or the API, the latest decision wins,
and it gates training (analytics) and personalization."""

from __future__ import annotations

from datetime import timedelta

from audience.api.views import ConsentView
from audience.services.consent import set_consent
from audience.services.population import read_customers
from audience.services.profiles import apply_records
from tests.synthetic import NOW
from tests.unit.fakes import MemoryDeadLetters, MemoryProfiles
from tests.unit.services.test_profiles_service import CURRENCIES, order, record


def identify(customer: str, consent: dict[str, bool], at: str) -> dict[str, object]:
    return {"type": "identify", "userId": customer, "traits": {"consent": consent}, "timestamp": at}


def test_identify_traits_set_consent_and_the_latest_decision_wins_whatever_the_order() -> None:
    early, late = (NOW - timedelta(days=2)).isoformat(), (NOW - timedelta(days=1)).isoformat()
    granted, refused = (
        identify("c1", {"personalization": True}, early),
        identify("c1", {"personalization": False}, late),
    )
    for batch in ([granted, refused], [refused, granted]):
        profiles = MemoryProfiles()
        apply_records([record(i, m) for i, m in enumerate(batch, 1)], profiles, MemoryDeadLetters(), CURRENCIES, NOW)
        profile = profiles.items["c1"]
        assert not profile.personalization_allowed and profile.allows("marketing")  # never asked: allowed
        view = ConsentView.of(profile).model_dump(mode="json", by_alias=True)["consent"]
        assert view["personalization"] == {"granted": False, "at": late.replace("+00:00", "Z"), "source": "identify"}
        assert view["marketing"] == {"granted": True}
        assert "consent" not in profile.traits


def test_the_api_records_consent_with_its_source_and_time() -> None:
    profiles = MemoryProfiles()
    apply_records([record(1, order("c1", 20))], profiles, MemoryDeadLetters(), CURRENCIES, NOW)
    updated = set_consent("c1", {"analytics": False}, profiles, NOW)
    assert updated.consent["analytics"].source == "api" and profiles.items["c1"].consent["analytics"].granted is False
    set_consent("c1", {"analytics": False}, profiles, NOW + timedelta(seconds=1))  # restated: a new timestamp
    assert profiles.items["c1"].consent["analytics"].at == NOW + timedelta(seconds=1)
    set_consent("c1", {"analytics": True}, profiles, NOW - timedelta(days=1))  # older than the decision held
    assert profiles.items["c1"].consent["analytics"].granted is False


def test_customers_who_refused_analytics_are_kept_out_of_training() -> None:
    profiles = MemoryProfiles()
    batch = [record(i, order(f"c{i}", 10 * i)) for i in range(1, 6)]
    apply_records(batch, profiles, MemoryDeadLetters(), CURRENCIES, NOW)
    set_consent("c3", {"analytics": False}, profiles, NOW)
    trained_on, x = read_customers(profiles, 1, NOW, training=True)
    assert [c.customer_id for c in trained_on] == ["c1", "c2", "c4", "c5"] and len(x) == 4
    scored, _ = read_customers(profiles, 1, NOW)  # the rescore still places them
    assert [c.customer_id for c in scored] == ["c1", "c2", "c3", "c4", "c5"]
