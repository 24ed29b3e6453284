"""4-bit (NF4) DiffusionGemma: quantized modules and the streaming quantizer.

transformers' bitsandbytes path cannot quantize this model: the encoder's text stack is tied to the decoder's (tied
keys are skipped) and the mixture-of-experts weights are fused 3-D parameters that bitsandbytes never touches, yet
they are 22.8B of the 25.8B parameters. So the model is built here:

- on the meta device, with each encoder text module *being* the decoder's module (quantized once, stored once);
- layer by layer from a tensor source (a safetensors checkpoint read tensor by tensor, or a state dict), so that
  beyond the quantized model at most one layer's weights in their stored dtype are resident;
- every ``nn.Linear`` of the text stack (attention, dense MLP, self-conditioning) becomes a bitsandbytes
  ``Linear4bit``; the fused experts become :class:`NF4Experts`, quantized expert by expert, which dequantizes in its
  forward only the experts its tokens were routed to, with the routing and weighting of transformers' eager
  experts; router, norms and embeddings stay in the model dtype (the vision tower too, unless asked).

The packed bytes are the same on every bitsandbytes backend, so one quantized cache (``weights/quant_cache.py``)
serves the CPU and CUDA.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from torch import nn

from inference.errors import ConfigError, ModelLoadError

# A transformers model: its submodules are reached by attribute (nn.Module.__getattr__, typed Tensor | Module).
HFModel = Any
EXPERT_CHUNK = 8  # experts quantized per read: keeps the transient at a few hundred MB at full size
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)  # packed nibbles + uint8 absmax per block + nested fp32 absmax


@dataclass(frozen=True)
class QuantSettings:
    """How the model is quantized. Part of the quantized cache's key: a change rebuilds the cache."""

    scheme: str = "nf4"
    blocksize: int = 64
    double_quant: bool = True
    vision: bool = False  # also quantize the vision tower's linear layers

    def __post_init__(self) -> None:
        if self.scheme != "nf4":
            raise ConfigError(f"Unknown quantization scheme {self.scheme!r}; the workbench builds 'nf4'.")
        if self.blocksize not in (32, 64, 128, 256, 512, 1024, 2048, 4096):
            raise ConfigError(f"Block size {self.blocksize} is not one bitsandbytes supports.")

    @property
    def slug(self) -> str:
        return f"{self.scheme}-b{self.blocksize}{'-dq' if self.double_quant else ''}{'-vis' if self.vision else ''}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TensorSource(Protocol):
    """Where the unquantized weights come from: ``get`` returns a tensor (rows ``start:stop`` of dim 0 if given)."""

    def names(self) -> Iterable[str]: ...

    def get(self, name: str, start: int | None = None, stop: int | None = None) -> torch.Tensor: ...


class StateDictSource:
    """A tensor source over an in-memory state dict (the built-in tiny model, tests)."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self.state = state

    def names(self) -> Iterable[str]:
        return self.state.keys()

    def get(self, name: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        tensor = self.state[name]
        return tensor if start is None else tensor[start:stop]


# ---------------------------------------------------------------------- NF4 pieces
def bitsandbytes_module() -> Any:
    """bitsandbytes, imported so that its warning about the optional ``kernels`` package stays quiet (every import
    of bitsandbytes in the workbench goes through here)."""
    import logging

    # Without the optional `kernels` package (which fetches code from the hub) bitsandbytes warns on import and uses
    # its own CPU kernels; that is the expected path here, not something a user can act on.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # With `kernels` installed (transformers pulls it in) and the hub offline, it warns that it skips a trust check
    # for a kernel it then does not fetch: nothing for the user either.
    logging.getLogger("kernels").setLevel(logging.ERROR)
    try:
        import bitsandbytes as bnb
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelLoadError(
            "4-bit loading needs the bitsandbytes package.", hint="pip install 'bitsandbytes>=0.45'"
        ) from exc
    return bnb


def _linear4bit(
    in_features: int, out_features: int, compute_dtype: torch.dtype, double_quant: bool, quant_type: str
) -> nn.Module:
    bnb = bitsandbytes_module()
    layer = bnb.nn.Linear4bit(
        in_features,
        out_features,
        bias=False,
        compute_dtype=compute_dtype,
        compress_statistics=double_quant,
        quant_type=quant_type,
        device="meta",
    )
    if compute_dtype == torch.float32:
        # The fused AVX512-BF16 CPU kernel repacks the weight on first use with bf16 scales and computes in bf16;
        # an fp32 model keeps bitsandbytes' dequantize-then-matmul path, so fp32 means fp32 (and stays exact).
        layer.support_avx512bf16_for_cpu = False
    return layer


def quantize_linear(
    weight: torch.Tensor, settings: QuantSettings, compute_dtype: torch.dtype, device: torch.device | str
) -> nn.Module:
    """A bitsandbytes ``Linear4bit`` holding ``weight`` (out x in) in NF4, quantized on ``device``."""
    bnb = bitsandbytes_module()
    out_features, in_features = weight.shape
    layer = _linear4bit(in_features, out_features, compute_dtype, settings.double_quant, settings.scheme)
    packed, state = bnb.functional.quantize_4bit(
        weight.to(device).contiguous(),
        blocksize=settings.blocksize,
        compress_statistics=settings.double_quant,
        quant_type=settings.scheme,
    )
    state.dtype = compute_dtype
    layer.weight = bnb.nn.Params4bit.from_prequantized(packed, state.as_dict(packed=True), device=device, module=layer)
    layer.weight.quant_state = state
    layer.quant_state = state
    return layer


def linear4bit_from_stats(
    packed: torch.Tensor, stats: dict[str, Any], compute_dtype: torch.dtype, device: torch.device | str
) -> nn.Module:
    """Rebuild a ``Linear4bit`` from its packed weight and the stats ``state.as_dict(packed=True)`` gave."""
    bnb = bitsandbytes_module()
    weight = bnb.nn.Params4bit.from_prequantized(packed, stats, device=device)
    out_features, in_features = weight.quant_state.shape
    layer = _linear4bit(
        in_features, out_features, compute_dtype, weight.quant_state.nested, weight.quant_state.quant_type
    )
    weight.quant_state.dtype = compute_dtype
    weight.module = layer
    layer.weight = weight
    layer.quant_state = weight.quant_state
    return layer


class NF4Experts(nn.Module):
    """The fused experts of one layer in NF4, one quantization state per expert.

    Buffers (saved in the quantized cache): ``{w}_q`` (experts, n/2) packed nibbles, ``{w}_absmax`` (experts,
    n/blocksize) uint8 with double quantization (else fp32), ``{w}_nested`` (experts, blocks of 256 absmax) and
    ``{w}_offset`` (experts,) fp32, for ``w`` in ``gate_up`` and ``down``; ``code`` and ``nested_code`` are the NF4 and
    dynamic maps. The forward is transformers' eager experts loop; each routed expert's matrices are dequantized to
    the activation dtype just before use, so the transient is one expert.
    """

    WEIGHTS = ("gate_up", "down")
    code: torch.Tensor
    nested_code: torch.Tensor

    def __init__(
        self,
        num_experts: int,
        hidden_dim: int,
        intermediate_dim: int,
        act_fn: Any,
        blocksize: int = 64,
        double_quant: bool = True,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.blocksize = blocksize
        self.double_quant = double_quant
        self.act_fn = act_fn
        self.shapes = {"gate_up": (2 * intermediate_dim, hidden_dim), "down": (hidden_dim, intermediate_dim)}
        for name, (rows, cols) in self.shapes.items():
            numel = rows * cols
            blocks = -(-numel // blocksize)
            self.register_buffer(
                f"{name}_q", torch.zeros(num_experts, (numel + 1) // 2, dtype=torch.uint8, device=device)
            )
            absmax_dtype = torch.uint8 if double_quant else torch.float32
            self.register_buffer(f"{name}_absmax", torch.zeros(num_experts, blocks, dtype=absmax_dtype, device=device))
            if double_quant:
                self.register_buffer(
                    f"{name}_nested", torch.zeros(num_experts, -(-blocks // 256), dtype=torch.float32, device=device)
                )
                self.register_buffer(f"{name}_offset", torch.zeros(num_experts, dtype=torch.float32, device=device))
        self.register_buffer("code", torch.zeros(16, dtype=torch.float32, device=device))
        if double_quant:
            self.register_buffer("nested_code", torch.zeros(256, dtype=torch.float32, device=device))

    @classmethod
    def like(cls, experts: Any, settings: QuantSettings, device: Any = None) -> NF4Experts:
        return cls(
            experts.num_experts,
            experts.hidden_dim,
            experts.intermediate_dim,
            experts.act_fn,
            blocksize=settings.blocksize,
            double_quant=settings.double_quant,
            device=device,
        )

    def quantize_from(
        self, read: Callable[[str, int, int], torch.Tensor], device: Any, chunk: int = EXPERT_CHUNK
    ) -> None:
        """Fill the buffers; ``read(name, start, stop)`` returns experts ``start:stop`` of ``gate_up_proj`` or
        ``down_proj`` in their stored dtype. Only ``chunk`` experts are unquantized at a time."""
        functional = bitsandbytes_module().functional
        for name in self.WEIGHTS:
            for start in range(0, self.num_experts, chunk):
                stop = min(start + chunk, self.num_experts)
                block = read(f"{name}_proj", start, stop).to(device)
                for offset, expert in enumerate(block):
                    packed, state = functional.quantize_4bit(
                        expert.contiguous(),
                        blocksize=self.blocksize,
                        compress_statistics=self.double_quant,
                        quant_type="nf4",
                    )
                    self._store(name, start + offset, packed, state)
                del block

    def _store(self, name: str, index: int, packed: torch.Tensor, state: Any) -> None:
        getattr(self, f"{name}_q")[index].copy_(packed.view(-1))
        getattr(self, f"{name}_absmax")[index].copy_(state.absmax.view(-1))
        self.code.copy_(state.code)
        if self.double_quant:
            getattr(self, f"{name}_nested")[index].copy_(state.state2.absmax.view(-1))
            getattr(self, f"{name}_offset")[index] = state.offset
            self.nested_code.copy_(state.state2.code)

    def dequantize(self, name: str, index: int, dtype: torch.dtype) -> torch.Tensor:
        """Expert ``index``'s ``gate_up`` or ``down`` matrix in ``dtype``."""
        functional = bitsandbytes_module().functional
        state2 = None
        offset = None
        if self.double_quant:
            state2 = functional.QuantState(
                absmax=getattr(self, f"{name}_nested")[index], code=self.nested_code, blocksize=256, dtype=torch.float32
            )
            offset = getattr(self, f"{name}_offset")[index]
        state = functional.QuantState(
            absmax=getattr(self, f"{name}_absmax")[index],
            shape=self.shapes[name],
            code=self.code,
            blocksize=self.blocksize,
            quant_type="nf4",
            dtype=dtype,
            offset=offset,
            state2=state2,
        )
        return functional.dequantize_4bit(getattr(self, f"{name}_q")[index].view(-1, 1), state)

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        final = torch.zeros_like(hidden_states)
        with torch.no_grad():
            expert_mask = nn.functional.one_hot(top_k_index, num_classes=self.num_experts + 1).permute(2, 1, 0)
            hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero().flatten().tolist()
        dtype = hidden_states.dtype
        for index in hit:
            if index == self.num_experts:
                continue
            top_k_pos, token_idx = torch.where(expert_mask[index])
            state = hidden_states[token_idx]
            gate, up = nn.functional.linear(state, self.dequantize("gate_up", index, dtype)).chunk(2, dim=-1)
            out = nn.functional.linear(self.act_fn(gate) * up, self.dequantize("down", index, dtype))
            out = out * top_k_weights[token_idx, top_k_pos, None]
            final.index_add_(0, token_idx, out.to(final.dtype))
        return final


# ---------------------------------------------------------------------- the model skeleton
ENCODER_TEXT = "model.encoder.language_model."
DECODER = "model.decoder."


def share_text_modules(model: HFModel) -> None:
    """Make each encoder text module the decoder's module (the checkpoint ties their weights).

    Layers differ in class (the encoder's attention writes the cache, the decoder's reads it), so the sharing is
    one level down: projections, norms, MLP, router and experts. Buffers that are not tied (``layer_scalar``) and
    the layer's own code stay separate.
    """
    encoder = model.model.encoder.language_model
    decoder = model.model.decoder
    encoder.embed_tokens = decoder.embed_tokens
    encoder.norm = decoder.norm
    for enc, dec in zip(encoder.layers, decoder.layers, strict=True):
        for name, child in dec.named_children():
            if name == "self_attn":
                for sub, module in child.named_children():
                    setattr(enc.self_attn, sub, module)
            else:
                setattr(enc, name, child)


def is_text_linear(name: str) -> bool:
    """Linear layers of the text stack that become 4-bit (the router's projection stays in the model dtype)."""
    return name.startswith((DECODER, ENCODER_TEXT)) and ".router." not in name


def _vision_linear(name: str) -> bool:
    return name.startswith("model.encoder.vision_tower.")


def aliases(name: str) -> list[str]:
    """A parameter's name and the names a checkpoint may store it under (tied weights are saved once)."""
    names = [name]
    if name.startswith(DECODER):
        names.append(ENCODER_TEXT + name[len(DECODER) :])
    elif name.startswith(ENCODER_TEXT):
        names.append(DECODER + name[len(ENCODER_TEXT) :])
    if name in ("lm_head.weight", DECODER + "embed_tokens.weight", ENCODER_TEXT + "embed_tokens.weight"):
        names += [
            n
            for n in (
                "model.decoder.embed_tokens.weight",
                "model.encoder.language_model.embed_tokens.weight",
                "lm_head.weight",
            )
            if n not in names
        ]
    return names


class _Resolver:
    def __init__(self, source: TensorSource) -> None:
        self.source = source
        self.available = set(source.names())

    def find(self, name: str) -> str:
        for alias in aliases(name):
            if alias in self.available:
                return alias
        raise ModelLoadError(
            f"The checkpoint has no tensor {name!r} (nor a tied copy of it).",
            hint="The folder may hold a different model or an incomplete download.",
        )

    def get(self, name: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        return self.source.get(self.find(name), start, stop)


def set_tensor(root: nn.Module, name: str, tensor: torch.Tensor) -> None:
    module_name, _, leaf = name.rpartition(".")
    module = root.get_submodule(module_name) if module_name else root
    if leaf in module._parameters:
        module._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)
    else:
        module._buffers[leaf] = tensor


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, leaf, new)


def install(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` at ``name``; under a decoder layer, also at the encoder layer's matching place."""
    _replace(model, name, module)
    if name.startswith(f"{DECODER}layers."):
        _replace(model, ENCODER_TEXT + name[len(DECODER) :], module)


def empty_model(config: Any, dtype: torch.dtype) -> HFModel:
    """The model with parameters on the meta device (buffers real, as computed by the modules) and shared text."""
    from accelerate import init_empty_weights
    from transformers import DiffusionGemmaForBlockDiffusion

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # as from_pretrained does: float buffers are built in the model dtype
    try:
        with init_empty_weights(include_buffers=False):
            model = DiffusionGemmaForBlockDiffusion(config)
    finally:
        torch.set_default_dtype(previous)
    share_text_modules(model)
    return model


@dataclass(frozen=True)
class LayerProgress:
    """Progress of a build: ``done`` of ``total`` layers, ``seconds`` so far."""

    what: str
    done: int
    total: int
    seconds: float

    @property
    def seconds_left(self) -> float | None:
        return None if self.done <= 0 else self.seconds * (self.total - self.done) / self.done

    def __str__(self) -> str:
        left = self.seconds_left
        tail = "" if left is None or self.done >= self.total else f", about {_duration(left)} left"
        return f"{self.what}: layer {self.done} of {self.total}{tail}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


BUILD_MMAP_THRESHOLD = 4 << 20
RUN_MMAP_THRESHOLD = 32 << 20


def steady_heap(mmap_threshold: int = RUN_MMAP_THRESHOLD) -> None:
    """On glibc, fix the size from which allocations are mapped (and unmapped when freed) instead of letting glibc
    raise it after each free and keep freed space in its arenas; then hand back what is free. While a model is
    built, 4 MiB (every chunk of weights read or quantized comes and goes); while it runs, 32 MiB (a canvas's logits
    come and go, but an expert's dequantized 8 MiB matrix is reused from the heap instead of faulting in fresh pages
    at every step). Both keep freed pages from piling up, so the build's peak stays near what it holds. No-op
    elsewhere.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (fixing it also stops glibc's moving threshold)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def quantize_model(
    config: Any,
    source: TensorSource,
    settings: QuantSettings,
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
    progress: Callable[[LayerProgress], None] | None = None,
    layers: Iterable[int] | None = None,
) -> HFModel:
    """Build the NF4 model from ``source``, one decoder layer at a time (each quantized on ``device``).

    ``layers`` limits which layers are read from the source (for memory benchmarks that fill the rest with copies);
    the others are left on the meta device for the caller.
    """
    say = progress or (lambda _p: None)
    steady_heap(BUILD_MMAP_THRESHOLD)
    model = empty_model(config, dtype)
    resolver = _Resolver(source)
    decoder_layers = model.model.decoder.layers
    wanted = range(len(decoder_layers)) if layers is None else list(layers)
    t0 = time.perf_counter()
    for count, index in enumerate(wanted, start=1):
        quantize_layer(model, index, resolver, settings, dtype, device)
        say(LayerProgress("quantizing", count, len(wanted), time.perf_counter() - t0))
    skip = tuple(f"{DECODER}layers.{i}." for i in range(len(decoder_layers)) if i not in set(wanted))
    skip += tuple(f"{ENCODER_TEXT}layers.{i}." for i in range(len(decoder_layers)) if i not in set(wanted))
    load_rest(model, resolver, settings, dtype, device, skip=skip)
    steady_heap()
    return model.eval()


def quantize_layer(
    model: HFModel,
    index: int,
    resolver: _Resolver,
    settings: QuantSettings,
    dtype: torch.dtype,
    device: torch.device | str,
) -> None:
    """Quantize decoder layer ``index`` (shared with the encoder's) and load the layer's other tensors."""
    prefix = f"{DECODER}layers.{index}."
    layer = model.model.decoder.layers[index]
    experts = NF4Experts.like(layer.experts, settings, device=device)
    experts.quantize_from(lambda name, a, b: resolver.get(f"{prefix}experts.{name}", a, b), device)
    install(model, f"{prefix}experts", experts)
    for name, module in list(layer.named_modules()):
        if isinstance(module, nn.Linear) and is_text_linear(prefix + name):
            install(
                model, prefix + name, quantize_linear(resolver.get(f"{prefix}{name}.weight"), settings, dtype, device)
            )
    for owner in (f"{DECODER}layers.{index}.", f"{ENCODER_TEXT}layers.{index}."):
        _load_meta_tensors(model, owner, resolver, dtype, device)


def _load_meta_tensors(
    model: nn.Module,
    prefix: str,
    resolver: _Resolver,
    dtype: torch.dtype,
    device: torch.device | str,
    skip: tuple[str, ...] = (),
) -> None:
    """Load every parameter or persistent buffer under ``prefix`` still on the meta device."""
    seen: set[int] = set()
    owner = model.get_submodule(prefix.rstrip(".")) if prefix else model
    for name, tensor in list(owner.named_parameters(remove_duplicate=False)) + list(
        owner.named_buffers(remove_duplicate=False)
    ):
        full = prefix + name
        if not tensor.is_meta or full.startswith(skip) or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        value = resolver.get(full)
        value = value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
        set_tensor(model, full, value)


def load_rest(
    model: HFModel,
    resolver: _Resolver,
    settings: QuantSettings,
    dtype: torch.dtype,
    device: torch.device | str,
    skip: tuple[str, ...] = (),
) -> None:
    """Everything outside the text layers: embeddings (shared with the LM head), final norm, self-conditioning
    (4-bit), vision tower (4-bit if asked), multimodal embedder."""
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear) or not module.weight.is_meta or name.startswith(skip):
            continue
        if (is_text_linear(name) and ".layers." not in name) or (settings.vision and _vision_linear(name)):
            _replace(model, name, quantize_linear(resolver.get(f"{name}.weight"), settings, dtype, device))
    tie = getattr(model.config, "tie_word_embeddings", True)
    if tie:  # loaded once, as the embeddings
        model.lm_head.weight = model.model.decoder.embed_tokens.weight
    _load_meta_tensors(model, "", resolver, dtype, device, skip=skip)
    if tie:
        model.lm_head.weight = model.model.decoder.embed_tokens.weight


# ---------------------------------------------------------------------- accounting
def byte_groups(model: HFModel) -> dict[str, dict[str, float]]:
    """Unique bytes and parameters by group: ``experts``, ``text_linear`` (4-bit), ``other``.

    Each storage is counted once (shared modules, tied embeddings). ``params`` counts logical weights (a packed byte
    holds two)."""
    groups: dict[str, dict[str, float]] = {}
    seen: set[int] = set()

    def add(group: str, tensor: torch.Tensor, params: int) -> None:
        key = tensor.untyped_storage().data_ptr() if not tensor.is_meta else id(tensor)
        if key in seen:
            return
        seen.add(key)
        entry = groups.setdefault(group, {"bytes": 0.0, "params": 0.0})
        entry["bytes"] += tensor.numel() * tensor.element_size()
        entry["params"] += params

    bnb = bitsandbytes_module()
    for name, module in model.named_modules():
        if isinstance(module, NF4Experts):
            for buf_name, buf in module.named_buffers(recurse=False):
                params = 0
                if buf_name.endswith("_q"):
                    rows, cols = module.shapes[buf_name[:-2]]
                    params = module.num_experts * rows * cols
                add("experts", buf, params)
        elif isinstance(module, bnb.nn.Linear4bit):
            state = module.weight.quant_state
            add(
                "text_linear" if not _vision_linear(name) else "vision_linear",
                module.weight.data,
                int(torch.Size(state.shape).numel()),
            )
            for extra in (state.absmax, getattr(state.state2, "absmax", None)):
                if extra is not None:
                    add("text_linear" if not _vision_linear(name) else "vision_linear", extra, 0)
        else:
            for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
                add("other", tensor, tensor.numel())
    for entry in groups.values():
        entry["bytes_per_param"] = entry["bytes"] / entry["params"] if entry["params"] else 0.0
    return groups


def config_fingerprint(config: Any) -> str:
    """A short hash of the model config (part of the quantized cache's manifest)."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
