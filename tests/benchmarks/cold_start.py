"""What a cold invocation pays in imports, per function, beside ``import boto3`` alone.

Each figure is the median of fresh interpreters of the Lambda-like virtualenv (the layer's
requirements and boto3, nothing of the dev tools). A function's figure is its handler module
as `sam build` packages it plus the AWS adapter modules its first invocation builds its bundle
from (boto3 among them: moving an import to the first call does not flatter it), with tracing off
(``POWERTOOLS_TRACE_DISABLED``) and on (as in Lambda with ``Tracing: Active``).

Run alone: ``python -m tests.benchmarks.cold_start``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_PYTHON = os.environ.get("LAMBDA_PYTHON", str(ROOT / ".venv-lambda" / "bin" / "python"))
FUNCTIONS = {  # the function's folder, and the adapters its first invocation builds its bundle from
    "stream": ("dynamodb", "s3", "sqs", "eventbridge", "secrets"),
    "ingest": ("kinesis", "secrets"),
}
TARGET_RATIO = 1.5

PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
for adapter in sys.argv[2:]:
    importlib.import_module(f"audience.adapters.{adapter}")
elapsed = (time.perf_counter() - started) * 1000
heavy = ",".join(m for m in ("sklearn", "scipy", "pandas", "numpy", "aws_xray_sdk") if m in sys.modules) or "-"
print(elapsed, heavy)
"""
BOTO3 = "import time; t = time.perf_counter(); import boto3; print((time.perf_counter() - t) * 1000, '-')"


def _run(arguments: list[str], tracing: bool = False) -> tuple[float, str]:
    env = {
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": str(not tracing).lower(),
        "PYTHONPATH": str(ROOT / "layers" / "audience"),
    }
    result = subprocess.run([LAMBDA_PYTHON, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    elapsed, heavy = result.stdout.split()
    return float(elapsed), heavy


def measure(repeats: int = 7) -> list[tuple[str, float, str]]:
    """(label, median ms, heavy modules loaded) for boto3 alone, then each function, interleaved
    run by run so that a noisy moment hits every row alike."""
    rows: dict[str, list[tuple[float, str]]] = {}
    for _ in range(repeats):
        rows.setdefault("import boto3 (baseline)", []).append(_run(["-c", BOTO3]))
        for function, adapters in FUNCTIONS.items():
            app = str(ROOT / "functions" / function / "app.py")
            for tracing in (False, True):
                label = f"{function}: tracing {'on' if tracing else 'off'}"
                rows.setdefault(label, []).append(_run(["-c", PROBE, app, *adapters], tracing))
    return [(label, statistics.median(t for t, _ in runs), runs[-1][1]) for label, runs in rows.items()]


def report(rows: list[tuple[str, float, str]]) -> None:
    baseline = rows[0][1]
    print(f"   {'':<34} {'ms':>7} {'x boto3':>8}   heavy modules loaded")
    for label, ms, heavy in rows:
        print(f"   {label:<34} {ms:>7.0f} {ms / baseline:>7.2f}x   {heavy}")
    print(f"   target: each function with tracing off <= {TARGET_RATIO}x `import boto3`")


if __name__ == "__main__":
    report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 7))
