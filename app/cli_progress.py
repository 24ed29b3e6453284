"""What the model commands show while they run, and how Ctrl-C stops them.

- :class:`EventView` turns engine events into progress on stderr: the prompt's token count, prefill progress with
  the time left, one line per canvas (redrawn step by step on a terminal); with ``--json``, every event as one JSON
  line on stderr instead (stdout keeps the command's result).
- :func:`interruptible` runs a command on a worker thread while the main thread waits, so that Ctrl-C is seen at
  once even while a prefill chunk or a load is inside torch: the first asks the engine to stop at its next step or
  chunk, the second ends the process at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class EventView:
    """Engine events as progress on ``stream`` (stderr); for ``TaskContext.on_event``."""

    def __init__(self, as_json: bool = False, stream: Any = None, canvases: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.as_json = as_json
        self.canvases = canvases  # generate streams the text itself instead
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.open_line = False  # a line redrawn in place is on screen

    def __call__(self, event: Any) -> None:
        from inference.runtime.events import (
            CanvasCommitted,
            CanvasStarted,
            DenoisingStep,
            PrefillFinished,
            PrefillProgress,
            PrefillStarted,
        )

        if self.as_json:
            self._write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        elif isinstance(event, PrefillStarted):
            cached = f", {event.cached_tokens:,} cached" if event.cached_tokens else ""
            images = f", {event.images} image(s)" if event.images else ""
            self._line(f"prompt: {event.prompt_tokens:,} tokens{cached}{images}")
        elif isinstance(event, PrefillProgress):
            left = event.seconds_left
            tail = f", about {_duration(left)} left" if left else ""
            text = f"prefill {event.done:,} of {event.total:,} tokens{tail}"
            self._redraw(text) if self.tty else self._line(text)
        elif isinstance(event, PrefillFinished):
            self._line(f"prefill done: {event.prompt_tokens:,} tokens in {_duration(event.seconds)}")
        elif not self.canvases:
            return
        elif isinstance(event, CanvasStarted) and self.tty:
            self._redraw(f"canvas {event.canvas + 1}: step 0 of {event.max_steps}")
        elif isinstance(event, DenoisingStep) and self.tty:
            accepted = int(event.accepted.sum())
            self._redraw(
                f"canvas {event.canvas + 1}: step {event.step + 1}, {accepted:,} of {event.accepted.size:,} "
                f"positions settled, temperature {event.temperature:.2f}"
            )
        elif isinstance(event, CanvasCommitted):
            self._line(f"canvas {event.canvas + 1}: committed after {event.steps} step(s)")

    def close(self) -> None:
        if self.open_line:
            self._write("\n")
            self.open_line = False

    def _redraw(self, text: str) -> None:
        self._write(f"\r{text}\x1b[K")
        self.open_line = True

    def _line(self, text: str) -> None:
        if self.open_line:
            self._write(f"\r{text}\x1b[K\n")
            self.open_line = False
        else:
            self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.2f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def interruptible(run: Callable[[Any], T]) -> T:
    """``run(cancel)`` on a worker thread; Ctrl-C (or SIGTERM) once sets ``cancel``, twice exits the process with
    status 130.
    Off the main thread (where signals cannot be handled), ``run`` runs here."""
    from inference.runtime.cancel import CancelToken

    cancel = CancelToken()
    if threading.current_thread() is not threading.main_thread():
        return run(cancel)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = run(cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            outcome["error"] = exc

    def on_sigint(_signum: int, _frame: Any) -> None:
        if cancel.cancelled:
            print("\ndwb: interrupted", file=sys.stderr, flush=True)
            os._exit(130)
        cancel.cancel()
        print("\ndwb: stopping at the next step (Ctrl-C again quits at once)", file=sys.stderr, flush=True)

    worker = threading.Thread(target=work, name="dwb-command", daemon=True)
    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigint)  # a service manager's stop: the same clean stop
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
