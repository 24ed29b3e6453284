"""Model loading: a Hugging Face id, a local folder, or the built-in ``tiny`` model.

Safetensors only, never ``trust_remote_code``; ``HF_HUB_OFFLINE`` and the Hugging Face cache are honoured by
``huggingface_hub`` itself. Before any weight is read, the config alone gives a parameter count per group and an
estimate of the memory the weights need; a load that will not fit the chosen device is refused with that figure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, InsufficientMemoryError, ModelLoadError, WeightsMissingError
from .tiny import TINY_LABEL, TINY_SOURCE

DTYPES = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "mps", "cpu")
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

    @property
    def total(self) -> int:
        return sum(self.groups.values())


@dataclass(frozen=True)
class MemoryEstimate:
    dtype: str
    weights_bytes: int
    total_bytes: int

    @property
    def total_gib(self) -> float:
        return self.total_bytes / 2**30


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    source: str
    label: str
    random_weights: bool
    dtype: str
    device: str
    counts: ParameterCounts | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)


# ---------------------------------------------------------------------- devices and dtypes
def resolve_device(device: str = "auto") -> str:
    import torch

    if device not in DEVICES:
        raise ConfigError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("CUDA was requested but no CUDA device is available.", hint="Use --device cpu.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("MPS was requested but is not available on this machine.", hint="Use --device cpu.")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype not in DTYPES:
        raise ConfigError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    if dtype != "auto":
        return dtype
    if device == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp16" if device == "mps" else "fp32"


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def available_bytes(device: str) -> int | None:
    """Free memory on the device, or None where it cannot be told."""
    import torch

    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    if device == "mps":
        return int(torch.mps.recommended_max_memory())
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


# ---------------------------------------------------------------------- config, counts, estimate
def is_tiny(source: str) -> bool:
    return source == TINY_SOURCE


def _missing_message(source: str) -> WeightsMissingError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub could not be reached"
    return WeightsMissingError(
        f"The model {source!r} is not a local folder and is not in the Hugging Face cache ({cache}), "
        f"and {why}.",
        hint=(f"Download it on a connected machine with `hf download {source}` (or set HF_HOME to a cache that "
              "holds it), or pass a local folder with config.json and *.safetensors; `--model tiny` runs the "
              "built-in random-weight model."),
    )


def load_config(source: str) -> Any:
    """The model config, from the tiny builder, a folder, or the hub/cache. No weights are read."""
    if is_tiny(source):
        from .tiny import build_config, build_tokenizer

        return build_config(build_tokenizer())
    from transformers import AutoConfig

    path = Path(source).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json; it is not a model folder.", path=path)
    try:
        config = AutoConfig.from_pretrained(str(path) if path.exists() else source, trust_remote_code=False)
    except OSError as exc:
        if path.exists():
            raise ModelLoadError(f"Could not read the config in {path}: {exc}", path=path) from exc
        raise _missing_message(source) from exc
    except ValueError as exc:
        raise ModelLoadError(f"{source!r} is not a model this transformers version knows: {exc}") from exc
    if getattr(config, "model_type", None) != "diffusion_gemma":
        raise ModelLoadError(
            f"{source!r} is a {getattr(config, 'model_type', 'unknown')!r} model; the workbench runs DiffusionGemma "
            "(model_type 'diffusion_gemma').")
    return config


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

    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion(config)
    groups = dict.fromkeys(GROUPS, 0)
    for name, param in model.named_parameters():  # shared (tied) parameters are listed once
        groups[_group_of(name)] += param.numel()
    text = config.text_config
    num_experts, top_k = getattr(text, "num_experts", None), getattr(text, "top_k_experts", None)
    active = sum(groups.values())
    if num_experts and top_k:
        active -= groups["experts"] - int(groups["experts"] * top_k / num_experts)
    return ParameterCounts(groups=groups, active=active, num_experts=num_experts, top_k_experts=top_k)


def estimate_memory(counts: ParameterCounts, dtype: str) -> MemoryEstimate:
    if dtype not in BYTES_PER_PARAM:
        raise ConfigError(f"No memory estimate for dtype {dtype!r}.")
    weights = int(counts.total * BYTES_PER_PARAM[dtype])
    total = weights + int(weights * RUNTIME_OVERHEAD_FRACTION) + RUNTIME_OVERHEAD_BYTES
    return MemoryEstimate(dtype=dtype, weights_bytes=weights, total_bytes=total)


def check_fits(estimate: MemoryEstimate, device: str, available: int | None = None) -> None:
    available = available_bytes(device) if available is None else available
    if available is not None and estimate.total_bytes > available:
        raise InsufficientMemoryError(
            f"The model needs about {estimate.total_gib:.1f} GiB in {estimate.dtype} "
            f"(weights {estimate.weights_bytes / 2**30:.1f} GiB) but {device} has {available / 2**30:.1f} GiB free.",
            hint="Choose a smaller dtype, another device, or free memory.",
        )


# ---------------------------------------------------------------------- loading
def _has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file()


def load_model(source: str, dtype: str = "auto", device: str = "auto",
               progress: Callable[[str], None] | None = None) -> LoadedModel:
    """Load model and processor. Raises a ``ModelLoadError`` subclass with a user-facing message on failure."""
    say = progress or (lambda _msg: None)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    say("reading config")
    config = load_config(source)
    counts = count_parameters(config)
    if not is_tiny(source):
        check_fits(estimate_memory(counts, dtype), device)
    if is_tiny(source):
        from .tiny import build_tiny

        say("building the tiny random-weight model")
        model, processor = build_tiny(dtype=torch_dtype(dtype))
        model = model.to(device)
        return LoadedModel(model=model, processor=processor, source=source, label=TINY_LABEL, random_weights=True,
                           dtype=dtype, device=device, counts=counts)
    path = Path(source).expanduser()
    where = str(path) if path.exists() else source
    if path.exists() and not _has_safetensors(path):
        raise WeightsMissingError(
            f"{path} has a config but no *.safetensors weights.", path=path,
            hint=f"Copy the checkpoint's model*.safetensors files into {path}, or download them with "
                 "`hf download <model id> --local-dir <folder>`. Other weight formats are not loaded.",
        )
    from transformers import AutoProcessor, DiffusionGemmaForBlockDiffusion

    say("loading weights")
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype), "use_safetensors": True, "trust_remote_code": False}
    if device != "cpu":
        kwargs["device_map"] = {"": device}
    try:
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(where, **kwargs)
    except OSError as exc:
        if path.exists():
            raise WeightsMissingError(f"Could not read the weights in {path}: {exc}", path=path) from exc
        raise _missing_message(source) from exc
    say("loading processor")
    try:
        processor = AutoProcessor.from_pretrained(where, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"The processor (tokenizer, image processor) of {source!r} could not be loaded: {exc}",
                             hint="Make sure the folder holds the processor and tokenizer files.") from exc
    model.eval()
    label = str(getattr(model.config, "_name_or_path", "") or source)
    return LoadedModel(model=model, processor=processor, source=source, label=label, random_weights=False,
                       dtype=dtype, device=device, counts=counts)


def save_tiny(folder: str | Path) -> Path:
    """Write the tiny model, its generation config and processor to ``folder`` as safetensors."""
    from .tiny import build_tiny

    folder = Path(folder)
    model, processor = build_tiny()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
