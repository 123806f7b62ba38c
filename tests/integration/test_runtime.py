"""The embedded runtime runs functions as Lambda does: containers of their own, concurrent,
warm between calls, stopped at their timeout; each failure reported as Lambda reports it."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.runtime import FunctionError, LambdaFunction, LambdaRuntime

CODE = Path(__file__).with_name("lambdas")


def function(logical_id: str, timeout: int = 10, concurrency: int = 2, setting: str = "") -> LambdaFunction:
    return LambdaFunction(
        logical_id=logical_id,
        name=f"audience-{logical_id}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:audience-{logical_id}",
        handler="app.handler",
        code_folder=CODE,
        environment={"SETTING": setting},
        timeout=timeout,
        memory_size=128,
        concurrency=concurrency,
    )


def logged(logs: io.StringIO, text: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while text not in logs.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert text in logs.getvalue(), logs.getvalue()


@pytest.fixture
def logs() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def runtime(logs: io.StringIO) -> Iterator[LambdaRuntime]:
    functions = [function("Slow", setting="slow"), function("Fast", setting="fast"), function("Short", timeout=1)]
    running = LambdaRuntime(functions, logs)
    yield running
    running.stop()


def test_each_function_has_its_own_environment_and_a_warm_container_is_reused(runtime: LambdaRuntime) -> None:
    first, second = runtime.invoke("Fast", {}), runtime.invoke("Fast", {})
    other = runtime.invoke("Slow", {})
    assert (first["setting"], other["setting"]) == ("fast", "slow")
    assert first["function"] == "audience-Fast"
    assert second["pid"] == first["pid"] and second["started"] == first["started"]  # warm: no second cold start
    assert other["pid"] != first["pid"]
    assert first["requestId"] != second["requestId"]
    assert 0 < first["remainingMs"] <= 10_000


def test_a_read_is_answered_while_another_function_runs_a_slow_handler(runtime: LambdaRuntime) -> None:
    runtime.invoke("Fast", {})  # warm
    slow = threading.Thread(target=runtime.invoke, args=("Slow", {"sleep": 3}))
    slow.start()
    time.sleep(0.5)
    started = time.monotonic()
    runtime.invoke("Fast", {})
    answered = time.monotonic() - started
    still_running = slow.is_alive()
    slow.join()
    assert still_running and answered < 2.5  # not queued behind the slow one (it had 2.5 s left)


def test_a_function_runs_up_to_its_concurrency_at_once(runtime: LambdaRuntime) -> None:
    answers: list[dict[str, float]] = []
    calls = [threading.Thread(target=lambda: answers.append(runtime.invoke("Slow", {"sleep": 1}))) for _ in range(3)]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    assert len({a["pid"] for a in answers}) == 2  # concurrency 2: the third waited for a warm one
    assert runtime.pools["Slow"].cold_starts == 2


def test_a_handler_past_its_timeout_is_stopped_and_reported_as_lambda_does(
    runtime: LambdaRuntime, logs: io.StringIO
) -> None:
    with pytest.raises(FunctionError, match=r"Task timed out after 1\.00 seconds") as raised:
        runtime.invoke("Short", {"sleep": 30})
    assert raised.value.error_type == "Sandbox.Timedout"
    assert "Task timed out" in logs.getvalue()
    assert runtime.invoke("Short", {})["pid"]  # a new container answers the next call


def test_an_error_is_reported_with_its_type_and_the_container_stays_warm(
    runtime: LambdaRuntime, logs: io.StringIO
) -> None:
    before = runtime.invoke("Fast", {})["pid"]
    with pytest.raises(FunctionError, match="ValueError: bad input"):
        runtime.invoke("Fast", {"raise": "bad input"})
    assert runtime.invoke("Fast", {})["pid"] == before
    logged(logs, "ValueError: bad input")  # (copied from the container's output on a thread)
    assert "Traceback" in logs.getvalue()


def test_a_container_that_dies_mid_invocation_is_an_exit_error_and_replaced(runtime: LambdaRuntime) -> None:
    with pytest.raises(FunctionError, match="Runtime exited with error: exit status 3") as raised:
        runtime.invoke("Fast", {"exit": 3})
    assert raised.value.error_type == "Runtime.ExitError"
    assert runtime.invoke("Fast", {})["setting"] == "fast"


def test_every_log_line_names_the_function_and_the_request(runtime: LambdaRuntime, logs: io.StringIO) -> None:
    answer = runtime.invoke("Fast", {"name": "hello"})
    logged(logs, f"REPORT RequestId: {answer['requestId']}")  # (copied from the container's output on a thread)
    lines = [line for line in logs.getvalue().splitlines() if "handled hello" in line]
    assert lines == [f"audience-Fast {answer['requestId']} handled hello"]
    assert f"REPORT RequestId: {answer['requestId']}" in logs.getvalue()
    assert "Init Duration" in logs.getvalue()  # the first call was a cold start


def test_stop_ends_every_container_within_seconds(logs: io.StringIO) -> None:
    running = LambdaRuntime([function("Slow")], logs)
    failures: list[FunctionError] = []

    def invoke() -> None:
        try:
            running.invoke("Slow", {"sleep": 30})
        except FunctionError as exc:
            failures.append(exc)

    busy = threading.Thread(target=invoke)
    busy.start()
    time.sleep(1)
    started = time.monotonic()
    running.stop()
    busy.join(timeout=5)
    assert not busy.is_alive() and time.monotonic() - started < 5
    assert len(failures) == 1 and "Runtime exited" in str(failures[0])
