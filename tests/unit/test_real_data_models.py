"""On Online Retail II (imported with the online-retail mapping's cleaning rules): retraining
picks k, names the segments, and passes its own quality gate."""

from __future__ import annotations

import pytest

from tests.real_data import RETAIL, online_retail_model


@pytest.mark.skipif(not RETAIL.exists(), reason="needs ../shared/data/online_retail (not part of a user's clone)")
def test_online_retail_ii_gets_a_promoted_model_with_named_segments() -> None:
    outcome, segments, counts = online_retail_model()
    assert counts["customers"] == 4_381 and outcome.customers == 4_381
    assert outcome.promoted and outcome.reason == "first model"
    assert 2 <= outcome.metrics["k"] <= 10 and outcome.metrics["silhouette"] >= 0.15
    assert outcome.metrics["stability"] >= 0.6
    assert len(segments) == outcome.metrics["k"] and all(s.name for s in segments)
    assert abs(sum(s.revenue_share for s in segments) - 1) < 1e-9
