"""What the engine keeps: a ``Session`` between turns (the KV cache and the last canvas), and a ``RunState`` through
the phases of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import inference.runtime.sampling as sampling
from inference.runtime.template import CanvasRule, CanvasTemplate


@dataclass
class Session:
    """State kept between turns: the KV cache and the last canvas, which is not in the cache yet.

    ``generate()`` encodes a canvas into the cache only when the next one starts, so the last committed canvas
    (up to its end-of-sequence token) is prepended to the next turn's input.
    """

    cache: Any = None
    pending_ids: torch.Tensor | None = None
    turns: int = 0
    # keep_prompt: after the prefill, keep a copy of the cache holding just the prompt (``prompt_cache``), so that
    # :meth:`DiffusionEngine.reopen` can denoise a span of the answer again against it (the copy costs the prompt's
    # KV cache once more in memory).
    keep_prompt: bool = False
    prompt_cache: Any = None

    @property
    def cached_tokens(self) -> int:
        return 0 if self.cache is None else int(self.cache.get_seq_length())


@dataclass
class RunState:
    """One run's tensors and counters, as the engine's phases pass them along."""

    input_ids: torch.Tensor
    prompt_len: int
    batch_size: int
    device: torch.device
    eos: torch.Tensor | None
    pad_token_id: int | None
    finished_sequences: torch.Tensor
    forward_passes: torch.Tensor
    cache: Any
    cached: int  # tokens in the cache before this run
    cur_len: int
    max_new_canvases: int
    model_kwargs: dict[str, Any]
    attention_mask: torch.Tensor
    decoder_attention_mask: torch.Tensor
    encoder_position_ids: torch.Tensor
    decoder_position_ids: torch.Tensor
    stability: sampling.StabilityTracker | None
    noise: sampling.Noise = field(default_factory=sampling.Noise)
    done_rows: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=bool)
    )  # host copy of finished_sequences, as of the last commit
    images: int = 0
    template: CanvasTemplate | None = None
    rule: CanvasRule | None = None  # the template's part on the canvas being denoised
    last_logits: torch.Tensor | None = None  # the last step's scaled logits (kept only under a template)
    steps_per_canvas: list[int] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # per row, the text the committed canvases have given so far
    prefill_seconds: float = 0.0
    diffusion_seconds: float = 0.0
