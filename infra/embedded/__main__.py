"""Command line of the embedded stack: ``python -m embedded {local,demo,invoke}``.

The Makefile's ``make local``, ``make demo`` and ``make invoke`` call these.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from embedded import demo
from embedded.api_front import LOCAL_API_KEY
from embedded.stack import LOCAL_WRITE_KEY, EmbeddedStack, PortInUse, is_up, log_file
from embedded.template import ROOT

LOGS = ROOT / ".local" / "logs" / "functions.log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedded", description=__doc__)
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", 4566)))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", 3000)))
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("ENDPOINT") or None,
        help="deploy to this running AWS endpoint instead of starting moto",
    )
    parser.add_argument(
        "--parameters",
        default=os.environ.get("PARAMETERS", ""),
        help='template parameters as `sam deploy --parameter-overrides` takes them: "Key=Value Key2=Value2"'
        " (over samconfig.toml's parameter_overrides)",
    )
    parser.add_argument("--config-env", default=os.environ.get("CONFIG_ENV") or "default", help="samconfig.toml's env")
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="start the stack and keep it up until Ctrl-C")
    local.add_argument("--demo-data", action="store_true", help="load the demo's customers, model and experiment")
    commands.add_parser("demo", help="start the stack, send sample events, print the profiles, stop")
    invoke = commands.add_parser("invoke", help="run one handler in-process with an event file")
    invoke.add_argument("function", help="logical id in template.yaml, e.g. IngestFunction")
    invoke.add_argument("event", type=Path, help="a JSON event file, e.g. tests/events/ingest_order_completed.json")
    args = parser.parse_args(argv)
    try:
        return {"local": run_local, "demo": run_demo, "invoke": run_invoke}[args.command](args)
    except (PortInUse, StartupFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parameters(args: argparse.Namespace) -> dict[str, str]:
    """samconfig.toml's ``parameter_overrides`` for the config env, then ``--parameters`` over them."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text()) if (ROOT / "samconfig.toml").exists() else {}
    configured = config.get(args.config_env, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    configured = configured if isinstance(configured, str) else " ".join(configured)
    pairs = shlex.split(configured) + shlex.split(args.parameters)
    found = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise SystemExit(f"error: parameter {pair!r} is not Key=Value")
        found[name] = value
    return found


def run_local(args: argparse.Namespace) -> int:
    """Up until Ctrl-C or SIGTERM (stopped within seconds, whatever is running); a failure while
    loading the demo's data is explained and the stack stays up."""
    with _stopped_by_signals(), _stack(args, log=sys.stdout) as stack:
        answering(stack)
        print(_banner(stack), file=sys.stderr, flush=True)
        if args.demo_data:
            print("loading the demo's data (the API answers meanwhile) ...", file=sys.stderr, flush=True)
            try:
                demo.run(stack)
                print("the demo's data is loaded", file=sys.stderr, flush=True)
            except Exception as exc:  # the stack itself is fine: say what failed and stay up
                print(f"loading the demo's data failed ({type(exc).__name__}: {exc}); the stack stays up",
                      file=sys.stderr, flush=True)  # fmt: skip
        _wait_for_interrupt()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    with _stopped_by_signals(), _stack(args, log=log_file(LOGS)) as stack:
        assert stack.api is not None
        answering(stack)
        print(f"embedded stack up: AWS at {stack.endpoint}, API at {stack.api.url}")
        print(f"function logs: {LOGS.relative_to(ROOT)}")
        demo.run(stack)
    return 0


def _stack(args: argparse.Namespace, log: TextIO) -> EmbeddedStack:
    return EmbeddedStack(aws_port=args.aws_port, api_port=args.api_port, endpoint=args.endpoint, log=log,
                         parameters=parameters(args), faults_spec=os.environ.get("FAULTS", ""))  # fmt: skip


def answering(stack: EmbeddedStack, timeout: float = 60) -> None:
    """Wait until the API front answers a request end to end (a function's cold start included)."""
    assert stack.api is not None
    key = os.environ.get("API_KEY") or LOCAL_API_KEY
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(Request(f"{stack.api.url}/v1/segments", headers={"x-api-key": key}), timeout=10):
                return
        except HTTPError:
            return  # an answer (a 404 before any model) is an answer
        except OSError as exc:
            if time.monotonic() > deadline:
                raise StartupFailed(f"the API at {stack.api.url} did not answer within {timeout:.0f}s: {exc}") from exc
            time.sleep(0.2)


class StartupFailed(RuntimeError):
    pass


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM end the block (the stack's ``with`` stops everything it started) at
    whatever point they arrive: starting, loading or waiting."""

    def interrupt(signal_number: int, _frame: object) -> None:
        for each in (signal.SIGINT, signal.SIGTERM):  # one stop: a second signal must not cut it short
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signal_number).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        yield
    except KeyboardInterrupt as stop:
        print(f"embedded stack stopped ({stop or 'SIGINT'}, up {time.monotonic() - started:.0f}s)", file=sys.stderr)
    finally:
        for signal_number, handler in previous.items():
            signal.signal(signal_number, handler)


def run_invoke(args: argparse.Namespace) -> int:
    """Against a running ``make local`` if there is one, else against a fresh embedded AWS."""
    event = json.loads(args.event.read_text())
    running = args.endpoint or f"http://127.0.0.1:{args.aws_port}"
    endpoint = running if is_up(running) else None
    with EmbeddedStack(
        aws_port=0, endpoint=endpoint, redeploy=False, api_port=None, poll_streams=False, log=sys.stderr
    ) as stack:
        assert stack.runtime is not None
        print(f"invoking {args.function} against {stack.endpoint}", file=sys.stderr)
        response = stack.runtime.invoke(args.function, event)
    print(json.dumps(response, indent=2, default=str))
    return 0


def _banner(stack: EmbeddedStack) -> str:
    assert stack.api is not None
    write_key, api_key = os.environ.get("WRITE_KEY") or LOCAL_WRITE_KEY, os.environ.get("API_KEY") or LOCAL_API_KEY
    outputs = "\n".join(f"  {k}: {v}" for k, v in stack.outputs.items())
    return f"""
Audience Engine embedded stack is up (Ctrl-C stops it).
  AWS endpoint: {stack.endpoint}
                (aws --endpoint-url {stack.endpoint} cloudformation describe-stacks --stack-name {stack.stack_name})
  API:          {stack.api.url}/v1
  Console:      {stack.api.url}/console (enter the read API key {api_key})
Stack outputs:
{outputs}
Template parameters: {" ".join(f"{k}={v}" for k, v in sorted(stack.parameters.items())) or "the defaults"}
Not created by moto (not needed to run locally): {", ".join(stack.not_created) or "none"}
Keys: tracking write key {write_key} (HTTP Basic user), read API key {api_key} (x-api-key)
Try:
  curl -s -u {write_key}: {stack.api.url}/v1/track -H 'Content-Type: application/json' \\
    -d '{{"userId":"42","event":"Order Completed","properties":{{"order_id":"o-1","total":99.5,"currency":"USD"}}}}'
  curl -s {stack.api.url}/v1/customers/42 -H 'x-api-key: {api_key}'
"""


def _wait_for_interrupt() -> None:
    while True:  # until a signal interrupts (SIGINT handled explicitly: a background job ignores it)
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
