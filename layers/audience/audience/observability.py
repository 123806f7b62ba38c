"""Logs, metrics and traces the same way in every function: Powertools' Logger and Metrics, and
its Tracer only where tracing is on.

Creating a Powertools ``Tracer`` imports the X-Ray SDK (about 0.3 s of every cold start) even
when tracing is disabled, so the tracer is made only when this container traces.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

H = TypeVar("H", bound=Callable[..., Any])


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """As Powertools decides: off when POWERTOOLS_TRACE_DISABLED is true, outside Lambda, or under SAM local."""
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on", "y")
    in_lambda = bool(environ.get("LAMBDA_TASK_ROOT")) and not environ.get("AWS_SAM_LOCAL")
    return in_lambda and not disabled


def lambda_handler(logger: Logger, metrics: Metrics, correlation_id_path: str | None = None) -> Callable[[H], H]:
    """The decorators every handler wears: Lambda context and correlation id in the logs, the
    trace (when on) and the metrics flushed as EMF at the end of each invocation."""

    def decorate(handler: H) -> H:
        measured: Callable[..., Any] = flushed(metrics)(handler)
        if tracing_enabled():
            from aws_lambda_powertools import Tracer

            measured = Tracer().capture_lambda_handler(measured)
        return logger.inject_lambda_context(correlation_id_path=correlation_id_path)(measured)  # type: ignore[return-value]

    return decorate


def flushed(metrics: Metrics) -> Callable[[H], H]:
    """What ``metrics.log_metrics`` does (the invocation's metrics printed as one EMF line at its
    end, whether it returns or raises), but only when it added some: an invocation that measured
    nothing (a read, a request refused before any work) prints nothing, where Powertools' flush
    would warn "No application metrics to publish". Its dimensions and metadata are cleared
    either way, as a flush would."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        def measured(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return handler(event, context, *args, **kwargs)
            finally:
                if metrics.metric_set:
                    metrics.flush_metrics()
                else:
                    metrics.clear_metrics()

        return measured  # type: ignore[return-value]

    return decorate


def count(metrics: Metrics, **values: int | float) -> None:
    """Add each value as a Count metric of this invocation, e.g. ``count(EventsProcessed=3)``."""
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
