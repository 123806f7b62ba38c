"""One Lambda execution environment ("container"): a process that runs one function's handler.

Started by ``embedded.runtime`` as ``python container.py <handler> <request fd> <response fd>``
with the function's own environment (its variables, ``AWS_LAMBDA_*``, the local endpoint). The
handler module is imported on the first invocation (the cold start, timed as Lambda's
``Init Duration``) and reused while the process lives. Invocations arrive one at a time as JSON
lines on the request pipe; each answer is one JSON line on the response pipe. What the handler
prints goes to stdout with the function's name and the request id on every line, between
Lambda's ``START``/``END``/``REPORT`` lines.

Faults on demand: an invocation may carry ``crash`` (a share): after each AWS call that share of
the time the process exits at once, as a container killed mid-batch would (the write landed,
the answer never came back). Standard library only: this file runs before anything is imported.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import time
import traceback
from typing import Any, TextIO

CRASH_EXIT_CODE = 137  # what the runtime reports for a process killed by SIGKILL


class _Tagged:
    """stdout/stderr of the handler: every line starts with the function's name and request id."""

    def __init__(self, target: TextIO, function: str) -> None:
        self.target, self.function, self.request_id, self._partial = target, function, "-", ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.target.write(f"{self.function} {self.request_id} {line}\n")
        self.target.flush()
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.write("\n")
        self.target.flush()

    def isatty(self) -> bool:
        return False


class _Context:
    """The parts of Lambda's context object that handlers and Powertools use."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = request["functionArn"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = request["requestId"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"embedded/{os.getpid()}"
        self._deadline = request["deadline"]  # time.time() in seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _Crash:
    """After each AWS call, exit at once with the invocation's ``crash`` probability."""

    share = 0.0

    @classmethod
    def install(cls) -> None:
        from botocore.endpoint import Endpoint

        send = Endpoint._send  # type: ignore[attr-defined]

        def send_then_maybe_crash(self: Any, request: Any) -> Any:
            response = send(self, request)
            if cls.share and random.random() < cls.share:  # noqa: S311 (fault injection, not crypto)
                sys.stdout.flush()
                os._exit(CRASH_EXIT_CODE)
            return response

        Endpoint._send = send_then_maybe_crash  # type: ignore[attr-defined]


def serve(handler_name: str, requests: TextIO, responses: TextIO) -> None:
    tagged = _Tagged(sys.__stdout__ or sys.stdout, os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    sys.stdout = sys.stderr = tagged  # Powertools' logger binds to sys.stdout when it is created
    handler, init_ms = None, 0.0
    for line in requests:
        request = json.loads(line)
        tagged.request_id, _Crash.share = request["requestId"], float(request.get("crash") or 0)
        print(f"START RequestId: {request['requestId']} Version: $LATEST")
        started = time.monotonic()
        if handler is None:
            handler, init_ms = _load(handler_name), (time.monotonic() - started) * 1000
            started = time.monotonic()
        answer = _invoke(handler, request)
        duration = (time.monotonic() - started) * 1000
        answer["maxMemoryMb"] = _peak_memory_mb()
        print(f"END RequestId: {request['requestId']}")
        memory = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        print(
            f"REPORT RequestId: {request['requestId']}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {answer['maxMemoryMb']} MB" + (f"\tInit Duration: {init_ms:.2f} ms" if init_ms else "")
        )
        tagged.flush()
        init_ms = 0.0
        responses.write(json.dumps(answer, default=str) + "\n")
        responses.flush()


def _peak_memory_mb() -> int:
    """This process's own peak (VmHWM): ``ru_maxrss`` would carry the parent's over fork+exec."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def _load(handler_name: str) -> Any:
    module_name, _, attribute = handler_name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def _invoke(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"ok": True, "result": handler(request["event"], _Context(request))}
    except Exception as exc:  # as Lambda: the error goes to the logs and to the caller
        traceback.print_exc()
        return {"ok": False, "errorType": type(exc).__name__, "errorMessage": str(exc)}


def main() -> None:
    handler_name, request_fd, response_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])  # as /var/task comes first in Lambda
    _Crash.install()
    with open(request_fd, encoding="utf-8") as requests, open(response_fd, "w", encoding="utf-8") as responses:
        serve(handler_name, requests, responses)


if __name__ == "__main__":
    main()
