"""What the model commands show while they run, and how Ctrl-C stops them.

- :class:`EventView` turns engine events into progress on stderr: the prompt's token count, prefill progress with
  the time left, one line per canvas (a ``tqdm`` status line redrawn step by step on a terminal); with ``--json``,
  every event as one JSON line on stderr instead (stdout keeps the command's result).
- :class:`ProgressBar` shows a batch parse: a ``tqdm`` bar over the documents on a terminal, a line per document
  otherwise, and the pages of the document being parsed.
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
    """Engine events as progress on ``stream`` (stderr); for ``TaskContext.on_event``. On a terminal the prefill and
    each canvas are a ``tqdm`` status line redrawn in place; elsewhere, one line per report."""

    def __init__(self, as_json: bool = False, stream: Any = None, canvases: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.as_json = as_json
        self.canvases = canvases  # generate streams the text itself instead
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar: Any = None  # the status line on screen (a tqdm bar), if any

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
            tail = f"about {_duration(left)} left" if left else ""
            if not self.tty:
                self._line(f"prefill {event.done:,} of {event.total:,} tokens" + (f", {tail}" if tail else ""))
                return
            self._show("prefill", "{desc} {n_fmt} of {total_fmt} tokens{postfix}", event.total, event.done, tail)
        elif isinstance(event, PrefillFinished):
            self._line(f"prefill done: {event.prompt_tokens:,} tokens in {_duration(event.seconds)}")
        elif not self.canvases:
            return
        elif isinstance(event, CanvasStarted) and self.tty:
            self.close()
            self._show(f"canvas {event.canvas + 1}", CANVAS_FORMAT, event.max_steps, 0, "")
        elif isinstance(event, DenoisingStep) and self.tty:
            accepted = int(event.accepted.sum())
            settled = f"{accepted:,} of {event.accepted.size:,} positions settled, temperature {event.temperature:.2f}"
            self._show(f"canvas {event.canvas + 1}", CANVAS_FORMAT, None, event.step + 1, settled)
        elif isinstance(event, CanvasCommitted):
            self._line(f"canvas {event.canvas + 1}: committed after {event.steps} step(s)")

    def close(self) -> None:
        """Take the status line off the screen (a line written next starts at the left margin)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _show(self, desc: str, bar_format: str, total: int | None, done: int, postfix: str) -> None:
        """Redraw the status line ``desc`` at ``done`` (of ``total``, kept when None) with ``postfix``."""
        from tqdm import tqdm

        if self.bar is None or self.bar.desc != desc:
            self.close()
            self.bar = tqdm(
                total=total,
                desc=desc,
                bar_format=bar_format,
                file=self.stream,
                leave=False,
                mininterval=0,
                **_screen(),
            )
        elif total is not None:
            self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.refresh()

    def _line(self, text: str) -> None:
        self.close()
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


CANVAS_FORMAT = "{desc}: step {n_fmt} of {total_fmt}{postfix}"


class ProgressBar:
    """A batch parse on ``stream`` (stderr), for ``run_parse``'s ``on_item`` and ``TaskContext.progress``. On a
    terminal, one ``tqdm`` bar over the documents, redrawn in place, with the pages of the one being parsed; elsewhere
    a line per document and an indented line per page."""

    WIDTH = 24  # characters of the bar

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lock = threading.Lock()  # documents of a remote batch report from their own threads
        self.bar: Any = None

    def page(self, done: int, total: int, what: str) -> None:
        """``TaskContext.progress``: one step of a document's pages."""
        line = f"{what} ({done}/{total} pages)"
        with self.lock:
            if self.tty and self.bar is not None:
                self.bar.set_postfix_str(line)  # redrawn
            else:
                self.stream.write(f"  {line}\n")
                self.stream.flush()

    def __call__(self, index: int, total: int, item: Any, result: Any) -> None:
        with self.lock:
            self._document(index, total, item, result)

    def _document(self, index: int, total: int, item: Any, result: Any) -> None:
        done = index + (1 if result is not None else 0)
        name = item.path.name if len(item.path.name) <= 40 else item.path.name[:37] + "..."
        state = result.status if result is not None else "parsing"
        kept = f" ({result.kept} pages kept from an earlier run)" if result is not None and result.kept else ""
        if not self.tty:
            if result is not None:
                filled = int(self.WIDTH * done / max(total, 1))
                bar = "#" * filled + "-" * (self.WIDTH - filled)
                self.stream.write(f"[{bar}] {done}/{total} {state:8} {name}{kept}\n")
                self.stream.flush()
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=total,
                file=self.stream,
                ascii="-#",
                bar_format="[{bar:" + str(self.WIDTH) + "}] {n_fmt}/{total_fmt} {desc}{postfix}",
                mininterval=0,
                **_screen(),
            )
        self.bar.n = done
        self.bar.set_description_str(f"{state:8} {name}{kept}", refresh=False)
        self.bar.set_postfix_str("", refresh=False)
        self.bar.refresh()
        if done == total and result is not None:
            self.bar.close()  # the last state stays on screen, and the line ends
            self.bar = None


def _screen() -> dict[str, int]:
    """The terminal's size for tqdm, 120 x 24 where it reports none: tqdm reads a pseudo-terminal that was never sized
    as -1 x -1 and then draws nothing."""
    import shutil

    size = shutil.get_terminal_size((120, 24))
    return {"ncols": size.columns, "nrows": size.lines}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.2f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def interruptible(run: Callable[[Any], T]) -> T:
    """``run(cancel)`` on a worker thread; Ctrl-C once sets ``cancel``, twice exits the process with status 130.
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
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
    finally:
        signal.signal(signal.SIGINT, previous)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
