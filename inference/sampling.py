"""The sampler, apart from the model: temperature schedule, entropy-bound acceptance, re-noising, stopping.

Each piece mirrors the semantics of ``transformers``' DiffusionGemma generation utilities
(``LinearTemperatureScheduleLogitsProcessor``, ``EntropyBoundSampler``, ``StableAndConfidentStoppingCriteria``)
so that a run reproduces ``generate()`` token for token; the tests check each one against those classes on
hand-made logits. The difference is economy: the per-position entropy is computed once per step and shared by
acceptance, stopping and the viewer, instead of being recomputed by each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


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
