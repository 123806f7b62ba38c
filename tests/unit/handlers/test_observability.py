"""The handlers' metrics: flushed as one EMF line when the invocation measured something, and
nothing printed (no Powertools "No application metrics to publish" warning) when it did not."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from audience.observability import count, flushed


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    made = Metrics(namespace="AudienceEngineTest", service="test")
    made.clear_metrics()
    return made


def test_an_invocation_that_measured_nothing_prints_and_warns_nothing(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    @flushed(metrics)
    def handler(event: Any, context: Any) -> str:
        metrics.add_metadata(key="request", value="r1")  # metadata alone is not worth a line
        return "done"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert handler({}, None) == "done"

    assert capsys.readouterr().out == ""
    assert not metrics.metric_set and not metrics.metadata_set


def test_an_invocations_metrics_are_flushed_once_even_when_it_raises(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    @flushed(metrics)
    def handler(event: Any, context: Any) -> None:
        count(metrics, EventsAccepted=3)
        raise RuntimeError("after measuring")

    with pytest.raises(RuntimeError, match="after measuring"):
        handler({}, None)

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    emf = json.loads(lines[0])
    assert emf["EventsAccepted"] == [3.0]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AudienceEngineTest"
    assert not metrics.metric_set
