"""The threads behind the embedded stack's event sources (pollers, notifier, scheduler): one way
to start them and to stop them all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Workers:
    """Daemon threads that run until ``stop()``; each watches ``self._stop``."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def halt(self) -> None:
        """Ask every thread to stop (``stop`` then waits for them)."""
        self._stop.set()

    def stop(self) -> None:
        self.halt()
        deadline = time.monotonic() + 3
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
