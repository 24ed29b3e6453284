"""The sampler, apart from the model: temperature schedule, entropy-bound acceptance, re-noising, stopping.

Each piece mirrors the semantics of ``transformers``' DiffusionGemma generation utilities
(``LinearTemperatureScheduleLogitsProcessor``, ``EntropyBoundSampler``, ``StableAndConfidentStoppingCriteria``)
so that a run reproduces ``generate()`` token for token; the tests check each one against those classes on
hand-made logits. The difference is economy: the per-position entropy is computed once per step and shared by
acceptance, stopping and the viewer, instead of being recomputed by each.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _draw_pool() -> ThreadPoolExecutor:
    """Threads that draw rows' noise while the model runs (torch releases the GIL in its random kernels)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="dwb-noise")
        return _POOL


def temperature_at(step: torch.Tensor | int, t_min: float, t_max: float, max_steps: int) -> torch.Tensor:
    """Linear schedule, ``t = t_min + (t_max - t_min) * step / max_steps`` with ``step`` counting down.

    ``generate()`` passes the step as an int32 tensor, so the division happens in float32; a Python float
    gives a different temperature at some steps, hence the tensor here.
    """
    if not isinstance(step, torch.Tensor):
        step = torch.tensor(step, dtype=torch.int32)
    return t_min + ((t_max - t_min) * (step / max_steps))


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of ``softmax(logits)``, computed exactly as ``torch.distributions.Categorical``.

    Same operations in the same order (normalise by logsumexp, softmax, clamp, sum), so the result is bitwise
    identical to ``Categorical(logits=logits).entropy()`` without the distribution's argument validation.
    """
    normalized = logits - logits.logsumexp(dim=-1, keepdim=True)
    probs = torch.softmax(normalized, dim=-1)
    clamped = torch.clamp(normalized, min=torch.finfo(normalized.dtype).min)
    return -(clamped * probs).sum(-1)


def entropy_bound_accept(entropy: torch.Tensor, entropy_bound: float) -> torch.Tensor:
    """Boolean mask of the positions accepted this step.

    Positions are taken in increasing order of entropy while ``sum(entropy) - max(entropy) <= entropy_bound``
    (an upper bound on the joint mutual information of the accepted set; arXiv:2505.24857).
    """
    sorted_entropy, sorted_indices = torch.sort(entropy, dim=-1, descending=False)
    cumulative = torch.cumsum(sorted_entropy, dim=-1)
    sorted_selection = cumulative - sorted_entropy <= entropy_bound
    return torch.scatter(torch.zeros_like(sorted_selection), dim=-1, index=sorted_indices, src=sorted_selection)


def random_canvas(batch_size: int, canvas_length: int, vocab_size: int, device: torch.device) -> torch.Tensor:
    """A canvas of tokens drawn uniformly from the vocabulary (one ``randint`` draw, as ``generate()`` does)."""
    return torch.randint(low=0, high=vocab_size, size=(batch_size, canvas_length), device=device)


class Noise:
    """Where a run's random draws come from.

    Without generators (``generate()``'s way): torch's global generator, one draw for the whole batch, so a row's
    noise depends on the rows beside it. With one ``torch.Generator`` per row: each row draws its canvases and its
    samples from its own generator, and only while it is still running, in the order a single-row run draws them
    from the global one; so a row seeded with ``s`` draws exactly what a single-row run after
    ``torch.manual_seed(s)`` draws, whatever else is in its batch.
    """

    def __init__(self, generators: list[torch.Generator] | None = None) -> None:
        self.generators = generators
        self._ahead: list[Future | None] | None = None  # this step's draws, made while the model runs

    def draw_ahead(self, canvas_length: int, vocab_size: int, device: torch.device, rows: Any) -> None:
        """Start this step's draws (per-row generators on the CPU only): for each row that draws, the exponential
        noise that ``torch.multinomial`` would draw for one sample per position, then the fresh canvas, in that order,
        on the row's generator; rows in parallel threads, each generator in one thread. They depend on nothing the
        model computes, so they run beside its forward pass; :meth:`sample` and :meth:`canvas` take them, and the
        tokens are those of the plain draws (a test checks it). A no-op for one drawing row (a thread beside the
        forward pass only competes with it for the cores), on CUDA and without per-row generators."""
        if self.generators is None or device.type != "cpu" or sum(bool(r) for r in rows) < 2:
            return
        pool = _draw_pool()

        def draws(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            exponential = torch.empty((canvas_length, vocab_size), dtype=torch.float32).exponential_(
                1, generator=generator
            )
            return exponential, torch.randint(0, vocab_size, (1, canvas_length), generator=generator)

        self._ahead = [pool.submit(draws, g) if rows[i] else None for i, g in enumerate(self.generators)]

    def _taken(self, index: int) -> list[Any] | None:
        """The draws made ahead, part ``index`` of each row (None for rows that do not draw); None without any."""
        if self._ahead is None:
            return None
        return [None if f is None else f.result()[index] for f in self._ahead]

    @classmethod
    def per_row(cls, seeds: list[int | None], device: torch.device) -> Noise:
        """One generator per row, seeded with the row's seed; a row without one takes a seed drawn from torch's global
        generator (so a run stays reproducible under ``torch.manual_seed``)."""
        generators = []
        for seed in seeds:
            if seed is None:
                seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
            generators.append(torch.Generator(device=device).manual_seed(seed))
        return cls(generators)

    def canvas(
        self, batch_size: int, canvas_length: int, vocab_size: int, device: torch.device, rows: Any = None
    ) -> torch.Tensor:
        """A canvas of tokens drawn uniformly from the vocabulary. ``rows`` (host booleans, per-row generators only):
        the rows that draw; the others get zeros, which their run never uses."""
        if self.generators is None:
            return random_canvas(batch_size, canvas_length, vocab_size, device)
        ahead, self._ahead = self._taken(1), None  # the canvas is a step's last draw
        if ahead is not None:
            return torch.cat([torch.zeros((1, canvas_length), dtype=torch.long) if a is None else a for a in ahead])
        return torch.cat(
            [
                torch.randint(0, vocab_size, (1, canvas_length), generator=g, device=device)
                if rows is None or rows[i]
                else torch.zeros((1, canvas_length), dtype=torch.long, device=device)
                for i, g in enumerate(self.generators)
            ]
        )

    def sample(self, probs: torch.Tensor, rows: Any = None) -> torch.Tensor:
        """One token per position from ``probs`` (batch, canvas, vocab), as ``torch.multinomial`` draws it; ``rows``
        as for :meth:`canvas`."""
        batch_size, canvas_length, vocab = probs.shape
        if self.generators is None:
            return torch.multinomial(probs.view(-1, vocab), num_samples=1).view(batch_size, canvas_length)
        ahead = self._taken(0)
        if ahead is not None:
            # torch.multinomial's own path for one sample: argmax(p / q), q ~ Exp(1) drawn on the generator; its check
            # of the probabilities kept (no NaN, no infinity, nothing negative)
            if not bool((probs.max() < float("inf")) & (probs.min() >= 0)):
                raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
            return torch.cat(
                [
                    torch.zeros((1, canvas_length), dtype=torch.long)
                    if q is None
                    else torch.argmax(probs[i] / q, dim=-1).view(1, canvas_length)
                    for i, q in enumerate(ahead)
                ]
            )
        return torch.cat(
            [
                torch.multinomial(probs[i], num_samples=1, generator=g).view(1, canvas_length)
                if rows is None or rows[i]
                else torch.zeros((1, canvas_length), dtype=torch.long, device=probs.device)
                for i, g in enumerate(self.generators)
            ]
        )


@dataclass
class StabilityTracker:
    """The "stable" half of adaptive stopping: the argmax canvas has not changed for ``threshold`` steps."""

    threshold: int
    history: torch.Tensor | None = None

    def reset(self) -> None:
        self.history = None

    def update(self, argmax_canvas: torch.Tensor) -> torch.Tensor:
        """Record this step's argmax canvas; return, per row, whether it equals the last ``threshold`` ones."""
        if self.threshold == 0:
            return torch.ones(argmax_canvas.shape[0], dtype=torch.bool, device=argmax_canvas.device)
        if self.history is None:
            self.history = torch.full(
                (self.threshold, *argmax_canvas.shape), -1, dtype=argmax_canvas.dtype, device=argmax_canvas.device
            )
        stable = (self.history == argmax_canvas[None]).all(dim=-1).all(dim=0)
        self.history = torch.roll(self.history, shifts=-1, dims=0)
        self.history[-1] = argmax_canvas
        return stable


def confident(entropy: torch.Tensor, confidence_threshold: float) -> torch.Tensor:
    """The "confident" half of adaptive stopping: mean entropy of the scaled logits below the threshold."""
    return torch.mean(entropy, dim=-1) < confidence_threshold
