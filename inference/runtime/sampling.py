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


def _vector_exponential(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """float32 ``Exp(1)`` noise, the very values and generator state of ``torch.empty(shape).exponential_(1,
    generator)`` on the CPU. That kernel draws a float64 uniform ``u`` per element and returns ``-log1p(-u)`` in
    float32, one element at a time; the same uniforms drawn at once and transformed vectorised give the same bits
    about three times faster (checked against the kernel once per process: on any difference, e.g. under another
    torch, the kernel is used)."""
    return _exponential_of(torch.empty(shape, dtype=torch.float64).uniform_(generator=generator))


def _exponential_of(uniforms: torch.Tensor) -> torch.Tensor:
    """The kernel's transform of float64 uniforms (consumed in place): ``-log1p(-u)`` in float32."""
    return torch.log1p(uniforms.neg_()).neg_().to(torch.float32)


_VECTOR_EXPONENTIAL: bool | None = None


def _vector_exponential_matches() -> bool:
    global _VECTOR_EXPONENTIAL
    if _VECTOR_EXPONENTIAL is None:
        ours, theirs = torch.Generator().manual_seed(20_240_611), torch.Generator().manual_seed(20_240_611)
        expected = torch.empty(4096, dtype=torch.float32).exponential_(1, generator=theirs)
        _VECTOR_EXPONENTIAL = bool(
            torch.equal(_vector_exponential((4096,), ours), expected)
            and torch.equal(
                torch.randint(0, 2**30, (4,), generator=ours), torch.randint(0, 2**30, (4,), generator=theirs)
            )
        )
    return _VECTOR_EXPONENTIAL


def multinomial_one(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One sample per row of the 2-D ``probs``, the token ``torch.multinomial(probs, 1, generator=generator)`` draws
    (shape ``(rows,)``): its own path for one sample, ``argmax(p / q)`` with ``q ~ Exp(1)``, and its check of the
    probabilities (no NaN, no infinity, nothing negative), with the faster draw of :func:`_vector_exponential`."""
    if probs.device.type != "cpu" or probs.dtype != torch.float32 or not _vector_exponential_matches():
        return torch.multinomial(probs, num_samples=1, generator=generator).view(-1)
    check_probabilities(probs)
    return torch.argmax(probs / _vector_exponential(tuple(probs.shape), generator), dim=-1)


def check_probabilities(probs: torch.Tensor) -> None:
    """``torch.multinomial``'s checks (without them a NaN or an all-zero row would pass silently)."""
    if not bool((probs.max() < float("inf")) & (probs.min() >= 0)):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if bool((probs.sum(-1) == 0).any()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")


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

    Everything is drawn on the calling thread: a draw in a helper thread would start another OpenMP team beside
    torch's own, and the process runs slower for it, not faster.
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
            return multinomial_one(probs.view(-1, vocab)).view(batch_size, canvas_length)
        return torch.cat(
            [
                multinomial_one(probs[i], g).view(1, canvas_length)
                if rows is None or rows[i]
                else torch.zeros((1, canvas_length), dtype=torch.long, device=probs.device)
                for i, g in enumerate(self.generators)
            ]
        )

    def sample_at(self, scaled: torch.Tensor, positions: torch.Tensor, rows: Any = None) -> torch.Tensor:
        """The tokens :meth:`sample` draws from ``softmax(scaled)`` (float32), computed only at ``positions`` (bool,
        batch x canvas) and zero elsewhere: a step keeps its sample only where it accepts, and acceptance does not
        depend on the sample. The noise is drawn in full, in order, so every generator ends where a full draw leaves
        it; only its transform, the softmax and the argmax are restricted, which saves most of a step's sampling.
        Raises as ``torch.multinomial`` does when a drawing row's logits hold a NaN, an infinity or nothing finite."""
        batch_size, canvas_length, vocab = scaled.shape
        if scaled.device.type != "cpu" or not _vector_exponential_matches():
            return self.sample(torch.softmax(scaled, dim=-1, dtype=torch.float32), rows)
        drawing = [i for i in range(batch_size) if rows is None or rows[i]]
        out = torch.zeros((batch_size, canvas_length), dtype=torch.long)
        if not drawing:
            return out
        tops = scaled[drawing].amax(dim=-1) if len(drawing) < batch_size else scaled.amax(dim=-1)
        if not bool(torch.isfinite(tops).all()):  # NaN, +inf, or a row of -inf: softmax gives NaN there
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        # Per generator, the rows it draws for, in the order a multinomial over them draws: the global generator
        # draws for the whole batch, row after row; a row's own generator for that row alone.
        streams = (
            [(None, range(batch_size))] if self.generators is None else [(self.generators[i], [i]) for i in drawing]
        )
        mask = positions.clone()
        if len(drawing) < batch_size:
            mask[[i for i in range(batch_size) if i not in drawing]] = False
        chunk = max(1, min(canvas_length, _DRAW_CHUNK // max(1, vocab)))
        buffer = torch.empty((chunk, vocab), dtype=torch.float64)
        noise = []
        for generator, stream_rows in streams:
            for row in stream_rows:
                wanted = mask[row]
                for start in range(0, canvas_length, chunk):
                    uniforms = buffer[: min(chunk, canvas_length - start)].uniform_(generator=generator)
                    picked = wanted[start : start + len(uniforms)].nonzero()[:, 0]
                    if len(picked):
                        noise.append(_exponential_of(uniforms[picked]))
        if noise:
            probs = torch.softmax(scaled[mask], dim=-1, dtype=torch.float32)
            out[mask] = torch.argmax(probs / torch.cat(noise), dim=-1)
        return out


# Uniforms drawn at a time while sampling (float64 elements): bounds the noise buffer to 8 MB at any vocabulary.
_DRAW_CHUNK = 1 << 20


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
