"""How big a model is, from its config alone: parameter counts per group (built on the meta device), the KV cache
of a context, the memory a load needs, whether it fits the device, and the quantization ``auto`` picks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.errors import ConfigError, InsufficientMemoryError
from inference.weights.choices import QUANT_CHOICES
from inference.weights.devices import available_bytes

BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}
GROUPS = ("embeddings", "attention", "dense_mlp", "experts", "vision", "other")
# Beyond the weights: CUDA context, allocator slack, activations of one 256-token canvas.
RUNTIME_OVERHEAD_BYTES = 1 << 30
RUNTIME_OVERHEAD_FRACTION = 0.05


@dataclass(frozen=True)
class ParameterCounts:
    groups: dict[str, int]
    active: int
    num_experts: int | None
    top_k_experts: int | None
    quantizable: int = 0  # what NF4 packs: text-stack linear layers and the experts

    @property
    def total(self) -> int:
        return sum(self.groups.values())


@dataclass(frozen=True)
class MemoryEstimate:
    dtype: str
    weights_bytes: int
    total_bytes: int
    quant: str = "none"
    cache_bytes: int = 0  # KV cache for the context the estimate was made for
    context: int = 0

    @property
    def total_gib(self) -> float:
        return self.total_bytes / 2**30

    @property
    def label(self) -> str:
        return self.dtype if self.quant == "none" else f"{self.quant} ({self.dtype} for the rest)"


def _group_of(name: str) -> str:
    if name.startswith(("model.encoder.vision_tower", "model.encoder.embed_vision")) or "vision" in name:
        return "vision"
    if "embed_tokens" in name or name.startswith("lm_head"):
        return "embeddings"
    if ".experts." in name or ".router." in name:
        return "experts"
    if ".self_attn." in name:
        return "attention"
    if ".mlp." in name or ".self_conditioning." in name:
        return "dense_mlp"
    return "other"


def count_parameters(config: Any) -> ParameterCounts:
    """Parameter counts by group, from the config alone (the model is built on the meta device)."""
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion

    from inference.weights.quant import is_text_linear

    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion(config)
    groups: dict[str, int] = dict.fromkeys(GROUPS, 0)
    for name, param in model.named_parameters():  # shared (tied) parameters are listed once
        groups[_group_of(name)] += param.numel()
    quantizable, seen = 0, set()
    for name, module in model.named_modules():
        for leaf, param in module.named_parameters(recurse=False):
            packed = (isinstance(module, torch.nn.Linear) and is_text_linear(name)) or leaf in (
                "gate_up_proj",
                "down_proj",
            )
            if packed and id(param) not in seen and leaf != "bias":
                seen.add(id(param))
                quantizable += param.numel()
    text = config.text_config
    num_experts, top_k = getattr(text, "num_experts", None), getattr(text, "top_k_experts", None)
    active = sum(groups.values())
    if num_experts and top_k:
        active -= groups["experts"] - int(groups["experts"] * top_k / num_experts)
    return ParameterCounts(
        groups=groups, active=active, num_experts=num_experts, top_k_experts=top_k, quantizable=quantizable
    )


def kv_cache_bytes(config: Any, context: int, dtype: str, batch: int = 1) -> int:
    """Bytes of the KV cache for ``context`` tokens, from the layer types: a full-attention layer holds every token,
    a sliding layer its window. Keys and values are both stored (also where a layer reuses keys as values)."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config.text_config
    per_layer = getattr(text, "per_layer_config", None)
    total = 0
    for index, kind in enumerate(text.layer_types):
        layer = per_layer[index] if per_layer is not None else text
        head_dim, kv_heads = layer.head_dim, layer.num_key_value_heads
        tokens = min(context, text.sliding_window) if kind == "sliding_attention" else context
        total += 2 * tokens * kv_heads * head_dim
    return int(total * batch * BYTES_PER_PARAM[dtype])


def estimate_memory(
    counts: ParameterCounts, dtype: str, quant: str = "none", config: Any = None, context: int = 0, batch: int = 1
) -> MemoryEstimate:
    """Weights (per dtype, or NF4 for what it packs) plus the KV cache of ``context`` tokens and runtime overhead."""
    if dtype not in BYTES_PER_PARAM:
        raise ConfigError(f"No memory estimate for dtype {dtype!r}.")
    if quant == "nf4":
        from inference.weights.quant import NF4_BYTES_PER_PARAM

        weights = int(
            counts.quantizable * NF4_BYTES_PER_PARAM + (counts.total - counts.quantizable) * BYTES_PER_PARAM[dtype]
        )
    elif quant == "none":
        weights = int(counts.total * BYTES_PER_PARAM[dtype])
    else:
        raise ConfigError(f"Unknown quantization {quant!r}; choose none or nf4.")
    cache = kv_cache_bytes(config, context, dtype, batch) if config is not None and context else 0
    total = weights + cache + int(weights * RUNTIME_OVERHEAD_FRACTION) + RUNTIME_OVERHEAD_BYTES
    return MemoryEstimate(
        dtype=dtype, weights_bytes=weights, total_bytes=total, quant=quant, cache_bytes=cache, context=context
    )


def check_fits(estimate: MemoryEstimate, device: str, available: int | None = None) -> None:
    available = available_bytes(device) if available is None else available
    if available is not None and estimate.total_bytes > available:
        cache = (
            f", KV cache for {estimate.context:,} tokens {estimate.cache_bytes / 2**30:.2f} GiB"
            if estimate.cache_bytes
            else ""
        )
        raise InsufficientMemoryError(
            f"The model needs about {estimate.total_gib:.1f} GiB in {estimate.label} "
            f"(weights {estimate.weights_bytes / 2**30:.1f} GiB{cache}) but {device} has "
            f"{available / 2**30:.1f} GiB free.",
            hint="Choose $quant_nf4, a smaller dtype, another device, a shorter prompt, or free memory.",
        )


def choose_quant(
    counts: ParameterCounts, quant: str, dtype: str, device: str, available: int | None = None
) -> tuple[str, str | None]:
    """The quantization to load with, and a sentence saying why when ``auto`` picked NF4."""
    if quant not in QUANT_CHOICES:
        raise ConfigError(f"Unknown quantization {quant!r}; choose one of {', '.join(QUANT_CHOICES)}.")
    if quant != "auto":
        return quant, None
    available = available_bytes(device) if available is None else available
    plain = estimate_memory(counts, dtype)
    if available is None or plain.total_bytes <= available:
        return "none", None
    nf4 = estimate_memory(counts, dtype, "nf4")
    if nf4.total_bytes <= available:
        return "nf4", (
            f"{dtype} needs about {plain.total_gib:.1f} GiB but {device} has "
            f"{available / 2**30:.1f} GiB free: loading in 4-bit NF4 (about {nf4.total_gib:.1f} GiB)."
        )
    return "none", None  # neither fits: the fit check says so with the plain figure
