"""Run a function's real handler in this process, as Lambda would run it.

Each function's configuration (handler, environment with resolved resource names, timeout,
memory) is read from the deployed function in the local AWS; its code from the folder the
template names. The module is imported once (the "cold start") and reused after.

Unlike Lambda: no isolation between functions (one process, one interpreter), one
invocation at a time (a lock stands in for concurrency), and no timeout enforcement.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import boto3

from embedded.deploy import DeployedStack

# Settings every local invocation gets: no X-Ray daemon runs here.
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true"}


class _Output:
    """Where handlers' stdout goes. Powertools binds its log handler to ``sys.stdout`` at import,
    so stdout is redirected to this one object, which forwards to the invoking runtime's log."""

    target: TextIO = sys.stdout

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


_OUTPUT = _Output()
# Environment variables are process-wide: one invocation at a time, across all runtimes.
_INVOCATION_LOCK = threading.Lock()


class FunctionError(RuntimeError):
    """The handler raised: Lambda would answer with ``FunctionError: Unhandled``."""


@dataclass(frozen=True)
class LambdaFunction:
    logical_id: str
    name: str
    arn: str
    handler: str
    code_folder: Path
    environment: dict[str, str]
    timeout: int
    memory_size: int


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "embedded"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


class LambdaRuntime:
    def __init__(self, functions: list[LambdaFunction], log: TextIO) -> None:
        self.functions = {f.logical_id: f for f in functions}
        self._by_reference = {ref: f for f in functions for ref in (f.logical_id, f.name, f.arn)}
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._log = log

    @classmethod
    def from_stack(cls, session: boto3.session.Session, stack: DeployedStack, log: TextIO) -> LambdaRuntime:
        lambda_client = session.client("lambda")
        functions = []
        for logical_id, name in stack.functions.items():
            config = lambda_client.get_function_configuration(FunctionName=name)
            functions.append(
                LambdaFunction(
                    logical_id=logical_id,
                    name=config["FunctionName"],
                    arn=config["FunctionArn"],
                    handler=config["Handler"],
                    code_folder=stack.code_folders[logical_id],
                    # Lambda's variables are strings; moto keeps a Number parameter's !Ref as a number
                    environment={k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()},
                    timeout=config.get("Timeout", 3),
                    memory_size=config.get("MemorySize", 128),
                )
            )
        return cls(functions, log)

    def function(self, reference: str) -> LambdaFunction:
        """Find a function by logical id, name or ARN."""
        try:
            return self._by_reference[reference]
        except KeyError:
            known = ", ".join(sorted(self.functions))
            raise KeyError(f"no function {reference!r} in the stack (functions: {known})") from None

    def invoke(self, reference: str, event: Any) -> Any:
        function = self.function(reference)
        context = LambdaContext(function.name, function.arn, function.memory_size, function.timeout)
        with _INVOCATION_LOCK, self._environment(function), contextlib.redirect_stdout(_OUTPUT):  # type: ignore[type-var]
            _OUTPUT.target = self._log
            handler = self._handler(function)
            try:
                return handler(event, context)
            except Exception as exc:
                traceback.print_exc(file=self._log)  # as Lambda writes an unhandled error to the logs
                raise FunctionError(f"{function.logical_id}: {type(exc).__name__}: {exc}") from exc
            finally:
                self._log.flush()

    def _handler(self, function: LambdaFunction) -> Callable[[Any, Any], Any]:
        if function.logical_id not in self._handlers:
            module_path, _, attribute = function.handler.rpartition(".")
            module = _import(
                f"lambda_{function.logical_id}", function.code_folder / f"{module_path.replace('.', '/')}.py"
            )
            self._handlers[function.logical_id] = getattr(module, attribute)
        return self._handlers[function.logical_id]

    @contextlib.contextmanager
    def _environment(self, function: LambdaFunction) -> Iterator[None]:
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        variables = {
            **LOCAL_ENVIRONMENT,
            **function.environment,
            "AWS_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "_HANDLER": function.handler,
            "LAMBDA_TASK_ROOT": str(function.code_folder),
        }
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"handler module {path} not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as Lambda's import does: annotations resolve in the module's namespace
    spec.loader.exec_module(module)
    return module
