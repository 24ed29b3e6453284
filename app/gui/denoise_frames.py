"""What the denoising panel records: one frame per denoising step of one canvas, each position in a state (noise,
accepted this step, kept, committed). Plain data made from the engine's events; no Qt, so it is drawn by the views
(``denoise_views``) and replayed by the panel's scrubber alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NOISE, ACCEPTED, KEPT, COMMITTED, EMPTY = range(5)
STATE_NAMES = {
    NOISE: "noise (re-noised)",
    ACCEPTED: "accepted this step",
    KEPT: "kept",
    COMMITTED: "committed",
    EMPTY: "not started",
}


@dataclass
class Frame:
    """What one cell grid shows: one step of one canvas (row 0 of the batch)."""

    canvas: int
    step: int
    draft: np.ndarray  # (n,) int32
    state: np.ndarray  # (n,) int8
    entropy: np.ndarray  # (n,) float16
    temperature: float = 0.0
    run: int = 1  # which run of the session (a window parse runs once per page)
    run_base: int = 0  # the session-wide index of that run's first canvas (``canvas`` counts across runs)

    def label(self) -> str:
        """``canvas 2`` in the first run, ``run 3, canvas 1`` in later ones (canvases count from 1 in each run)."""
        within = f"canvas {self.canvas - self.run_base + 1}"
        return within if self.run <= 1 else f"run {self.run}, {within}"


def frame_from_step(event: Any, previous: Frame | None, run: int = 1, base: int = 0) -> Frame:
    """The frame of one step; ``base``: canvases before this run (the engine counts canvases from 0 in each run)."""
    accepted = np.asarray(event.accepted[0], dtype=bool)
    renoised = np.asarray(event.renoised[0], dtype=bool)
    state = np.full(accepted.shape, NOISE, dtype=np.int8)
    canvas = event.canvas + base
    kept_before = previous is not None and previous.canvas == canvas and previous.state.shape == state.shape
    before = np.isin(previous.state, (ACCEPTED, KEPT)) if kept_before else np.zeros_like(accepted)
    state[accepted & before] = KEPT
    state[accepted & ~before] = ACCEPTED
    state[~accepted & ~renoised] = KEPT if event.finished else NOISE
    return Frame(
        canvas,
        event.step,
        np.asarray(event.draft[0]),
        state,
        np.asarray(event.entropy[0]),
        float(event.temperature),
        run,
        base,
    )
