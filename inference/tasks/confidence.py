"""Measured per-field confidence of a schema-pinned extraction.

A field's raw token probability says how sure the last step was, not whether the value is right: an untrained model
writes garbage with probability 1.0. The confidence shown is instead a logistic combination of what the denoising
trajectory and the page say about the value slot, fitted against correctness on generated pages
(``tests/benchmarks/extract.py --fit``; the figures are in docs/extraction.md):

- ``token``: the committed tokens' probability (the geometric mean over the slot, as :mod:`inference.tasks.pinned`
  reads it), as a logit;
- ``entropy_mean`` and ``entropy_last``: the value positions' mean entropy over the canvas's steps and at its last
  step (how it settled);
- ``settled``: the share of the canvas's steps after which the slot's draft no longer changed (0: at once);
- ``agree``: whether a re-denoise of the field (another seed, everything else pinned) wrote the same value (0.5:
  not re-denoised);
- ``grounded``: the value (strings and numbers) and its quote found on the cited page; ``empty``: no value.

A value that is not grounded, or empty, is never shown as confident: its confidence is capped at
``UNGROUNDED_CAP``, under the re-denoise threshold ``REDO_BELOW``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FEATURES = ("token", "entropy_mean", "entropy_last", "settled", "agree", "grounded", "empty")
# Fitted by ``python -m tests.benchmarks.extract --model tiny-trained --fit`` on training-side generated pages.
COEFFICIENTS: dict[str, float] = {
    "bias": -2.0,
    "token": 0.3,
    "entropy_mean": -1.0,
    "entropy_last": -1.0,
    "settled": -1.0,
    "agree": 2.0,
    "grounded": 3.0,
    "empty": -3.0,
}
UNGROUNDED_CAP = 0.2  # an ungrounded or empty value's confidence at most
REDO_BELOW = 0.5  # the window's and the CLI's default: fields under it are offered for re-denoising
LOW, HIGH = 0.5, 0.8  # the window's colour bands: under LOW red, LOW..HIGH amber, HIGH and over green


@dataclass(frozen=True)
class FieldStats:
    """What one field's value slots did while denoising, and what the page says about the value."""

    token: float  # 0..1, the committed tokens' probability
    entropy_mean: float
    entropy_last: float
    settled: float  # 0..1
    agree: float  # 1, 0, or 0.5 when not re-denoised
    grounded: bool
    empty: bool

    def vector(self) -> list[float]:
        p = min(max(self.token, 1e-4), 1 - 1e-4)
        return [
            math.log(p / (1 - p)),
            self.entropy_mean,
            self.entropy_last,
            self.settled,
            self.agree,
            float(self.grounded),
            float(self.empty),
        ]


def combine(stats: FieldStats, coefficients: dict[str, float] | None = None) -> float:
    """The shown confidence of one field: the fitted combination, capped when ungrounded or empty."""
    c = coefficients or COEFFICIENTS
    z = c["bias"] + sum(c[name] * x for name, x in zip(FEATURES, stats.vector(), strict=True))
    p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
    if stats.empty or not stats.grounded:
        p = min(p, UNGROUNDED_CAP)
    return round(p, 4)


# the trajectory ------------------------------------------------------------------------------------------------------
@dataclass
class Trajectory:
    """Per generated position of a template run: mean and last entropy over the canvas's steps, the share of steps
    before its draft last changed."""

    entropy_mean: np.ndarray
    entropy_last: np.ndarray
    settled: np.ndarray

    @classmethod
    def empty(cls, length: int) -> Trajectory:
        return cls(np.zeros(length), np.zeros(length), np.zeros(length))

    @classmethod
    def of(cls, steps: Sequence[Any], length: int, canvas_length: int) -> Trajectory:
        """From a run's :class:`inference.runtime.events.DenoisingStep` events (batch row 0)."""
        out = cls.empty(length)
        for canvas in sorted({int(e.canvas) for e in steps}):
            mine = [e for e in steps if int(e.canvas) == canvas]
            start = canvas * canvas_length
            width = min(canvas_length, length - start)
            if width <= 0:
                continue
            entropy = np.stack([np.asarray(e.entropy)[0, :width] for e in mine]).astype(np.float64)
            drafts = np.stack([np.asarray(e.draft)[0, :width] for e in mine])
            out.entropy_mean[start : start + width] = entropy.mean(axis=0)
            out.entropy_last[start : start + width] = entropy[-1]
            changed = drafts[1:] != drafts[:-1]
            last = np.where(changed.any(axis=0), changed.shape[0] - np.argmax(changed[::-1], axis=0), 0)
            out.settled[start : start + width] = last / max(1, len(mine))
        return out

    def merged(self, other: Trajectory, span: np.ndarray) -> Trajectory:
        """``other`` inside ``span`` (a re-denoise), this trajectory elsewhere."""
        return Trajectory(
            np.where(span, other.entropy_mean, self.entropy_mean),
            np.where(span, other.entropy_last, self.entropy_last),
            np.where(span, other.settled, self.settled),
        )


def slot_stats(trajectory: Trajectory, slots: Sequence[Any]) -> tuple[float, float, float]:
    """Mean entropy over steps, last entropy and settled share over these slots' positions (the latest settling)."""
    positions = np.concatenate([np.arange(s.start, s.start + s.width) for s in slots]) if slots else np.array([], int)
    if not len(positions):
        return 0.0, 0.0, 0.0
    return (
        float(trajectory.entropy_mean[positions].mean()),
        float(trajectory.entropy_last[positions].mean()),
        float(trajectory.settled[positions].max()),
    )


def value_grounded(value: Any, evidence: dict[str, Any], page_text: str | None) -> bool:
    """The quote is on the cited page and, for a string or number, so is the value itself (case and spacing aside)."""
    if not evidence.get("grounded") or page_text is None:
        return False
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return True  # a choice or a structure: the quote is the evidence
    text = " ".join(str(value).lower().split())
    return bool(text) and text in " ".join(page_text.lower().split())


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == [] or value == {}


# measuring -----------------------------------------------------------------------------------------------------------
def fit(rows: Sequence[Sequence[float]], labels: Sequence[bool], l2: float = 1e-2, rounds: int = 50) -> dict:
    """Logistic regression (Newton's method, a little L2) of ``labels`` on ``rows`` (:meth:`FieldStats.vector`)."""
    x = np.hstack([np.ones((len(rows), 1)), np.asarray(rows, dtype=np.float64)])
    y = np.asarray(labels, dtype=np.float64)
    w = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(x.shape[1])
        w = w - np.linalg.solve(hessian, gradient)
    return {"bias": round(float(w[0]), 4), **{n: round(float(v), 4) for n, v in zip(FEATURES, w[1:], strict=True)}}


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The probability that a right field scores above a wrong one (ties count half); nan without both kinds."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def ece(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: over ``bins`` equal-width confidence bins, the share-weighted gap between the
    mean confidence and the share right."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((s * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(s[inside].mean() - y[inside].mean())
    return float(total)
