"""The cancel flag shared by the engine, the tasks and the window's worker (no heavy imports here)."""

from __future__ import annotations

import threading


class CancelToken:
    """A flag the engine checks before every denoising step. Thread-safe; never kills anything."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
