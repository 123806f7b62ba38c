"""The threads behind the embedded stack's event sources (pollers, notifier, scheduler): one way
to start them and to stop them all."""

from __future__ import annotations

import threading
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

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
