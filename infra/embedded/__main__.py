"""Command line of the embedded stack: ``python -m embedded {local,demo,invoke}``.

The Makefile's ``make local``, ``make demo`` and ``make invoke`` call these.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from embedded import demo
from embedded.stack import EmbeddedStack, PortInUse, is_up, log_file
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
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("local", help="start the stack and keep it up until Ctrl-C")
    commands.add_parser("demo", help="start the stack, send sample events, print the profiles, stop")
    invoke = commands.add_parser("invoke", help="run one handler in-process with an event file")
    invoke.add_argument("function", help="logical id in template.yaml, e.g. IngestFunction")
    invoke.add_argument("event", type=Path, help="a JSON event file, e.g. tests/events/ingest_order_completed.json")
    args = parser.parse_args(argv)
    try:
        return {"local": run_local, "demo": run_demo, "invoke": run_invoke}[args.command](args)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_local(args: argparse.Namespace) -> int:
    with EmbeddedStack(aws_port=args.aws_port, api_port=args.api_port, endpoint=args.endpoint, log=sys.stdout) as stack:
        assert stack.api is not None
        print(_banner(stack), file=sys.stderr, flush=True)
        _wait_for_interrupt()
    print("embedded stack stopped", file=sys.stderr)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    stack_log = log_file(LOGS)
    with EmbeddedStack(aws_port=args.aws_port, api_port=args.api_port, endpoint=args.endpoint, log=stack_log) as stack:
        assert stack.api is not None
        print(f"embedded stack up: AWS at {stack.endpoint}, API at {stack.api.url}")
        print(f"function logs: {LOGS.relative_to(ROOT)}")
        demo.run(stack)
    print("embedded stack stopped")
    return 0


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
    outputs = "\n".join(f"  {k}: {v}" for k, v in stack.outputs.items())
    return f"""
Audience Engine embedded stack is up (Ctrl-C stops it).
  AWS endpoint: {stack.endpoint}
                (aws --endpoint-url {stack.endpoint} cloudformation describe-stacks --stack-name {stack.stack_name})
  API:          {stack.api.url}/v1
Stack outputs:
{outputs}
Not created by moto (not needed to run locally): {", ".join(stack.not_created) or "none"}
Try:
  curl -s -X POST {stack.api.url}/v1/events -H 'Content-Type: application/json' \\
    -d '{{"type":"track","userId":"42","event":"Order Completed","properties":{{"total":99.5,"currency":"USD"}}}}'
  curl -s {stack.api.url}/v1/customers/42
"""


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):  # SIGINT explicitly: a background job ignores it
        signal.signal(signal_number, lambda *_: stop.set())
    while not stop.wait(1):
        pass


if __name__ == "__main__":
    sys.exit(main())
