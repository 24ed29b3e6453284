"""The server's model side, without any web framework: a bounded queue of runs and one worker thread that runs
them on the engine, one at a time (the engine is not thread-safe), handing every event back to the caller's loop.

A run's ``cancel`` is checked by the engine before every step; a caller that goes away cancels it, and a run
cancelled while still queued ends at once with ``Cancelled``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..cancel import CancelToken
from ..errors import WorkbenchError
from ..events import Cancelled, DenoisingStep, Event, Failed
from ..params import DiffusionParams
from ..prompts import SOFT_TOKEN_LEVELS
from .wire import WireError, processor_messages

log = logging.getLogger(__name__)


class QueueFullError(WorkbenchError):
    """Every queue slot is taken; ``retry_after`` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RunCancel(CancelToken):
    """The cancel flag of one run; remembers how many steps the run had made when it was cancelled."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self._run = run

    def cancel(self) -> None:
        if self._run.steps_at_cancel is None:
            self._run.steps_at_cancel = self._run.steps
        super().cancel()


@dataclass(eq=False)
class Run:
    inputs: dict[str, Any]
    params: DiffusionParams
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    steps: int = 0
    steps_at_cancel: int | None = None
    last: Event | None = None
    prompt_tokens: int = 0
    template: Any = None  # an inference.template.CanvasTemplate from dwb.template
    cancel: CancelToken = field(init=False)

    def __post_init__(self) -> None:
        self.cancel = RunCancel(self)

    @property
    def steps_after_cancel(self) -> int | None:
        """Denoising steps the engine made after the run was cancelled (None: never cancelled)."""
        return None if self.steps_at_cancel is None else self.steps - self.steps_at_cancel

    def put(self, item: Event | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)
        except RuntimeError:  # the caller's loop is gone; nothing to hand the event to
            pass


class Runner:
    """The model, its processor, and the worker thread. ``submit`` never blocks: a full queue is an error."""

    def __init__(
        self, loaded: Any, queue_size: int = 16, max_pixels: int = 50_000_000, max_new_tokens: int = 32_768
    ) -> None:
        from ..engine import DiffusionEngine

        self.loaded = loaded
        self.processor = loaded.processor
        self.engine = DiffusionEngine(loaded.model, loaded.tokenizer)
        self.base_params = self.engine.default_params()
        self.max_pixels = max_pixels
        self.max_new_tokens = max_new_tokens
        self.queue: queue.Queue[Run | None] = queue.Queue(maxsize=queue_size)
        self.recent: collections.deque[Run] = collections.deque(maxlen=64)  # finished runs, newest last
        self._seconds: collections.deque[float] = collections.deque(maxlen=16)
        self._count_lock = threading.Lock()
        self.in_flight = 0  # runs queued or running
        self.peak_in_flight = 0
        self._thread = threading.Thread(target=self._work, name="dwb-serve-worker", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ requests -> runs
    def prepare(self, body: dict[str, Any]) -> tuple[dict[str, Any], DiffusionParams]:
        """Model inputs and parameters for a chat request; a ``WireError`` (400) when it cannot be served."""
        messages, images = processor_messages(body.get("messages"), self.max_pixels)
        extension = body.get("dwb") or {}
        if not isinstance(extension, dict):
            raise WireError("'dwb' must be an object")
        soft = extension.get("max_soft_tokens", 280)
        if soft not in SOFT_TOKEN_LEVELS:
            raise WireError(f"dwb.max_soft_tokens must be one of {SOFT_TOKEN_LEVELS}")
        params = self.params_for(body, extension)
        try:
            rendered = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            inputs = self.processor(
                text=rendered,
                images=images or None,
                return_tensors="pt",
                add_special_tokens=False,
                max_soft_tokens=soft,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise WireError(f"the messages could not be turned into model inputs: {exc}") from exc
        device = self.loaded.device
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}, params

    def params_for(self, body: dict[str, Any], extension: dict[str, Any]) -> DiffusionParams:
        values = dict(extension.get("params") or {})
        if not isinstance(values, dict):
            raise WireError("dwb.params must be an object")
        for name in ("max_completion_tokens", "max_tokens"):
            if body.get(name) is not None:
                values.setdefault("max_new_tokens", body[name])
        if body.get("seed") is not None:
            values.setdefault("seed", body["seed"])
        if body.get("n", 1) != 1:
            raise WireError("only n=1 is supported")
        try:
            params = DiffusionParams.from_dict(values, self.base_params)
        except WorkbenchError as exc:
            raise WireError(exc.message) from exc
        except TypeError as exc:
            raise WireError(f"invalid parameters: {exc}") from exc
        if params.max_new_tokens > self.max_new_tokens:
            raise WireError(f"max_tokens={params.max_new_tokens} is over this server's limit ({self.max_new_tokens})")
        return params

    def template_for(self, extension: dict[str, Any]) -> Any:
        """The canvas template a request carries in ``dwb.template`` (None without one); a ``WireError`` (400) when
        it is malformed."""
        if extension.get("template") is None:
            return None
        from ..template import CanvasTemplate

        try:
            return CanvasTemplate.from_wire(extension["template"], int(self.loaded.model.config.text_config.vocab_size))
        except WorkbenchError as exc:
            raise WireError(f"dwb.template: {exc.message}") from exc

    def submit(self, inputs: dict[str, Any], params: DiffusionParams, template: Any = None) -> Run:
        run = Run(inputs=inputs, params=params, loop=asyncio.get_running_loop(), template=template)
        run.prompt_tokens = int(inputs["input_ids"].shape[-1])
        try:
            self.queue.put_nowait(run)
            with self._count_lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        except queue.Full:
            wait = (statistics.median(self._seconds) if self._seconds else 1.0) * (self.queue.qsize() + 1)
            raise QueueFullError(
                "the server's queue is full; try again later", retry_after=max(1, min(600, round(wait)))
            ) from None
        return run

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        while True:
            run = self.queue.get()
            if run is None:
                return
            started = time.perf_counter()
            try:
                for event in self.engine.generate(run.inputs, run.params, cancel=run.cancel, template=run.template):
                    if isinstance(event, DenoisingStep):
                        run.steps += 1
                    run.last = event
                    run.put(event)
            except Exception as exc:
                log.exception("run failed")
                run.last = Failed(error_type=type(exc).__name__, message=str(exc))
                run.put(run.last)
            finally:
                with self._count_lock:
                    self.in_flight -= 1
                run.put(None)
                self.recent.append(run)
                if not isinstance(run.last, Cancelled):
                    self._seconds.append(time.perf_counter() - started)

    def close(self) -> None:
        """Stop the worker after the runs already queued (callers cancel theirs first)."""
        self.queue.put(None)
        self._thread.join()
