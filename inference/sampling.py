"""The sampler, apart from the model: temperature schedule, entropy-bound acceptance, re-noising, stopping.

Each piece mirrors the semantics of ``transformers``' DiffusionGemma generation utilities
(``LinearTemperatureScheduleLogitsProcessor``, ``EntropyBoundSampler``, ``StableAndConfidentStoppingCriteria``)
so that a run reproduces ``generate()`` token for token; the tests check each one against those classes on
hand-made logits. The difference is economy: the per-position entropy is computed once per step and shared by
acceptance, stopping and the viewer, instead of being recomputed by each.
"""

from __future__ import annotations

from dataclasses import dataclass

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
