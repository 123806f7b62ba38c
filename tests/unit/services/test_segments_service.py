"""The segment listing and paging: definitions from the model and the rules, sizes from the
membership index, an opaque cursor bound to its segment."""

from __future__ import annotations

import pytest

from audience.domain.documents import default_document
from audience.domain.errors import InvalidInput, SegmentNotFound
from audience.domain.segments import segment_id
from audience.domain.triggers import TriggerRules
from audience.segmentation.spec import SegmentSpec
from audience.services.segments import list_segments, page
from tests.unit.services.test_scoring import active_model


class MemoryMembers:
    def __init__(self, members: dict[str, list[str]]) -> None:
        self.by_segment = {segment: sorted(ids) for segment, ids in members.items()}

    def members(self, segment: str, limit: int, after: str | None = None) -> tuple[list[str], str | None]:
        ids = [i for i in self.by_segment.get(segment, []) if after is None or i > after]
        return ids[:limit], ids[limit - 1] if len(ids) > limit else None

    def count(self, segment: str) -> int:
        return len(self.by_segment.get(segment, []))


RULES = default_document(TriggerRules, "triggers")


def test_segments_come_from_the_rules_and_the_active_model_with_their_sizes() -> None:
    bucket, _ = active_model()
    spec = SegmentSpec.model_validate_json(bucket.read_text("models/v1/spec.json") or "")
    listed = list_segments(spec, RULES, MemoryMembers({"tier:high-value": ["a", "b"]})).segments
    ids = [s.segment_id for s in listed]
    assert ids[:2] == ["tier:high-value", "tier:win-back"]
    assert "rfm:champions" in ids and "rfm:prospects" in ids
    learned = {segment_id("learned", name) for name in spec.clusters.names}
    assert {s.segment_id for s in listed if s.kind == "learned"} == learned
    high_value = listed[0]
    assert high_value.size == 2 and high_value.model_version is None and "high-value-order" in high_value.definition
    assert list_segments(None, RULES, MemoryMembers({})).segments[-1].segment_id == "tier:win-back"


def test_members_page_through_an_opaque_cursor_bound_to_the_segment() -> None:
    members = MemoryMembers({"tier:high-value": [f"c{i}" for i in range(5)], "tier:win-back": ["z"]})
    seen, cursor = [], None
    while True:
        current = page("tier:high-value", None, RULES, members, 2, cursor)
        seen += current.customers
        if current.next_cursor is None:
            break
        cursor = current.next_cursor
    assert seen == [f"c{i}" for i in range(5)]

    first = page("tier:high-value", None, RULES, members, 2, None).next_cursor
    with pytest.raises(InvalidInput) as refused:
        page("tier:win-back", None, RULES, members, 2, first)  # another segment's cursor
    assert refused.value.errors[0].field == "cursor"
    for bad in ("not-a-cursor", "e30", "!!!"):
        with pytest.raises(InvalidInput):
            page("tier:high-value", None, RULES, members, 2, bad)
    with pytest.raises(SegmentNotFound):
        page("rfm:champions", None, RULES, members, 2, None)  # no model: no RFM cells


def test_a_segment_shows_its_definition_description_and_the_kpis_the_measure_job_stored() -> None:
    import json

    from audience.measure.kpis import stored_kpis
    from audience.services.segments import detail

    bucket, _ = active_model()
    spec = SegmentSpec.model_validate_json(bucket.read_text("models/v1/spec.json") or "")
    learned = segment_id("learned", spec.clusters.names[0])
    figures = {"customers": 2, "conversion30d": 0.5, "revenuePerCustomer": 12.5, "averageOrderValue": 25.0,
               "retention90d": None, "retentionBase": 0}  # fmt: skip
    stored = json.dumps({"asOf": "2026-12-03T00:00:00+00:00", "segments": {learned: figures}})
    shown = detail(learned, spec, RULES, MemoryMembers({learned: ["a", "b"]}), stored_kpis(stored))
    assert shown.kind == "learned" and shown.size == 2 and shown.model_version == spec.version
    assert shown.description == (spec.clusters.descriptions or [None])[0]
    assert shown.kpis is not None and shown.kpis.revenue_per_customer == 12.5 and shown.kpis.as_of.year == 2026
    tier = detail("tier:high-value", spec, RULES, MemoryMembers({}), stored_kpis(None))
    assert tier.kpis is None and tier.description is None  # before the first measure
    with pytest.raises(SegmentNotFound):
        detail("learned:nobody", spec, RULES, MemoryMembers({}), stored_kpis(stored))


def test_the_listing_carries_each_segments_kpis_from_one_stored_document() -> None:
    import json

    from audience.measure.kpis import stored_kpis

    figures = {"customers": 4, "conversion30d": 0.25, "revenuePerCustomer": 10.0, "averageOrderValue": 20.0,
               "retention90d": 0.5, "retentionBase": 2}  # fmt: skip
    stored = json.dumps({"asOf": "2026-12-03T00:00:00+00:00", "segments": {"tier:high-value": figures}})
    listed = {s.segment_id: s for s in list_segments(None, RULES, MemoryMembers({}), stored_kpis(stored)).segments}
    assert listed["tier:high-value"].kpis is not None and listed["tier:high-value"].kpis.customers == 4
    assert listed["tier:win-back"].kpis is None


def test_sizes_come_from_the_measure_jobs_stored_counts_without_counting_the_index() -> None:
    import json

    from audience.measure.kpis import stored_kpis

    class Uncountable(MemoryMembers):
        def count(self, segment: str) -> int:
            raise AssertionError("a request must not count the membership index")

    figures = {"customers": 4, "conversion30d": 0.25, "revenuePerCustomer": 10.0, "averageOrderValue": 20.0,
               "retention90d": 0.5, "retentionBase": 2, "members": 3}  # fmt: skip
    population = {**figures, "customers": 100, "members": 90}
    stored = json.dumps({"asOf": "2026-12-03T00:00:00+00:00", "population": population,
                         "segments": {"tier:high-value": figures}})  # fmt: skip
    listed = list_segments(None, RULES, Uncountable({}), stored_kpis(stored), "EUR")
    sizes = {s.segment_id: s.size for s in listed.segments}
    assert sizes == {"tier:high-value": 3, "tier:win-back": 0}  # nobody counted in win-back
    assert listed.population is not None and listed.population.customers == 100 and listed.currency == "EUR"
    assert listed.sizes_as_of is not None and listed.sizes_as_of.day == 3


def test_a_trend_works_the_size_back_through_each_days_moves_and_keeps_the_measured_points() -> None:
    import json

    from audience.measure.kpis import stored_kpis
    from audience.services.segments import trend

    figures = {"customers": 10, "conversion30d": None, "revenuePerCustomer": None, "averageOrderValue": None,
               "retention90d": None, "retentionBase": 0, "members": 10}  # fmt: skip
    stored = json.dumps({"asOf": "2026-12-03T06:00:00+00:00", "population": {**figures, "customers": 50},
                         "segments": {"tier:high-value": figures},
                         "moves": {"tier:high-value|2026-12-03|in": 4, "tier:high-value|2026-12-03|out": 1,
                                   "tier:high-value|2026-12-02|in": 2}})  # fmt: skip
    point = {"asOf": "2026-12-01T06:00:00+00:00", "population": 40, "segments": {"tier:high-value": [5, 5]}}
    trends = json.dumps({"days": {"2026-12-01": point}})
    shown = trend("tier:high-value", None, RULES, stored_kpis(stored), trends).points
    by_day = {p.day.isoformat(): p for p in shown}
    assert shown[-1].day.isoformat() == "2026-12-03" and shown[0].day < shown[-1].day  # oldest first
    assert (by_day["2026-12-03"].customers, by_day["2026-12-03"].entered, by_day["2026-12-03"].left) == (10, 4, 1)
    assert by_day["2026-12-03"].share == 10 / 50 and by_day["2026-12-02"].customers == 7  # 10 - 4 + 1
    assert by_day["2026-12-01"].customers == 5 and by_day["2026-12-01"].measured  # the stored point wins
    assert by_day["2026-12-01"].share == 5 / 40
