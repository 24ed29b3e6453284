"""The server's model side, without any web framework: a bounded queue of runs and one worker thread that runs
them on the engine (the engine is not thread-safe), handing every event back to the caller's loop.

Requests that arrive together run as one batch (up to ``max_batch`` rows): those that share their diffusion
parameters (the seed aside) and image budget. The worker gathers a batch while requests are still arriving (read by
the server but not yet queued: ``arriving``) or until ``batch_wait`` passes without a new one, at most
``batch_wait_max`` after the first. Each row of a batch draws its noise from its own generator, seeded with its
request's seed (an unseeded row: a seed drawn from torch's global generator), so a seeded request gets the same tokens
alone or beside others. Each row gets its own slice of every event, so a row's tokens are those of the engine's
batched run of the same prompts and seeds. A row's cancellation (its client went away) or time limit detaches that
row at once; the batch stops only when no row is left. A run cancelled while still queued ends at once with
``Cancelled``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.errors import WorkbenchError
from inference.prompts import SOFT_TOKEN_LEVELS
from inference.runtime.cancel import CancelToken
from inference.runtime.events import Cancelled, CanvasStarted, DenoisingStep, Event, Failed, Finished, PrefillFinished
from inference.runtime.params import DiffusionParams
from inference.serving.images import ImageLimits, PixelGate, read_messages, shrinker
from inference.serving.metrics import Metrics
from inference.serving.request import ChatRequest
from inference.serving.wire import WireError

log = logging.getLogger(__name__)
STEP_GRAIN = 32_768  # canvas positions x hidden width per intra-op thread of a step (PyTorch's own grain size)
TOKEN_COUNT_PIECE = 65_536  # characters tokenized at a time when a long prompt is counted before it is accepted


class QueueFullError(WorkbenchError):
    """Every queue slot is taken; ``retry_after`` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; anything over is a 400 naming the allowed range."""

    max_prompt_tokens: int = 262_144
    max_new_tokens: int = 32_768
    max_steps: int = 1024
    max_images: int = 16
    images: ImageLimits = field(default_factory=ImageLimits)  # decoded pixels per image, request, batch
    request_timeout: float = 600.0  # math.inf: no limit


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
    text: str = ""  # the rendered prompt, for batching with others
    images: list[Any] = field(default_factory=list)
    soft: int = 280
    deadline: float = math.inf
    timed_out: bool = False
    batch_size: int = 0  # rows of the batch it ran in
    threads: int = 0  # intra-op threads its batch's steps ran on (step_threads)
    detached: bool = False  # no longer fed (ended, cancelled or out of time while its batch goes on)
    template: Any = None  # an inference.runtime.template.CanvasTemplate from dwb.template (such a run runs alone)
    quiet: bool = False  # the client takes only the end (a whole answer): its steps are counted, not handed over
    cancel: CancelToken = field(init=False)

    def __post_init__(self) -> None:
        self.cancel = RunCancel(self)

    @property
    def steps_after_cancel(self) -> int | None:
        """Denoising steps the engine made after the run was cancelled (None: never cancelled)."""
        return None if self.steps_at_cancel is None else self.steps - self.steps_at_cancel

    @property
    def key(self) -> tuple[Any, ...]:
        """Runs with equal keys can share a batch: equal parameters but for the seed (each row keeps its own) and
        equal image budget. A templated run runs alone."""
        if self.template is not None:
            return (id(self),)
        return (self.params.replace(seed=None), self.soft)

    def put(self, item: Event | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)
        except RuntimeError:  # the caller's loop is gone; nothing to hand the event to
            pass


class _BatchCancel(CancelToken):
    """The engine's flag for a batch: set once every row is cancelled or out of time. Checked before every step,
    it also detaches the rows that went away meanwhile, so their clients hear at once."""

    def __init__(self, rows: list[Run], runner: Runner) -> None:
        super().__init__()
        self.rows, self.runner = rows, runner
        self.where: tuple[int, int] = (-1, 0)  # canvas, step

    @property
    def cancelled(self) -> bool:
        now = time.monotonic()
        for row in self.rows:
            if not row.detached and not row.cancel.cancelled and now > row.deadline:
                row.timed_out = True
                self.runner.metrics.count("timeouts")
                row.cancel.cancel()
        live = [r for r in self.rows if not r.detached and not r.cancel.cancelled]
        if live and len(live) < len(self.rows):
            for row in self.rows:
                if not row.detached and row.cancel.cancelled:
                    self.runner.detach(row, Cancelled(canvas=self.where[0], step=self.where[1]))
        return not live or super().cancelled


class Runner:
    """The model, its processor, and the worker thread. ``submit`` never blocks: a full queue is an error."""

    def __init__(
        self,
        loaded: Any,
        queue_size: int = 16,
        max_new_tokens: int = 32_768,
        max_batch: int = 4,
        limits: Limits | None = None,
        batch_wait: float = 0.005,
        batch_wait_max: float = 0.1,
    ) -> None:
        from inference.runtime.engine import DiffusionEngine

        self.loaded = loaded
        self.processor = loaded.processor
        self.engine = DiffusionEngine(loaded.model, loaded.tokenizer)
        self.base_params = self.engine.default_params()
        context = int(getattr(loaded.model.config.get_text_config(), "max_position_embeddings", 0) or 262_144)
        limits = limits or Limits(max_new_tokens=max_new_tokens)
        self.limits = dataclasses.replace(limits, max_prompt_tokens=min(limits.max_prompt_tokens, context))
        self.context = context
        self.max_batch, self.batch_wait = max(1, max_batch), batch_wait
        self.batch_wait_max = max(batch_wait, batch_wait_max)
        self.arriving = 0  # requests read by the server and not yet submitted (or refused)
        self.metrics = Metrics()
        self.pixels = PixelGate(self.limits.images.per_batch)  # pixels decoding at once, over all requests
        self.queue: queue.Queue[Run | None] = queue.Queue(maxsize=queue_size)
        self._held: collections.deque[Run] = collections.deque()  # taken from the queue, waiting for a batch of its own
        self.recent: collections.deque[Run] = collections.deque(maxlen=64)  # finished runs, newest last
        self._seconds: collections.deque[float] = collections.deque(maxlen=16)
        self._count_lock = threading.Lock()
        self.in_flight = 0  # runs queued or running
        self.peak_in_flight = 0
        self.running_rows = 0
        self.max_threads = _intra_op_threads()
        text_config = loaded.model.config.get_text_config()
        self.step_width = int(getattr(loaded.model.config, "canvas_length", 256)) * int(text_config.hidden_size)
        self._thread = threading.Thread(target=self._work, name="dwb-serve-worker", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ requests -> runs
    def parse_request(self, request: ChatRequest) -> tuple[str, list[Any], int, DiffusionParams]:
        """The rendered prompt, its images, image budget and parameters; every check that needs no tokenizing (the
        images' sizes are checked before any is decoded)."""
        soft = _soft_budget(request)
        params = self.params_for(request)
        messages = request.chat_messages()
        chars = sum(len(p.get("text") or "") for m in messages for p in m["content"] if isinstance(p, dict))
        if chars > self.limits.max_prompt_tokens:  # tokens >= characters / longest token: count before tokenizing all
            self._count_text_tokens(messages)
        shrink = shrinker(self.processor, soft)
        messages, images = read_messages(messages, self.limits.images, self.limits.max_images, shrink, self.pixels)
        try:
            rendered = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except (ValueError, TypeError, KeyError) as exc:
            raise WireError(f"the messages could not be turned into model inputs: {exc}") from exc
        return rendered, images, soft, params

    def _count_text_tokens(self, messages: list[dict[str, Any]]) -> None:
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        limit, total = self.limits.max_prompt_tokens, 0
        for message in messages:
            for part in message["content"]:
                text = (part.get("text") if isinstance(part, dict) else None) or ""
                for start in range(0, len(text), TOKEN_COUNT_PIECE):
                    total += len(
                        tokenizer(text[start : start + TOKEN_COUNT_PIECE], add_special_tokens=False)["input_ids"]
                    )
                    if total > limit:
                        raise WireError(self._too_long(f"over {total}"))

    def _too_long(self, count: str) -> str:
        return (
            f"the prompt has {count} tokens; this server takes at most {self.limits.max_prompt_tokens} "
            f"(model context {self.context})"
        )

    def encode(self, rendered: str | list[str], images: list[Any], soft: int) -> dict[str, Any]:
        """Model inputs for one prompt, or a left-padded batch of several (``rendered`` a list, ``images`` per row)."""
        batch = isinstance(rendered, list)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            inputs = self.processor(
                text=rendered,
                images=(images if any(images) else None) if batch else (images or None),
                return_tensors="pt",
                add_special_tokens=False,
                max_soft_tokens=soft,
                **({"padding": True} if batch else {}),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise WireError(f"the messages could not be turned into model inputs: {exc}") from exc
        finally:
            tokenizer.padding_side = side
        if not batch and int(inputs["input_ids"].shape[-1]) > self.limits.max_prompt_tokens:
            raise WireError(self._too_long(str(int(inputs["input_ids"].shape[-1]))))
        device = self.loaded.device
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}

    def params_for(self, request: ChatRequest) -> DiffusionParams:
        """The run's diffusion parameters: ``dwb.params`` over the server's defaults, ``max_tokens`` and ``seed``
        from the request's own fields. The prefill chunk follows ``max_prompt_tokens`` down unless it is asked for."""
        values = dict(request.extension.params)
        if request.answer_tokens is not None:
            values.setdefault("max_new_tokens", request.answer_tokens)
        if request.seed is not None:
            values.setdefault("seed", request.seed)
        limits = self.limits
        base = self.base_params
        if "prefill_chunk" not in values and base.prefill_chunk > limits.max_prompt_tokens:
            base = base.replace(prefill_chunk=limits.max_prompt_tokens)
        try:
            params = DiffusionParams.from_dict(values, base)  # the 400 names the field
        except WorkbenchError as exc:
            raise WireError(exc.message) from exc
        if params.max_new_tokens > limits.max_new_tokens:
            raise WireError(f"max_tokens={params.max_new_tokens} is out of range: 1 to {limits.max_new_tokens}")
        if params.max_denoising_steps > limits.max_steps:
            raise WireError(
                f"max_denoising_steps={params.max_denoising_steps} is out of range: 1 to {limits.max_steps}"
            )
        if params.prefill_chunk > limits.max_prompt_tokens:
            raise WireError(f"prefill_chunk={params.prefill_chunk} is out of range: 1 to {limits.max_prompt_tokens}")
        return params

    def template_for(self, request: ChatRequest) -> tuple[Any, Any]:
        """The canvas template a request carries in ``dwb.template``, or the one its ``response_format`` schema is
        laid out as, with what reads the answer's JSON from the committed ids (None, None: no template); a
        ``WireError`` (400) when either is malformed."""
        schema, wire = request.json_schema, request.extension.template
        if schema is not None and wire is not None:
            raise WireError("dwb.template and response_format json_schema cannot be used together")
        if schema is not None:
            return schema_template(self, schema)
        if wire is None:
            return None, None
        from inference.runtime.template import CanvasTemplate

        try:
            return CanvasTemplate.from_wire(wire, int(self.loaded.model.config.text_config.vocab_size)), None
        except WorkbenchError as exc:
            raise WireError(f"dwb.template: {exc.message}") from exc

    def submit(self, inputs: dict[str, Any], params: DiffusionParams, **run_fields: Any) -> Run:
        run = Run(inputs=inputs, params=params, loop=asyncio.get_running_loop(), **run_fields)
        run.prompt_tokens = int(inputs["input_ids"].shape[-1])
        if math.isinf(run.deadline) and self.limits.request_timeout:
            run.deadline = time.monotonic() + self.limits.request_timeout
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

    @property
    def waiting(self) -> int:
        return self.queue.qsize() + len(self._held)

    def arrival(self, delta: int) -> None:
        """A request starts (+1) or stops (-1) being prepared: while any is, the worker waits for it to join a batch."""
        with self._count_lock:
            self.arriving += delta

    # ------------------------------------------------------------------ the worker
    def _next_batch(self) -> list[Run] | None:
        first = self._held.popleft() if self._held else self.queue.get()
        if first is None:
            return None
        rows = [first]
        if self.max_batch == 1:
            return rows
        for run in list(self._held):
            if len(rows) < self.max_batch and run.key == first.key:
                self._held.remove(run)
                rows.append(run)
        # Requests that arrive together: gather them while more are on their way (being read or tokenized), or until
        # batch_wait passes without one, and never longer than batch_wait_max.
        start = last = time.monotonic()
        while len(rows) < self.max_batch:
            try:
                run = self.queue.get_nowait()
            except queue.Empty:
                now = time.monotonic()
                if now - start >= self.batch_wait_max or (self.arriving <= 0 and now - last >= self.batch_wait):
                    break
                time.sleep(0.001)
                continue
            if run is None:
                self.queue.put(None)  # close() after this batch
                break
            (rows if run.key == first.key else self._held).append(run)
            last = time.monotonic()
        return rows

    def _work(self) -> None:
        while True:
            rows = self._next_batch()
            if rows is None:
                return
            started = time.perf_counter()
            live = [r for r in rows if not r.cancel.cancelled]
            for row in rows:
                if row.cancel.cancelled:
                    self.detach(row, Cancelled(canvas=-1, step=0))
            try:
                if live:
                    self._run_batch(live)
            except Exception as exc:
                log.error("run failed: %s: %s", type(exc).__name__, exc)  # one line; the traceback with -v
                log.info("run failed", exc_info=True)
                for row in live:
                    self.detach(row, Failed(error_type=type(exc).__name__, message=str(exc)))
            finally:
                for row in live:
                    self.detach(row, None)
                self.running_rows = 0
                if not all(isinstance(r.last, Cancelled) for r in live):
                    self._seconds.append(time.perf_counter() - started)

    def _run_batch(self, rows: list[Run]) -> None:
        threads = step_threads(len(rows), self.step_width, self.max_threads)
        for row in rows:
            row.batch_size, row.threads = len(rows), threads
        self.running_rows = len(rows)
        self.metrics.observe_batch(len(rows))
        params, seeds = rows[0].params, None
        if len(rows) == 1:
            inputs = rows[0].inputs
        else:  # each row its own generator: its tokens do not depend on the rows beside it
            inputs = self.encode([r.text for r in rows], [list(r.images) for r in rows], rows[0].soft)
            params, seeds = params.replace(seed=None), [r.params.seed for r in rows]
        token = _BatchCancel(rows, self)
        template = rows[0].template if len(rows) == 1 else None
        _set_intra_op_threads(threads)
        try:
            self._feed(rows, self.engine.generate(inputs, params, cancel=token, template=template, seeds=seeds), token)
        finally:
            _set_intra_op_threads(self.max_threads)  # threads started later get the process's count

    def _feed(self, rows: list[Run], events: Any, token: _BatchCancel) -> None:
        """The batch's events to its rows (each its own part of a batched event), counted in the metrics."""
        for event in events:
            if isinstance(event, CanvasStarted):
                token.where = (event.canvas, 0)
            elif isinstance(event, DenoisingStep):
                token.where = (event.canvas, event.step + 1)
                self.metrics.add("denoising_steps", 1)
                self.metrics.add("denoising_seconds", event.seconds)
            elif isinstance(event, PrefillFinished):
                self.metrics.add("prefill_seconds", event.seconds)
            for i, row in enumerate(rows):
                if row.detached:
                    continue
                if row.quiet and not isinstance(event, Finished | Cancelled | Failed):
                    row.steps += isinstance(event, DenoisingStep)
                    continue
                part = event if len(rows) == 1 else row_event(event, i, len(rows))
                if isinstance(part, DenoisingStep):
                    row.steps += 1
                row.last = part
                row.put(part)
                if isinstance(part, Finished):
                    self.metrics.add("generated_tokens", completion_tokens(part.ids[0]))

    def detach(self, run: Run, last: Event | None) -> None:
        """Stop feeding ``run``: hand it ``last`` (when it has no end yet) and the end of its stream."""
        if run.detached:
            return
        run.detached = True
        if last is not None and not isinstance(run.last, Finished | Cancelled | Failed):
            run.last = last
            run.put(last)
        with self._count_lock:
            self.in_flight -= 1
        self.recent.append(run)  # before the end of its stream: a client that has its answer finds its run here
        run.put(None)

    def close(self) -> None:
        """Stop the worker after the runs already queued (callers cancel theirs first)."""
        self.queue.put(None)
        self._thread.join()


def schema_template(runner: Runner, schema: dict[str, Any]) -> tuple[Any, Any]:
    """An object schema laid out on the canvas (``inference.tasks.pinned``, without the evidence ``dwb extract``
    asks for being read back): the template, and what turns a row's committed ids into the JSON text."""
    import json

    from inference.tasks.pinned import layout_schema, read_canvas, vocabulary
    from inference.tasks.schema import check_schema

    engine = runner.engine
    try:
        check_schema(schema)
        eos = (engine.eos_token_ids or [None])[0]
        layout = layout_schema(
            schema, vocabulary(runner.loaded.tokenizer, engine.vocab_size, eos), 1, engine.canvas_length
        )
    except WorkbenchError as exc:
        raise WireError(f"response_format.json_schema: {exc.message}") from exc
    length = layout.template.length

    def read(ids: np.ndarray) -> str:
        row = np.asarray(ids)[:length]
        reading = read_canvas(layout, row, np.zeros(len(row)), {})
        return json.dumps(reading.value, ensure_ascii=False)

    return layout.template, read


def _soft_budget(request: ChatRequest) -> int:
    """The image budget: ``mm_processor_kwargs.max_soft_tokens`` (how vLLM reads it) or ``dwb.max_soft_tokens``."""
    mm = request.mm_processor_kwargs or {}
    ours = request.extension.max_soft_tokens
    soft = ours if ours is not None else mm.get("max_soft_tokens", 280)
    if mm.get("max_soft_tokens", soft) != soft:
        raise WireError("dwb.max_soft_tokens and mm_processor_kwargs.max_soft_tokens disagree")
    if isinstance(soft, bool) or soft not in SOFT_TOKEN_LEVELS:
        raise WireError(f"max_soft_tokens must be one of {SOFT_TOKEN_LEVELS}")
    return soft


def row_event(event: Event, row: int, rows: int) -> Event:
    """One row of a batch's event: arrays with a leading batch axis and per-row texts cut to that row."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == rows:
            changes[f.name] = value[row : row + 1]
        elif f.name == "texts" and len(value) == rows:
            changes[f.name] = (value[row],)
        elif isinstance(event, Finished) and f.name == "stats":
            changes[f.name] = dataclasses.replace(event.stats, new_tokens=completion_tokens(event.ids[row]))
    return dataclasses.replace(event, **changes) if changes else event


def completion_tokens(ids: np.ndarray) -> int:
    """Tokens a row generated (its committed canvases)."""
    return int(np.asarray(ids).size)


def step_threads(rows: int, step_width: int, most: int) -> int:
    """Intra-op threads for a batch of ``rows`` canvases: one per ``STEP_GRAIN`` of its canvas positions times hidden
    width, at least one, at most ``most``. A step too small to split (one canvas of a tiny model) runs on one thread:
    a team of threads would wait at every barrier for the core the HTTP loop and the clients use, which costs more
    than the split saves; a batch of canvases, or any real model, gets them all."""
    return max(1, min(most, rows * step_width // STEP_GRAIN))


def _intra_op_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_intra_op_threads(count: int) -> None:
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
