"""One denoising step of a canvas (``generate()``'s steps 1.c.i-v) and what it shows: a pure function of the
canvas's state and the things that stay fixed while the canvas is denoised, apart from the engine's bookkeeping."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

import inference.runtime.sampling as sampling
from inference.runtime.events import DenoisingStep, frozen_array
from inference.runtime.params import DiffusionParams
from inference.runtime.template import CanvasRule


@dataclass(frozen=True)
class CanvasInputs:
    """What every step of one canvas reads and never changes."""

    model: Any
    params: DiffusionParams
    vocab_size: int
    stability: sampling.StabilityTracker | None
    mask_mapping: Any
    cache: Any
    decoder_position_ids: torch.Tensor
    model_kwargs: dict[str, Any]
    noise: sampling.Noise
    rule: CanvasRule | None = None  # a template's pins and allowed sets on this canvas


@dataclass(frozen=True)
class CanvasState:
    """The canvas between two steps."""

    current: torch.Tensor  # the noisy canvas the next step reads
    argmax: torch.Tensor  # the last step's draft
    self_conditioning: torch.Tensor | None  # the last step's scaled logits
    finished: torch.Tensor  # rows whose denoising stopped (adaptive stopping)


@dataclass(frozen=True)
class StepOutput:
    state: CanvasState
    packed: torch.Tensor  # what the step shows, for one host transfer (see ``pack``)
    temperature: float  # the step's temperature, as a host float


def denoise_step(
    fixed: CanvasInputs, state: CanvasState, remaining: int, drawing: np.ndarray, any_finished: bool
) -> StepOutput:
    """One denoising step. ``remaining`` counts down from ``max_denoising_steps`` to 1; ``drawing``: the rows still
    running, the only ones that draw from per-row generators (the others' draws are discarded); ``any_finished``:
    whether a row stopped before this step (a host flag, so the step needs no device sync to know)."""
    params, rule, noise, current = fixed.params, fixed.rule, fixed.noise, state.current
    # 1.c.i. Run the decoder on the canvas, the cache and the self-conditioning logits.
    logits = fixed.model(
        decoder_input_ids=current,
        self_conditioning_logits=state.self_conditioning,
        decoder_attention_mask=fixed.mask_mapping,
        cache=fixed.cache,
        decoder_position_ids=fixed.decoder_position_ids,
        **fixed.model_kwargs,
    ).logits
    # 1.c.ii. Temperature-scale, take the argmax draft.
    step = torch.tensor(remaining, dtype=torch.int32, device=current.device)
    temperature = sampling.temperature_at(step, params.t_min, params.t_max, params.max_denoising_steps)
    scaled = logits / temperature  # a device tensor: CUDA divides by a CPU scalar via its reciprocal
    if rule is not None:  # pins and allowed sets: other tokens masked before sampling, argmax and entropy
        scaled = rule.mask(scaled)
    batch_size, canvas_length = current.shape
    new_argmax = torch.argmax(scaled, dim=-1)
    # 1.c.iii. Accept by the entropy bound; re-noise everything else. The denoiser's sample is drawn (as
    # generate() draws it, before the fresh canvas) but computed only where it is accepted.
    entropy = sampling.token_entropy(scaled)
    accepted_mask = sampling.entropy_bound_accept(entropy, params.entropy_bound)
    if rule is not None:  # pins count as accepted (their entropy is 0 anyway) and are never re-noised
        accepted_mask = accepted_mask | rule.pin_mask[None]
    denoised = noise.sample_at(scaled, accepted_mask, drawing)
    accepted = torch.where(accepted_mask, denoised, current)
    drawn = noise.canvas(batch_size, canvas_length, fixed.vocab_size, current.device, drawing)
    new_current = torch.where(~accepted_mask, drawn, accepted)
    renoised = ~accepted_mask
    finished = state.finished
    # 1.c.iv. Adaptive stopping. Rows that stopped before keep their canvas, draft and logits.
    if fixed.stability is not None:
        if any_finished:
            keep = finished[:, None]
            new_argmax = torch.where(keep, state.argmax, new_argmax)
            new_current = torch.where(keep, current, new_current)
            renoised = renoised & ~keep
            if state.self_conditioning is not None:  # a row can only have finished after a first step
                scaled = torch.where(finished[:, None, None], state.self_conditioning, scaled)
        stop = fixed.stability.update(new_argmax)
        if params.confidence_threshold is not None:
            stop = stop & sampling.confident(entropy, params.confidence_threshold)
        finished = finished | stop
    # 1.c.v. This step's scaled logits condition the next step.
    self_conditioning = scaled.to(fixed.model.model.decoder.embed_tokens.weight.dtype)
    shown = sampling.temperature_at(remaining, params.t_min, params.t_max, params.max_denoising_steps)
    return StepOutput(
        state=replace(
            state, current=new_current, argmax=new_argmax, self_conditioning=self_conditioning, finished=finished
        ),
        packed=pack(new_argmax, accepted_mask, renoised, finished, entropy),
        temperature=float(shown),
    )


def pack(
    argmax: torch.Tensor, accepted: torch.Tensor, renoised: torch.Tensor, finished: torch.Tensor, entropy: torch.Tensor
) -> torch.Tensor:
    """What a step shows, as one int32 device tensor for one host transfer: the argmax draft; accepted, re-noised
    and row-finished flags as bits; the float16 entropy's bits."""
    as_int = torch.int32
    flags = accepted.to(as_int) | (renoised.to(as_int) << 1) | (finished[:, None].to(as_int) << 2)
    return torch.stack([argmax.to(as_int), flags, entropy.to(torch.float16).view(torch.int16).to(as_int)])


@dataclass(frozen=True)
class StepPlace:
    """Where a step is: its canvas, its number, the steps left, and when it started."""

    canvas: int
    step: int
    remaining: int
    t0: float


def step_event(host: np.ndarray, was_finished: np.ndarray, where: StepPlace, temperature: float) -> DenoisingStep:
    """The step event from the packed host payload (argmax, flags, float16 entropy bits)."""
    flags = host[1]
    return DenoisingStep(
        canvas=where.canvas,
        step=where.step,
        remaining=where.remaining,
        draft=frozen_array(host[0], np.int32),
        accepted=frozen_array((flags & 1).astype(bool) & ~was_finished[:, None], bool),
        renoised=frozen_array((flags & 2).astype(bool), bool),
        entropy=frozen_array(host[2].astype(np.int16).view(np.float16), np.float16),
        temperature=temperature,
        finished=frozen_array((flags[:, 0] & 4).astype(bool), bool),
        seconds=time.perf_counter() - where.t0,
    )
