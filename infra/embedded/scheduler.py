"""EventBridge schedules, in process.

For each scheduled rule of the deployed stack (SAM's ``Schedule`` events become
``AWS::Events::Rule`` resources with a ``ScheduleExpression`` and a function target), the
function is invoked with the target's ``Input`` (or EventBridge's scheduled event) every
period, the first time one period after the stack starts, as EventBridge does for ``rate()``.
``cron()`` expressions are listed but not fired (fire them by hand: ``make retrain``).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3

from embedded.workers import Workers

log = logging.getLogger(__name__)
UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
TICK_SECONDS = 1.0


class Invoker(Protocol):
    def invoke_event(self, reference: str, event: Any) -> None: ...


def period(expression: str) -> timedelta | None:
    """The period of ``rate(N unit)``; None for anything else (cron)."""
    match = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression.strip())
    return timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)]) if match else None


@dataclass
class Schedule:
    rule: str
    expression: str
    function_arn: str
    input: str | None
    next_at: datetime | None

    def event(self, at: datetime, region: str, account: str) -> Any:
        if self.input is not None:
            return json.loads(self.input)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [f"arn:aws:events:{region}:{account}:rule/{self.rule}"],
            "detail": {},
        }


def schedules_from_stack(session: boto3.session.Session, started: datetime) -> list[Schedule]:
    events = session.client("events")
    found = []
    for rule in events.list_rules().get("Rules", []):
        expression = rule.get("ScheduleExpression")
        if not expression or rule.get("State", "ENABLED") != "ENABLED":
            continue
        every = period(expression)
        for target in events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
            if ":lambda:" in target["Arn"] or ":function:" in target["Arn"]:
                next_at = started + every if every else None
                found.append(Schedule(rule["Name"], expression, target["Arn"], target.get("Input"), next_at))
    return found


class Scheduler(Workers):
    def __init__(self, runtime: Invoker, schedules: list[Schedule], region: str, account: str) -> None:
        super().__init__()
        self.runtime, self.schedules, self.region, self.account = runtime, schedules, region, account

    def start(self) -> None:
        self.spawn("schedules", self._run)

    def tick(self, now: datetime) -> list[Schedule]:
        """Invoke every schedule that is due at ``now``; returns those fired."""
        fired = []
        for schedule in self.schedules:
            every = period(schedule.expression)
            if schedule.next_at is None or every is None or now < schedule.next_at:
                continue
            schedule.next_at = now + every
            # asynchronous, as EventBridge invokes: retried, then the function's dead-letter queue
            self.runtime.invoke_event(schedule.function_arn, schedule.event(now, self.region, self.account))
            fired.append(schedule)
        return fired

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.tick(datetime.now(UTC))
