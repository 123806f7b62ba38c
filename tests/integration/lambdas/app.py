"""Handlers for the embedded runtime's own tests: each answers what it saw of its container."""

from __future__ import annotations

import os
import time
from typing import Any

STARTED = time.time()  # once per container: the cold start


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("exit"):
        os._exit(int(event["exit"]))
    print(f"handled {event.get('name', '')}")
    return {
        "pid": os.getpid(),
        "started": STARTED,
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "setting": os.environ.get("SETTING"),
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
    }
