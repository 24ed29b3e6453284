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
from .tiny import TINY_LABEL, TINY_SOURCE, TRAINED_LABEL, TRAINED_SOURCE, trained_folder

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
    quant: str = "none"
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


def resolve_dtype(dtype: str, device: str, quant: str = "none") -> str:
    """``auto``: bf16 on CUDA where supported (else fp16), fp16 on MPS, fp32 on the CPU unless the model is
    quantized (then bf16, what bitsandbytes' fused CPU kernel computes in)."""
    if dtype not in DTYPES:
        raise ConfigError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    if dtype != "auto":
        return dtype
    if quant == "nf4" and device == "cpu":
        return "bf16"
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


def is_builtin(source: str) -> bool:
    """The built-in sources: ``tiny`` (random weights, built in memory) and ``tiny-trained`` (shipped weights)."""
    return source in (TINY_SOURCE, TRAINED_SOURCE)


def source_label(source: str) -> str:
    """How a source is named to the user: the built-ins say what they are."""
    return {TINY_SOURCE: TINY_LABEL, TRAINED_SOURCE: TRAINED_LABEL}.get(source, source)


def builtin_folder(source: str) -> Path:
    """The folder a shipped built-in source loads from (through the normal folder path)."""
    folder = trained_folder()
    if not (folder / "config.json").is_file():
        raise WeightsMissingError(
            f"The built-in {source!r} model is not installed ({folder} is missing).",
            path=folder,
            hint="Reinstall the workbench, or use `--model tiny`.",
        )
    return folder


def _missing_message(source: str) -> WeightsMissingError:
    offline = _offline()
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub could not be reached"
    return WeightsMissingError(
        f"The model {source!r} is not a local folder and is not in the Hugging Face cache ({cache}), and {why}.",
        hint=(
            f"Download it on a connected machine with `hf download {source}` (or set HF_HOME to a cache that "
            "holds it), or pass a local folder with config.json and *.safetensors; `--model tiny` runs the "
            "built-in random-weight model."
        ),
    )


def looks_like_path(source: str) -> bool:
    """A local path rather than a hub id (``org/name``): absolute, relative with dots, home, or several parts."""
    if source.startswith(("/", "./", "../", "~", ".\\")) or (len(source) > 1 and source[1] == ":"):
        return True
    return source.count("/") > 1 or "\\" in source


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _probe_hub(source: str) -> None:
    """For a hub id that is not cached: one quick lookup instead of the hub client's retries (about 23 s of
    repeated warnings when the network is down)."""
    if _offline():
        return
    import logging

    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(source, "config.json"), str):
        return
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        model_info(source, timeout=10)
    except GatedRepoError as exc:
        raise WeightsMissingError(
            f"The model {source!r} is gated on the Hugging Face Hub.",
            hint="Accept its licence on the model page and log in with `hf auth login`.",
        ) from exc
    except RepositoryNotFoundError as exc:
        raise WeightsMissingError(
            f"There is no model {source!r} on the Hugging Face Hub (or it is private).",
            hint="Check the spelling (org/name), or pass a local folder.",
        ) from exc
    except Exception as exc:
        raise _missing_message(source) from exc
    finally:
        hub_logger.setLevel(level)


def load_config(source: str) -> Any:
    """The model config, from the tiny builder, a folder, or the hub/cache. No weights are read."""
    if is_tiny(source):
        from .tiny import build_config, build_tokenizer

        return build_config(build_tokenizer())
    if source == TRAINED_SOURCE:
        source = str(builtin_folder(source))
    from transformers import AutoConfig

    path = Path(source).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json; it is not a model folder.", path=path)
    if not path.exists() and looks_like_path(source):
        raise ModelLoadError(
            f"There is no folder {path}.",
            path=path,
            hint="Pass a folder that holds config.json and *.safetensors, a Hugging Face id (org/name), or tiny.",
        )
    if not path.exists():
        _probe_hub(source)
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
            "(model_type 'diffusion_gemma')."
        )
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

    from .quant import is_text_linear

    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion(config)
    groups = dict.fromkeys(GROUPS, 0)
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
        from .quant import NF4_BYTES_PER_PARAM

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
            hint="Choose 4-bit loading (--quant nf4), a smaller dtype, another device, a shorter prompt, or free "
            "memory.",
        )


def choose_quant(
    counts: ParameterCounts, quant: str, dtype: str, device: str, available: int | None = None
) -> tuple[str, str | None]:
    """The quantization to load with, and a sentence saying why when ``auto`` picked NF4."""
    from .quant import QUANT_CHOICES

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


# ---------------------------------------------------------------------- loading
def _has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file()


def load_model(
    source: str,
    dtype: str = "auto",
    device: str = "auto",
    quant: str = "auto",
    progress: Callable[[Any], None] | None = None,
    context: int = 0,
) -> LoadedModel:
    """Load model and processor (see :func:`_load_model`). With ``progress`` the caller shows the progress, so the
    library's own bars (transformers' "Loading weights" on stderr) are off meanwhile."""
    if progress is None:
        return _load_model(source, dtype, device, quant, progress, context)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return _load_model(source, dtype, device, quant, progress, context)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _load_model(
    source: str, dtype: str, device: str, quant: str, progress: Callable[[Any], None] | None, context: int
) -> LoadedModel:
    """Load model and processor. Raises a ``ModelLoadError`` subclass with a user-facing message on failure.

    ``quant``: ``none``, ``nf4`` (4-bit, built by :mod:`inference.quant` and cached on disk), or ``auto`` (NF4 when
    the plain estimate does not fit the device and NF4 does). ``progress`` receives strings and, while a model is
    quantized, :class:`inference.quant.LayerProgress` objects (layer k of n, time left). ``context`` adds the KV cache
    of that many tokens to the fit check.
    """
    say = progress or (lambda _msg: None)
    device = resolve_device(device)
    requested_dtype, dtype = dtype, resolve_dtype(dtype, device, quant)
    say("reading config")
    config = load_config(source)
    counts = count_parameters(config)
    if is_builtin(source) and quant == "auto":
        quant = "none"
    quant, why = choose_quant(counts, quant, dtype, device)
    dtype = resolve_dtype(requested_dtype, device, quant)
    if why:
        say(why)
    if not is_builtin(source):
        check_fits(estimate_memory(counts, dtype, quant, config, context), device)
    if is_tiny(source):
        from .tiny import build_tiny

        say("building the tiny random-weight model")
        model, processor = build_tiny(dtype=torch_dtype(dtype) if quant == "none" else None)
        if quant == "nf4":
            from .quant import QuantSettings, StateDictSource, quantize_model

            quantized = quantize_model(
                model.config,
                StateDictSource(model.state_dict()),
                QuantSettings(),
                torch_dtype(dtype),
                device,
                progress=say,
            )
            quantized.generation_config = model.generation_config
            model = quantized
        model = model.to(device)
        return LoadedModel(
            model=model,
            processor=processor,
            source=source,
            label=TINY_LABEL,
            random_weights=True,
            dtype=dtype,
            device=device,
            counts=counts,
            quant=quant,
        )
    path = builtin_folder(source) if source == TRAINED_SOURCE else Path(source).expanduser()
    where = str(path) if path.exists() else source
    if path.exists() and not _has_safetensors(path):
        raise WeightsMissingError(
            f"{path} has a config but no *.safetensors weights.",
            path=path,
            hint=f"Copy the checkpoint's model*.safetensors files into {path}, or download them with "
            "`hf download <model id> --local-dir <folder>`. Other weight formats are not loaded.",
        )
    if quant == "nf4":
        folder = path if path.exists() else _snapshot_folder(source)
        model, cached = _load_nf4(folder, config, dtype, device, say)
        where = str(folder)
    else:
        model, cached = _load_plain(source, path, where, dtype, device, say), False
    say("loading processor")
    try:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(where, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"The processor (tokenizer, image processor) of {source!r} could not be loaded: {exc}",
            hint="Make sure the folder holds the processor and tokenizer files.",
        ) from exc
    model.eval()
    label = TRAINED_LABEL if source == TRAINED_SOURCE else str(getattr(model.config, "_name_or_path", "") or source)
    if quant == "nf4":
        label = f"{label} (NF4)" if source == TRAINED_SOURCE else f"{source} (NF4)"
    return LoadedModel(
        model=model,
        processor=processor,
        source=source,
        label=label,
        random_weights=False,
        dtype=dtype,
        device=device,
        counts=counts,
        quant=quant,
        extra={"from_cache": cached},
    )


def _load_plain(source: str, path: Path, where: str, dtype: str, device: str, say: Callable[[Any], None]) -> Any:
    from transformers import DiffusionGemmaForBlockDiffusion

    say("loading weights")
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype), "use_safetensors": True, "trust_remote_code": False}
    if device != "cpu":
        kwargs["device_map"] = {"": device}
    try:
        return DiffusionGemmaForBlockDiffusion.from_pretrained(where, **kwargs)
    except OSError as exc:
        if path.exists():
            raise WeightsMissingError(f"Could not read the weights in {path}: {exc}", path=path) from exc
        raise _missing_message(source) from exc


def _snapshot_folder(source: str) -> Path:
    """The local snapshot of a hub id (downloaded if the hub is reachable and it is not cached)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(source, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"])
        )
    except Exception as exc:
        raise _missing_message(source) from exc


def _load_nf4(folder: Path, config: Any, dtype: str, device: str, say: Callable[[Any], None]) -> tuple[Any, bool]:
    """The NF4 model of ``folder``: from the quantized cache when its manifest matches, else built and cached."""
    from .quant import QuantSettings, quantize_model
    from .quant_cache import (
        MODEL_FILE,
        SafetensorsReader,
        cache_folder,
        load_packed,
        manifest_for,
        read_valid_manifest,
        write_cache,
    )

    settings = QuantSettings()
    target = cache_folder(folder, settings, torch_dtype(dtype))
    manifest = manifest_for(folder, config, settings, torch_dtype(dtype))
    if read_valid_manifest(target, manifest):
        say(f"loading the quantized cache {target}")
        model = load_packed(config, target / MODEL_FILE, settings, torch_dtype(dtype), device)
        cached = True
    else:
        say("quantizing to 4-bit NF4 (first load; the result is cached)")
        model = quantize_model(config, SafetensorsReader(folder), settings, torch_dtype(dtype), device, progress=say)
        say(f"writing the quantized cache {target}")
        try:
            write_cache(target, model, manifest)
        except OSError as exc:  # a full disk costs the cache, not the model just built
            say(f"could not write the quantized cache ({exc}); the next load quantizes again")
        cached = False
    _attach_generation_config(model, folder)
    return model, cached


def _attach_generation_config(model: Any, folder: Path) -> None:
    try:
        model.generation_config = model.generation_config_class.from_pretrained(str(folder))
    except (OSError, ValueError):
        pass


def save_tiny(folder: str | Path) -> Path:
    """Write the tiny model, its generation config and processor to ``folder`` as safetensors."""
    from .tiny import build_tiny

    folder = Path(folder)
    model, processor = build_tiny()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
