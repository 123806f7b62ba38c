"""Run each function's real handler as Lambda runs it.

Each function's configuration (handler, environment with resolved resource names, timeout,
memory, reserved concurrency) is read from the deployed function in the local AWS; its code
from the folder the template names.

Isolated (the default): every function runs in execution environments of its own, worker
processes started on demand (``embedded/container.py``: its own environment variables, its own
cold start, reused while warm), up to the function's concurrency at once: its
``ReservedConcurrentExecutions`` where the template sets it, else ``LOCAL_CONCURRENCY``. A
call beyond that waits for a container to come free (Lambda would throttle; a local client
would only retry). An invocation that runs past the function's ``Timeout`` is stopped (its
process killed) and reported as Lambda reports it (``Task timed out after N seconds``); a
process that dies mid-invocation is reported as ``Runtime.ExitError``. Either way the event
source sees a function error and retries as AWS would.

In process (``isolated=False``, the integration tier under ``moto.mock_aws``, which only
patches this process): handlers run here, one invocation at a time (environment variables are
process-wide), with no timeout.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Protocol, TextIO

import boto3

from embedded.deploy import DeployedStack

# Settings every local invocation gets: no X-Ray daemon runs here.
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true"}
# Containers per function when the template reserves no concurrency (LOCAL_CONCURRENCY=N to change).
LOCAL_CONCURRENCY = int(os.environ.get("LOCAL_CONCURRENCY", "4"))
CONTAINER = Path(__file__).with_name("container.py")
ASYNC_RETRY_SECONDS = (1.0, 2.0)  # Lambda's asynchronous retries wait about 1 and 2 minutes
log = logging.getLogger(__name__)
# What a container inherits from the machine (everything else is the function's own).
_INHERITED = ("PATH", "HOME", "LANG", "TMPDIR", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "COVERAGE_PROCESS_START")  # fmt: skip


class FunctionError(RuntimeError):
    """The invocation failed: the handler raised, timed out or its runtime exited."""

    def __init__(self, message: str, error_type: str = "Unhandled") -> None:
        super().__init__(message)
        self.error_type = error_type


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
    concurrency: int = LOCAL_CONCURRENCY
    layer_folders: tuple[Path, ...] = ()
    dead_letter_arn: str | None = None  # where a failed asynchronous invocation's event goes

    def variables(self) -> dict[str, str]:
        """The environment Lambda gives the function (without the machine's)."""
        return {
            **LOCAL_ENVIRONMENT,
            **self.environment,
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.timeout),
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": str(self.code_folder),
        }


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


class Container(Protocol):
    """One execution environment of a function: one invocation at a time."""

    def invoke(self, event: Any, request_id: str, crash: float) -> Any: ...

    @property
    def alive(self) -> bool: ...

    def close(self) -> None: ...


class ProcessContainer:
    """A worker process running ``container.py`` with the function's environment."""

    def __init__(self, function: LambdaFunction, log: TextIO) -> None:
        self.function, self._log = function, log
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        path = os.pathsep.join(str(p) for p in (function.code_folder, *function.layer_folders))
        environment = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        environment |= function.variables() | {"PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "TZ": ":UTC",
                                               "AWS_SDK_UA_APP_ID": f"lambda-{function.logical_id}"}  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-P", str(CONTAINER), function.handler, str(request_read), str(response_write)],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(request_read, response_write),
            start_new_session=True,  # Ctrl-C in a terminal reaches the runtime, which stops its containers
        )
        os.close(request_read)
        os.close(response_write)
        self._requests: IO[str] = os.fdopen(self._request_write, "w", encoding="utf-8")
        self._responses: IO[str] = os.fdopen(self._response_read, encoding="utf-8")
        self._copier = threading.Thread(target=self._copy_logs, name=f"logs-{function.logical_id}", daemon=True)
        self._copier.start()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def invoke(self, event: Any, request_id: str, crash: float) -> Any:
        deadline = time.time() + self.function.timeout
        request = {"requestId": request_id, "event": event, "deadline": deadline, "crash": crash,
                   "functionArn": self.function.arn}  # fmt: skip
        try:
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except (BrokenPipeError, ValueError):
            raise self._exited(request_id) from None
        try:
            ready, _, _ = select.select([self._responses], [], [], max(0.0, deadline - time.time()))
            line = self._responses.readline() if ready else None
        except (OSError, ValueError):  # the container was stopped meanwhile (the runtime stopping)
            line = ""
        if line is None:
            self.close()
            message = f"{request_id} Task timed out after {self.function.timeout:.2f} seconds"
            self._log.write(f"{self.function.name} {request_id} {message}\n")
            raise FunctionError(f"{self.function.logical_id}: {message}", "Sandbox.Timedout")
        if not line.endswith("\n"):
            raise self._exited(request_id)
        answer = json.loads(line)
        if not answer["ok"]:
            raise FunctionError(f"{self.function.logical_id}: {answer['errorType']}: {answer['errorMessage']}")
        return answer["result"]

    def _exited(self, request_id: str) -> FunctionError:
        self.close()
        code = self._process.returncode if self._process.returncode is not None else -signal.SIGKILL
        status = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        self._log.write(f"{self.function.name} {request_id} RequestId: {request_id} Error: Runtime exited ({status})\n")
        return FunctionError(f"{self.function.logical_id}: Runtime exited with error: {status}", "Runtime.ExitError")

    def close(self) -> None:
        """Stop the process now (a timed-out or retired container is not reused)."""
        with contextlib.suppress(OSError, ValueError):
            self._requests.close()  # a warm container exits on its own when its requests end
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        with contextlib.suppress(OSError, ValueError):
            self._responses.close()

    def _copy_logs(self) -> None:
        assert self._process.stdout is not None
        with self._process.stdout:  # closed at the container's end (EOF)
            for raw in self._process.stdout:
                try:
                    self._log.write(raw.decode("utf-8", "replace"))
                    self._log.flush()
                except ValueError:  # the log was closed while the stack stopped
                    return


class InProcessContainer:
    """The handler in this process (the integration tier: ``mock_aws`` patches only here)."""

    _lock = threading.Lock()  # environment variables are process-wide: one invocation at a time

    def __init__(self, function: LambdaFunction, log: TextIO) -> None:
        self.function, self._log = function, log
        self._handler: Callable[[Any, Any], Any] | None = None

    alive = True

    def invoke(self, event: Any, request_id: str, crash: float) -> Any:
        function = self.function
        context = LambdaContext(function.name, function.arn, function.memory_size, function.timeout, request_id)
        with self._lock, _environment(function.variables()), contextlib.redirect_stdout(_OUTPUT):  # type: ignore[type-var]
            _OUTPUT.target = self._log
            try:
                if self._handler is None:
                    module_path, _, attribute = function.handler.rpartition(".")
                    path = function.code_folder / f"{module_path.replace('.', '/')}.py"
                    self._handler = getattr(_import(f"lambda_{function.logical_id}", path), attribute)
                return self._handler(event, context)
            except Exception as exc:
                traceback.print_exc(file=self._log)  # as Lambda writes an unhandled error to the logs
                raise FunctionError(f"{function.logical_id}: {type(exc).__name__}: {exc}") from exc
            finally:
                self._log.flush()

    def close(self) -> None:
        pass


class _Output:
    """Where in-process handlers' stdout goes. Powertools binds its log handler to ``sys.stdout``
    at import, so stdout is redirected to this one object, which forwards to the runtime's log."""

    target: TextIO = sys.stdout

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


_OUTPUT = _Output()


class FunctionPool:
    """A function's warm containers: an idle one is reused, a new one started while fewer than
    the function's concurrency exist, else the call waits for one to come free."""

    def __init__(self, function: LambdaFunction, start: Callable[[LambdaFunction], Container]) -> None:
        self.function, self._start = function, start
        self._idle: list[Container] = []
        self._live: set[Container] = set()
        self._free = threading.Condition()
        self._starting = 0
        self.cold_starts = 0

    def invoke(self, event: Any, crash: float = 0.0) -> Any:
        container = self._acquire()
        healthy = False
        try:
            result = container.invoke(event, str(uuid.uuid4()), crash)
            healthy = True
            return result
        except FunctionError:
            healthy = container.alive
            raise
        finally:
            self._release(container, healthy)

    def _acquire(self) -> Container:
        with self._free:
            while not self._idle and len(self._live) + self._starting >= self.function.concurrency:
                self._free.wait()
            if self._idle:
                return self._idle.pop()
            self._starting += 1
            self.cold_starts += 1
        try:
            container = self._start(self.function)
        finally:
            with self._free:
                self._starting -= 1
                self._free.notify()
        with self._free:
            self._live.add(container)
        return container

    def _release(self, container: Container, healthy: bool) -> None:
        with self._free:
            if healthy:
                self._idle.append(container)
            else:
                self._live.discard(container)
            self._free.notify()
        if not healthy:
            container.close()

    def close(self) -> None:
        """Stop every container, busy ones too (their invocations fail as a killed process's)."""
        with self._free:
            containers, self._idle = list(self._live), []
            self._live.clear()
        for container in containers:
            container.close()


class LambdaRuntime:
    def __init__(self, functions: list[LambdaFunction], log: TextIO, isolated: bool = True) -> None:
        self.functions = {f.logical_id: f for f in functions}
        self._by_reference = {ref: f for f in functions for ref in (f.logical_id, f.name, f.arn)}
        self._log = log
        if isolated:
            self.pools = {f.logical_id: FunctionPool(f, partial(ProcessContainer, log=log)) for f in functions}
        else:  # one module per function in this process: one container each
            start = partial(InProcessContainer, log=log)
            self.pools = {f.logical_id: FunctionPool(replace(f, concurrency=1), start) for f in functions}
        self.stopped = False
        self.crash = 0.0  # the share of AWS calls after which a container dies (embedded.faults)

    @classmethod
    def from_stack(
        cls, session: boto3.session.Session, stack: DeployedStack, log: TextIO, isolated: bool = True
    ) -> LambdaRuntime:
        lambda_client = session.client("lambda")
        layers = tuple(folder for logical_id, folder in stack.code_folders.items() if logical_id not in stack.functions)
        functions = []
        for logical_id, name in stack.functions.items():
            found = lambda_client.get_function(FunctionName=name)
            config = found["Configuration"]
            reserved = found.get("Concurrency", {}).get("ReservedConcurrentExecutions")
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
                    concurrency=int(reserved) if reserved else LOCAL_CONCURRENCY,
                    layer_folders=layers,
                    dead_letter_arn=config.get("DeadLetterConfig", {}).get("TargetArn"),
                )
            )
        return cls(functions, log, isolated)

    def function(self, reference: str) -> LambdaFunction:
        """Find a function by logical id, name or ARN."""
        try:
            return self._by_reference[reference]
        except KeyError:
            known = ", ".join(sorted(self.functions))
            raise KeyError(f"no function {reference!r} in the stack (functions: {known})") from None

    def invoke(self, reference: str, event: Any) -> Any:
        """Invoke synchronously; raises ``FunctionError`` as Lambda answers ``FunctionError``."""
        if self.stopped:
            raise FunctionError("the embedded runtime has stopped", "ServiceException")
        return self.pools[self.function(reference).logical_id].invoke(event, self.crash)

    def invoke_event(self, reference: str, event: Any) -> None:
        """Invoke as S3 and EventBridge do (``InvocationType=Event``): a failure is retried twice
        (Lambda waits about 1 and 2 minutes; here ``ASYNC_RETRY_SECONDS``), then the event goes
        to the function's dead-letter queue with Lambda's ``RequestID``, ``ErrorCode`` and
        ``ErrorMessage`` attributes."""
        function = self.function(reference)
        for attempt, delay in enumerate((*ASYNC_RETRY_SECONDS, None)):
            try:
                self.invoke(reference, event)
                return
            except FunctionError as exc:
                log.warning("%s failed on an event (attempt %d of 3): %s", function.logical_id, attempt + 1, exc)
                if delay is None or self.stopped:
                    self._dead_letter(function, event, exc)
                    return
                time.sleep(delay)

    def _dead_letter(self, function: LambdaFunction, event: Any, error: FunctionError) -> None:
        if not function.dead_letter_arn or self.stopped:
            return
        sqs: Any = boto3.client("sqs")
        queue_url = sqs.get_queue_url(QueueName=function.dead_letter_arn.rsplit(":", 1)[1])["QueueUrl"]
        attributes = {"RequestID": str(uuid.uuid4()), "ErrorCode": "200", "ErrorMessage": str(error)[:1000]}
        typed = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event), MessageAttributes=typed)

    def stop(self) -> None:
        """Stop every container, in parallel (each may take a moment to exit)."""
        self.stopped = True
        closers = [threading.Thread(target=pool.close) for pool in self.pools.values()]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
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
