"""What the retrain function is asked, and the one service that answers: retrain (or backtest the
value model), rescore, activate a stored version, measure; and the fanned-out steps the work
queue carries (features, train, assign; tally). Each answer is typed; ``answer()`` is what the
invocation returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from audience.ports import StoreUsage
from audience.services.measure import Measuring
from audience.services.rescoring import Rescoring
from audience.services.retraining import Backtest, Retraining, RetrainOutcome, new_version

# ---------------------------------------------------------------- requests


class RetrainRequest(BaseModel):
    """Fit a candidate and promote it if warranted (the weekly schedule; ``segments``: fan out).
    With ``asOf`` or ``calibrationEnd``: a backtest of the value model only (fitted on history as
    it stood at ``asOf``, split at ``calibrationEnd``; stored and reported, not put in force)."""

    model_config = ConfigDict(populate_by_name=True)

    action: Literal["retrain"] = "retrain"
    segments: int | None = Field(default=None, ge=1, le=1000, description="fan out over this many scan segments")
    as_of: AwareDatetime | None = Field(default=None, alias="asOf", description="history as it stood at this moment")
    calibration_end: date | None = Field(
        default=None, alias="calibrationEnd", description="fit before it, score after it (default: asOf - 90 days)"
    )

    @model_validator(mode="after")
    def _calibration_before_as_of(self) -> RetrainRequest:
        if self.calibration_end and self.as_of and self.calibration_end >= self.as_of.date():
            raise ValueError("calibrationEnd must be before asOf")
        return self

    @property
    def backtest(self) -> bool:
        return self.as_of is not None or self.calibration_end is not None


class RescoreRequest(BaseModel):
    """Place every customer again under the active model and the rules in force (daily)."""

    action: Literal["rescore"]


class ActivateRequest(BaseModel):
    """Make a stored version active (a rollback) and place every customer under it."""

    action: Literal["activate"]
    version: str = Field(min_length=1)
    reason: str = Field(default="activated on demand", max_length=500)


class MeasureRequest(BaseModel):
    """Every experiment's results and every segment's KPIs from the profiles (daily, and on
    demand; ``segments``: fan out)."""

    action: Literal["measure"]
    segments: int | None = Field(default=None, ge=1, le=1000, description="fan out over this many scan segments")


class WorkItem(BaseModel):
    """One fanned-out step of a retraining or measure run, as the work queue carries it."""

    action: Literal["features", "train", "assign", "tally"]
    run: str
    segment: int = 0
    segments: int = 1


Requests = RetrainRequest | RescoreRequest | ActivateRequest | MeasureRequest
REQUEST: TypeAdapter[Requests] = TypeAdapter(Annotated[Requests, Field(discriminator="action")])


def parse_request(event: Mapping[str, Any]) -> Requests:
    """An EventBridge schedule's event (or ``{}``) retrains; otherwise ``action`` says what to do."""
    body = {} if event.get("source") == "aws.events" else event
    return REQUEST.validate_python({"action": "retrain", **body})


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class Started:
    """A fanned-out run: its steps are on the work queue."""

    run: str
    segments: int


@dataclass(frozen=True)
class Moved:
    """Customers placed again (a rescore, an activation, one fanned-out segment's assignment)."""

    moved: int
    active: str | None = None  # the version an activation made active


@dataclass(frozen=True)
class Measured:
    experiments: list[str]


Result = RetrainOutcome | Backtest | Started | Moved | Measured


def answer(result: Result) -> dict[str, Any]:
    """What the invocation returns for ``result``."""
    if isinstance(result, RetrainOutcome):
        hidden = ("candidates", "training_bins")  # large: in the stored metrics and the report
        return {**asdict(result), "metrics": {k: v for k, v in result.metrics.items() if k not in hidden}}
    if isinstance(result, Backtest):
        return {"version": result.version, "report": result.report, **result.metrics}
    if isinstance(result, Moved):
        return {"active": result.active, "moved": result.moved} if result.active else {"moved": result.moved}
    return asdict(result)


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class Jobs:
    """The retrain function's service: one method per kind of request, one per fanned-out step."""

    retraining: Retraining
    rescoring: Rescoring
    measuring: Measuring
    fan_out_segments: int  # 0: in this invocation, unless the request asks to fan out
    usage: StoreUsage | None = None  # what the profile table's requests cost, reported with each answer

    def handle(self, request: Requests, now: datetime) -> dict[str, Any]:
        """Do what ``request`` asks; the answer, with the read and write units its profile reads
        and writes consumed (a scan reads every item of the table)."""
        if self.usage is not None:
            self.usage.reset()
        result = answer(self.run(request, now))
        if self.usage is not None:
            result["dynamodb"] = {"readUnits": self.usage.read_units, "writeUnits": self.usage.write_units,
                                  "requests": self.usage.requests}  # fmt: skip
        return result

    def run(self, request: Requests, now: datetime) -> Result:
        if isinstance(request, RescoreRequest):
            return Moved(self.rescoring.rescore(now))
        if isinstance(request, ActivateRequest):
            return Moved(self.rescoring.activate(request.version, now, request.reason), request.version)
        fan_out = request.segments or self.fan_out_segments
        if isinstance(request, MeasureRequest):
            if fan_out:
                return Started(self.measuring.start(new_version(now), fan_out), fan_out)
            return Measured(self.measuring.measure(now))
        if request.backtest:
            return self.retraining.backtest(request.as_of or now, request.calibration_end)
        if fan_out:
            return Started(self.retraining.start(fan_out, now), fan_out)
        return self.retraining.retrain(now)

    def step(self, item: WorkItem, now: datetime) -> Result | None:
        """One fanned-out step: features (None), train (the outcome, once trained), assign (the
        customers moved), tally (the experiments measured, by the worker that published)."""
        if item.action == "tally":
            found = self.measuring.tally(item.run, item.segment, item.segments, now)
            return Measured(found) if found is not None else None
        if item.action == "features":
            self.retraining.features(item.run, item.segment, item.segments, now)
            return None
        if item.action == "train":
            return self.retraining.train(item.run, item.segments, now)
        return Moved(self.retraining.assign(item.run, item.segment, now))
