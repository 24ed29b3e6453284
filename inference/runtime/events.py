"""The engine's events: small, frozen, typed, and serialisable to one JSON object each.

These are the only things that cross from the engine to a viewer. Arrays are NumPy (host memory) and read-only;
a step event holds the argmax draft, two masks and float16 entropies for each canvas position: a few KB.
Arrays have shape ``(batch, canvas_length)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


def frozen_array(values: Any, dtype: Any) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.astype(float).round(4).tolist() if value.dtype.kind == "f" else value.tolist()
            elif dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class PrefillStarted(Event):
    kind: ClassVar[str] = "prefill_started"
    prompt_tokens: int
    cached_tokens: int
    images: int


@dataclass(frozen=True)
class PrefillProgress(Event):
    """One prefill chunk is in the cache: ``done`` of ``total`` uncached prompt tokens, ``seconds`` since the start,
    and ``seconds_left`` estimated from the chunks' measured times with the attention term that grows with the
    context (``None`` until two chunks are measured; see ``inference.runtime.prefill.PrefillClock``)."""

    kind: ClassVar[str] = "prefill_progress"
    done: int
    total: int
    seconds: float
    seconds_left: float | None = None


@dataclass(frozen=True)
class PrefillFinished(Event):
    kind: ClassVar[str] = "prefill_finished"
    prompt_tokens: int
    seconds: float


@dataclass(frozen=True)
class CanvasStarted(Event):
    kind: ClassVar[str] = "canvas_started"
    canvas: int
    position: int
    canvas_length: int
    max_steps: int


@dataclass(frozen=True)
class DenoisingStep(Event):
    """One denoising pass over the canvas.

    ``draft`` is the argmax of this step's scaled logits (what ``generate()`` hands a streamer's ``put_draft``);
    ``accepted`` the positions the entropy bound accepted this step; ``renoised`` those replaced by fresh noise
    for the next step (the complement of ``accepted`` for rows still denoising); ``entropy`` the per-position
    entropy of the scaled logits; ``finished`` the rows that adaptive stopping has stopped.
    """

    kind: ClassVar[str] = "step"
    canvas: int
    step: int
    remaining: int
    draft: np.ndarray
    accepted: np.ndarray
    renoised: np.ndarray
    entropy: np.ndarray
    temperature: float
    finished: np.ndarray
    seconds: float


@dataclass(frozen=True)
class CanvasCommitted(Event):
    """A canvas is final; ``new_tokens`` counts, per row, what it wrote (padding after end-of-sequence is not written
    text, so a short page's canvas counts its few tokens, not 256). Under a template (:mod:`inference.runtime.template`)
    ``logprobs`` holds, per position, the log-probability of the committed token under the last step's
    distribution, and ``choices`` each choice's label probabilities (batch row 0), in template order; both are
    empty otherwise."""

    kind: ClassVar[str] = "canvas_committed"
    canvas: int
    steps: int
    ids: np.ndarray
    texts: tuple[str, ...]
    finished: np.ndarray
    logprobs: np.ndarray | None = None
    choices: tuple[tuple[float, ...], ...] = ()
    new_tokens: tuple[int, ...] = ()  # per row, the canvas's tokens that are not padding (end-of-sequence counts)

    @property
    def text(self) -> str:
        return self.texts[0]


@dataclass(frozen=True)
class Stats:
    new_tokens: int
    forward_passes: int
    tokens_per_forward: float
    steps_per_canvas: tuple[int, ...]
    tokens_per_second: float
    prefill_seconds: float
    diffusion_seconds: float


@dataclass(frozen=True)
class Finished(Event):
    kind: ClassVar[str] = "finished"
    texts: tuple[str, ...]
    ids: np.ndarray
    stats: Stats

    @property
    def text(self) -> str:
        return self.texts[0]


@dataclass(frozen=True)
class Cancelled(Event):
    """The run stopped on request: at ``canvas``/``step``, or during the prefill (``canvas`` -1)."""

    kind: ClassVar[str] = "cancelled"
    canvas: int
    step: int
    texts: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Failed(Event):
    kind: ClassVar[str] = "failed"
    error_type: str
    message: str


EVENT_TYPES: tuple[type[Event], ...] = (
    PrefillStarted,
    PrefillProgress,
    PrefillFinished,
    CanvasStarted,
    DenoisingStep,
    CanvasCommitted,
    Finished,
    Cancelled,
    Failed,
)


def drain(events: Iterable[Event], on_event: Callable[[Event], None] | None = None) -> Finished:
    """Run an event stream to its end, passing each event on, and return its ``Finished``: a ``Cancelled`` raises
    ``CancelledError``, a ``Failed`` raises ``GenerationError`` with its message, and a stream that ends without
    either raises too. The one place where events become a result or an exception."""
    from inference.errors import CancelledError, GenerationError

    for event in events:
        if on_event is not None:
            on_event(event)
        if isinstance(event, Finished):
            return event
        if isinstance(event, Cancelled):
            where = "during the prefill" if event.canvas < 0 else f"at canvas {event.canvas}, step {event.step}"
            raise CancelledError(f"cancelled {where}")
        if isinstance(event, Failed):
            raise GenerationError(event.message)
    raise GenerationError("the engine stopped without a result")
