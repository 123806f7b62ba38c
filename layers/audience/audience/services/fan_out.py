"""One fan-out mechanism for the jobs that outgrow one invocation (imports, retraining, measure):
a step per part goes on the work queue; each worker puts its part under the run's prefix
(``Artifacts.parts``), and the worker that finds every part there gathers them and publishes.
A repeated delivery puts the same part again; two last workers publish the same."""

from __future__ import annotations

from dataclasses import dataclass

from audience.ports import ObjectStore, WorkQueue


def send_steps(work: WorkQueue | None, action: str, run: str, segments: int) -> str:
    """One ``action`` step per part of ``run`` on the work queue; returns the run."""
    if work is None:
        raise ValueError("fanning out needs the work queue")
    for segment in range(segments):
        work.send({"action": action, "run": run, "segment": segment, "segments": segments})
    return run


@dataclass(frozen=True)
class Parts:
    """A fanned-out run's parts under one prefix (outside ``imports/``: putting a part must not
    start an import)."""

    store: ObjectStore
    prefix: str

    def key(self, name: str) -> str:
        return self.prefix + name

    def put(self, n: int, data: bytes) -> None:
        self.store.put_bytes(self._part(n), data)

    def read(self, n: int) -> bytes | None:
        return self.store.read_bytes(self._part(n))

    def complete(self, total: int) -> bool:
        """Whether all ``total`` parts are there (the caller is the last worker)."""
        return len(self.store.keys(self.prefix + "part-")) >= total

    def gather(self, total: int) -> list[bytes] | None:
        """Every part, in order, once all ``total`` are there; None while some are missing."""
        return [self.read(n) or b"" for n in range(total)] if self.complete(total) else None

    def _part(self, n: int) -> str:
        return f"{self.prefix}part-{n:05d}"
