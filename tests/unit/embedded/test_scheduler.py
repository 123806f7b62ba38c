"""The embedded stack's EventBridge schedules: rate expressions, inputs, when they fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from embedded.scheduler import Schedule, Scheduler, period

START = datetime(2026, 11, 23, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def invoke_event(self, reference: str, event: Any) -> None:
        self.calls.append((reference, event))


def test_rate_expressions_have_periods_and_cron_has_none() -> None:
    assert period("rate(7 days)") == timedelta(days=7)
    assert period("rate(1 day)") == timedelta(days=1)
    assert period("rate(5 minutes)") == timedelta(minutes=5)
    assert period("cron(0 3 ? * MON *)") is None


def test_a_schedule_fires_each_period_with_its_input_or_the_scheduled_event() -> None:
    runtime = Recorder()
    retrain = Schedule("retrain", "rate(7 days)", "arn:fn", '{"action": "retrain"}', START + timedelta(days=7))
    bare = Schedule("bare", "rate(1 day)", "arn:fn", None, START + timedelta(days=1))
    weekly = Schedule("cron", "cron(0 3 ? * MON *)", "arn:fn", None, None)
    scheduler = Scheduler(runtime, [retrain, bare, weekly], "us-east-1", "123456789012")

    assert scheduler.tick(START + timedelta(hours=23)) == []
    assert scheduler.tick(START + timedelta(days=1)) == [bare]
    assert scheduler.tick(START + timedelta(days=7)) == [retrain, bare]
    assert runtime.calls[1] == ("arn:fn", {"action": "retrain"})
    assert runtime.calls[0][1]["detail-type"] == "Scheduled Event" and runtime.calls[0][1]["source"] == "aws.events"
    assert scheduler.tick(START + timedelta(days=7, hours=1)) == []  # next: a period after the last firing
