"""Model helpers for tests: the tiny model written as a checkpoint, and a head that settles sampling."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_tiny(folder: str | Path) -> Path:
    """Write the tiny model, its generation config and processor to ``folder`` as safetensors."""
    from inference.weights.tiny import build_tiny

    folder = Path(folder)
    model, processor = build_tiny()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def sharpen(model: Any, strengths: list[float]) -> Any:
    """Add a per-row bias to the logits toward a fixed token per position: confident, stable drafts."""
    import torch

    vocab = model.config.text_config.vocab_size
    length = model.config.canvas_length
    target = (torch.arange(length) * 7 + 20) % vocab

    def hook(_module, _inputs, output):
        bias = torch.zeros(output.shape[0], length, vocab, dtype=output.dtype)
        for row, strength in enumerate(strengths[: output.shape[0]]):
            bias[row, torch.arange(length), target] = strength
        return output + bias

    model.lm_head.register_forward_hook(hook)
    return model


def towards(model: Any, token: int, strength: float = 50.0) -> Any:
    """Add ``strength`` to one token's logit everywhere: a model that writes that token (end-of-sequence: an
    empty answer, every page transcribed as nothing)."""

    def hook(_module, _inputs, output):
        output = output.clone()
        output[..., token] += strength
        return output

    model.lm_head.register_forward_hook(hook)
    return model


def echo_canvas(model: Any, strengths: list[float]) -> Any:
    """Add a per-row bias to the logits toward the token each position holds now: a row with a strong bias keeps its
    starting noise as its answer and stops after a step or two, so its tokens depend on the noise it drew."""
    import torch

    seen: dict[str, Any] = {}

    def keep_canvas(_module, _args, kwargs):
        seen["canvas"] = kwargs.get("decoder_input_ids")

    def hook(_module, _inputs, output):
        bias = torch.zeros_like(output)
        for row, strength in enumerate(strengths[: output.shape[0]]):
            bias[row].scatter_(-1, seen["canvas"][row, :, None], strength)
        return output + bias

    model.register_forward_pre_hook(keep_canvas, with_kwargs=True)
    model.lm_head.register_forward_hook(hook)
    return model


def writes_then_ends(model: Any, token: int, end: int, count: int = 8, strength: float = 50.0) -> Any:
    """Add ``strength`` to ``token``'s logit at the first ``count`` positions of each canvas and to ``end``'s after
    them: a model that writes a short line and ends in its first canvas (a page done, never cut off)."""

    def hook(_module, _inputs, output):
        output = output.clone()
        output[:, :count, token] += strength
        output[:, count:, end] += strength
        return output

    model.lm_head.register_forward_hook(hook)
    return model
