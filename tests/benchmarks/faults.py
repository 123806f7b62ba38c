"""`make bench` section 14: a real order history replayed through the embedded stack under
injected faults, beside the same replay without faults in the same run.

Online Retail II's first customers as Segment messages (``tests/replay.py``) through the signed
webhook, retried as an SDK retries; then the same history under another id prefix with 5% of the
functions' DynamoDB, Kinesis, EventBridge and SQS calls failed (DynamoDB answers lost after the
write landed) and containers crashing after 0.5% of AWS calls. Both must end with equal profiles.

Run alone: ``python -m tests.benchmarks.faults [customers]``.
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any

from embedded.stack import EmbeddedStack
from tests.replay import RETAIL, comparable, online_retail_messages, replay, wait_for_profiles

FAULTS = "dynamodb=0.05:lost kinesis=0.05 events=0.05:error sqs=0.05 crash=0.005"
PARAMETERS = {"MaxEventAgeDays": "20000"}  # the history is of 2009-2010


def measure(customers: int = 300) -> dict[str, Any] | None:
    if not RETAIL.exists():
        return None
    with EmbeddedStack(aws_port=0, api_port=0, log=io.StringIO(), parameters=PARAMETERS) as stack:
        assert stack.api is not None and stack.moto is not None
        clean, clean_s = _replay(stack.api.url, online_retail_messages(customers, "clean-"))
        stack.inject(FAULTS)
        faulty, faulty_s = _replay(stack.api.url, online_retail_messages(customers, "faulty-"))
        injected = dict(stack.moto.faults.injected)
        stack.inject("")
    differing = [u for u, p in clean.items() if comparable(p) != comparable(faulty[u.replace("clean-", "faulty-")])]
    messages = len(online_retail_messages(customers, ""))
    return {"customers": customers, "messages": messages, "clean_s": clean_s, "faulty_s": faulty_s,
            "injected": injected, "differing": differing}  # fmt: skip


def _replay(api: str, messages: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], float]:
    started = time.perf_counter()
    replay(api, messages)
    profiles = wait_for_profiles(api, messages, timeout=1800)
    return profiles, time.perf_counter() - started


def report(run: dict[str, Any] | None) -> None:
    if run is None:
        print("   skipped: ../shared/data/online_retail is not beside the project")
        return
    print(f"   {run['customers']} customers, {run['messages']:,} messages: clean replay {run['clean_s']:.1f} s,"
          f" under faults {run['faulty_s']:.1f} s ({run['faulty_s'] / run['clean_s']:.2f}x)")  # fmt: skip
    injected = ", ".join(f"{k} {v}" for k, v in sorted(run["injected"].items()))
    print(
        f"   faults injected: {injected}; profiles differing from the clean replay: {len(run['differing'])}"
        + (f" ({run['differing'][:3]})" if run["differing"] else " (nothing lost, nothing counted twice)")
    )


if __name__ == "__main__":
    report(measure(*(int(a) for a in sys.argv[1:2])))
