"""Model loading: a Hugging Face id, a local folder, or the built-in ``tiny`` model.

Safetensors only, never ``trust_remote_code``; ``HF_HUB_OFFLINE`` and the Hugging Face cache are honoured by
``huggingface_hub`` itself. Before any weight is read, the config alone gives a parameter count per group and an
estimate of the memory the weights need (:mod:`inference.weights.sizing`); a load that will not fit the chosen device is
refused with that figure. Devices are resolved in :mod:`inference.weights.devices`, sources in
:mod:`inference.weights.sources`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import DamagedFileError, ModelLoadError, WeightsMissingError
from inference.weights.devices import resolve_device, resolve_dtype, torch_dtype
from inference.weights.sizing import ParameterCounts, check_fits, choose_quant, count_parameters, estimate_memory
from inference.weights.sources import builtin_folder, is_builtin, is_tiny, load_config, missing_message, snapshot_folder
from inference.weights.tiny import TINY_LABEL, TINY_SOURCE, TRAINED_LABEL, TRAINED_SOURCE


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

    ``quant``: ``none``, ``nf4`` (4-bit, built by :mod:`~inference.weights.quant`, cached), or ``auto`` (NF4 when
    the plain estimate does not fit the device and NF4 does). ``progress`` receives strings and, while a model is
    quantized, :class:`~inference.weights.quant.LayerProgress` (layer k of n, time left). ``context`` adds the KV cache
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
        return _load_tiny(dtype, device, quant, counts, say)
    return _load_folder(source, config, dtype, device, quant, counts, say)


def _load_tiny(dtype: str, device: str, quant: str, counts: ParameterCounts, say: Callable[[Any], None]) -> LoadedModel:
    """The built-in random-weight model, built in memory (and quantized there for ``nf4``)."""
    from inference.weights.tiny import build_tiny

    say("building the tiny random-weight model")
    model, processor = build_tiny(dtype=torch_dtype(dtype) if quant == "none" else None)
    if quant == "nf4":
        from inference.weights.quant import QuantSettings, StateDictSource, quantize_model

        quantized = quantize_model(
            model.config, StateDictSource(model.state_dict()), QuantSettings(), torch_dtype(dtype), device, progress=say
        )
        quantized.generation_config = model.generation_config
        model = quantized
    return LoadedModel(
        model=model.to(device),
        processor=processor,
        source=TINY_SOURCE,
        label=TINY_LABEL,
        random_weights=True,
        dtype=dtype,
        device=device,
        counts=counts,
        quant=quant,
    )


def _load_folder(
    source: str, config: Any, dtype: str, device: str, quant: str, counts: ParameterCounts, say: Callable[[Any], None]
) -> LoadedModel:
    """A checkpoint folder (local, shipped or a hub snapshot): its weights, plain or NF4, and its processor."""
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
        folder = path if path.exists() else snapshot_folder(source)
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
    from safetensors import SafetensorError
    from transformers import DiffusionGemmaForBlockDiffusion

    from inference.weights.quant_cache import SafetensorsReader

    if path.exists():
        SafetensorsReader(path)  # every listed file present, its header readable and its size complete
    say("loading weights")
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype), "use_safetensors": True, "trust_remote_code": False}
    if device != "cpu":
        kwargs["device_map"] = {"": device}
    try:
        return DiffusionGemmaForBlockDiffusion.from_pretrained(where, **kwargs)
    except SafetensorError as exc:
        raise DamagedFileError(f"The weights of {source!r} could not be read: {exc}", path=path) from exc
    except OSError as exc:
        if path.exists():
            raise WeightsMissingError(f"Could not read the weights in {path}: {exc}", path=path) from exc
        raise missing_message(source) from exc


def _load_nf4(folder: Path, config: Any, dtype: str, device: str, say: Callable[[Any], None]) -> tuple[Any, bool]:
    """The NF4 model of ``folder``: from the quantized cache when its manifest matches and every tensor's checksum
    holds, else built and cached. A damaged cache is said in one line and rebuilt from the source."""
    from inference.weights.quant import QuantSettings, quantize_model
    from inference.weights.quant_cache import (
        MODEL_FILE,
        SafetensorsReader,
        cache_folder,
        load_packed,
        manifest_for,
        read_manifest,
        read_valid_manifest,
        verify_cache,
        write_cache,
    )

    settings = QuantSettings()
    target = cache_folder(folder, settings, torch_dtype(dtype))
    manifest = manifest_for(folder, config, settings, torch_dtype(dtype))
    damaged = None
    if read_valid_manifest(target, manifest):
        try:
            verify_cache(target, read_manifest(target))
            say(f"loading the quantized cache {target}")
            model = load_packed(config, target / MODEL_FILE, settings, torch_dtype(dtype), device)
            _attach_generation_config(model, folder)
            return model, True
        except DamagedFileError as exc:
            damaged = exc
            say(f"the quantized cache is damaged ({exc.message.rstrip('.')}); rebuilding it from {folder}")
    say("quantizing to 4-bit NF4 (first load; the result is cached)")
    try:
        model = quantize_model(config, SafetensorsReader(folder), settings, torch_dtype(dtype), device, progress=say)
    except ModelLoadError as exc:
        if damaged is not None:
            exc.hint = f"The quantized cache {target} is damaged and cannot be rebuilt without the source: delete it."
        raise
    say(f"writing the quantized cache {target}")
    try:
        write_cache(target, model, manifest)
    except OSError as exc:  # a full disk costs the cache, not the model just built
        say(f"could not write the quantized cache ({exc}); the next load quantizes again")
    _attach_generation_config(model, folder)
    return model, False


def _attach_generation_config(model: Any, folder: Path) -> None:
    try:
        model.generation_config = model.generation_config_class.from_pretrained(str(folder))
    except (OSError, ValueError):
        pass
