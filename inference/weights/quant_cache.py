"""Safetensors read tensor by tensor, written tensor by tensor, and the on-disk cache of quantized models.

The reader never maps a whole shard: a tensor (or rows of it) is read with plain file reads into memory the
caller owns, so streaming a 50 GB checkpoint keeps only what is being quantized resident. The writer streams too.
The quantized cache is one folder per source and settings under ``$HF_HOME/dwb-quantized`` (``DWB_QUANT_CACHE``
overrides it): ``model.safetensors`` (the packed model) and ``manifest.json`` (source fingerprint, settings, dtype,
library versions). It is written aside and renamed into place, so a killed process or a full disk never leaves a
folder that loads; a manifest that does not match the request means a rebuild. Later loads memory-map the file
(copy-on-write), so no weight is quantized or copied again on the CPU.

The manifest holds an xxHash (XXH3, 64-bit) of every tensor's bytes, checked at every load before the model is
built from the file: a cut-off file, an unreadable header or one changed byte is a :class:`DamagedFileError`, and
the loader rebuilds the cache. XXH3 reads several GB/s on one core, so the check costs a read of the file (which
the load needs anyway) rather than a second pass of hashing; docs/model.md gives the figure.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference.errors import DamagedFileError, ModelLoadError
from inference.weights.quant import (
    BUILD_MMAP_THRESHOLD,
    DECODER,
    HFModel,
    NF4Experts,
    QuantSettings,
    bitsandbytes_module,
    config_fingerprint,
    empty_model,
    install,
    linear4bit_from_stats,
    set_tensor,
    steady_heap,
)

FORMAT_VERSION = 2  # 2: the manifest holds a checksum per tensor
MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
BNB_STATE = ".quant_state.bitsandbytes__"


# ---------------------------------------------------------------------- reading
def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and the offset where its data starts."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise DamagedFileError("not a safetensors file (too short).", path=path)
        (size,) = struct.unpack("<Q", raw)
        if size > 100 * 2**20:
            raise DamagedFileError(f"not a safetensors file (header of {size} bytes).", path=path)
        try:
            header = json.loads(fh.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DamagedFileError(f"damaged safetensors header ({exc}).", path=path) from exc
    if not isinstance(header, dict) or not all(
        name == "__metadata__" or (isinstance(info, dict) and "data_offsets" in info) for name, info in header.items()
    ):
        raise DamagedFileError("damaged safetensors header (not a table of tensors).", path=path)
    return header, 8 + size


def check_complete(path: Path) -> tuple[dict[str, Any], int]:
    """The header and data start of a safetensors file whose size covers every tensor it lists: a cut-off file
    (an interrupted download or copy) is named here, before anything is read from it."""
    header, start = read_header(path)
    end = max((info["data_offsets"][1] for name, info in header.items() if name != "__metadata__"), default=0)
    size = path.stat().st_size
    if size < start + end:
        raise DamagedFileError(
            f"cut off: {size:,} bytes of {start + end:,} (an incomplete download or copy?).",
            path=path,
            hint="Download or copy the file again.",
        )
    return header, start


def tensor_checksums(path: Path) -> dict[str, str]:
    """XXH3-64 of each tensor's bytes in a safetensors file, by tensor name."""
    import xxhash

    header, start = check_complete(path)
    out: dict[str, str] = {}
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for name, info in header.items():
                if name != "__metadata__":
                    begin, end = info["data_offsets"]
                    out[name] = xxhash.xxh3_64_hexdigest(view[start + begin : start + end])
        finally:
            view.release()
    return out


def verify_cache(target: Path, manifest: dict[str, Any]) -> None:
    """Raise :class:`DamagedFileError` unless every tensor of the cache matches the checksum its manifest holds."""
    expected = manifest.get("checksums")
    path = target / MODEL_FILE
    if not isinstance(expected, dict) or not expected:
        raise DamagedFileError("no checksums in its manifest.", path=path)
    found = tensor_checksums(path)
    if set(found) != set(expected):
        raise DamagedFileError("not the tensors its manifest lists.", path=path)
    bad = [name for name, digest in found.items() if expected[name] != digest]
    if bad:
        raise DamagedFileError(f"{len(bad)} tensor(s) whose bytes changed ({bad[0]}, ...).", path=path)


class SafetensorsReader:
    """Tensors of a safetensors checkpoint (one file, or shards with ``model.safetensors.index.json``)."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        index = folder / "model.safetensors.index.json"
        files = (
            [folder / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
            if index.is_file()
            else sorted(folder.glob("*.safetensors"))
        )
        if not files:
            raise ModelLoadError(f"{folder} has no *.safetensors files.", path=folder)
        self.files = files
        self.entries: dict[str, tuple[Path, int, dict[str, Any]]] = {}
        for path in files:
            if not path.is_file():
                raise ModelLoadError("listed in model.safetensors.index.json but missing.", path=path)
            header, start = check_complete(path)
            for name, info in header.items():
                if name != "__metadata__":
                    self.entries[name] = (path, start, info)

    def names(self) -> Iterable[str]:
        return self.entries.keys()

    def get(self, name: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        path, base, info = self.entries[name]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelLoadError(f"{path}: tensor {name!r} has dtype {info['dtype']}, which is not supported.")
        shape = list(info["shape"])
        begin, end = info["data_offsets"]
        if start is not None:
            row = (end - begin) // max(1, shape[0])
            last: int = shape[0] if stop is None else min(stop, shape[0])
            begin, end = begin + start * row, begin + last * row
            shape[0] = last - start
        out = torch.empty(shape, dtype=dtype)
        view = out.view(-1).view(torch.uint8) if out.numel() else out.view(torch.uint8)
        with open(path, "rb") as fh:
            fh.seek(base + begin)
            if fh.readinto(memoryview(view.numpy().data).cast("B")) != end - begin:
                raise DamagedFileError(f"ends early: tensor {name!r} is cut off (an incomplete download?).", path=path)
        return out


class MappedSafetensors:
    """Zero-copy tensors over a memory-mapped safetensors file (copy-on-write: writable, never written back)."""

    def __init__(self, path: Path) -> None:
        self.header, self.start = check_complete(path)
        with open(path, "rb") as fh:
            self.map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)

    def names(self) -> list[str]:
        return [n for n in self.header if n != "__metadata__"]

    def get(self, name: str) -> torch.Tensor:
        info = self.header[name]
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        count = (end - begin) // torch.empty((), dtype=dtype).element_size()
        if count == 0:
            return torch.empty(info["shape"], dtype=dtype)
        return torch.frombuffer(self.map, dtype=dtype, count=count, offset=self.start + begin).view(info["shape"])


# ---------------------------------------------------------------------- writing
def write_safetensors(
    path: Path,
    tensors: list[tuple[str, torch.Tensor]],
    metadata: dict[str, str] | None = None,
    on_tensor: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Write a safetensors file one tensor at a time (no second copy of the model in memory); returns the XXH3-64
    of each tensor's bytes, by name.

    Tensors are ordered by element size, largest first, so every tensor's data is aligned for zero-copy loading.
    """
    import xxhash

    tensors = sorted(tensors, key=lambda item: -item[1].element_size())
    header: dict[str, Any] = {"__metadata__": metadata or {}}
    offset = 0
    for name, tensor in tensors:
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    checksums: dict[str, str] = {}
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for count, (name, tensor) in enumerate(tensors, start=1):
            data = tensor.detach().to("cpu").contiguous()
            raw_bytes = (
                memoryview(data.view(-1).view(torch.uint8).numpy().data).cast("B") if data.numel() else memoryview(b"")
            )
            fh.write(raw_bytes)
            checksums[name] = xxhash.xxh3_64_hexdigest(raw_bytes)
            if on_tensor is not None:
                on_tensor(count, len(tensors))
        fh.flush()
        os.fsync(fh.fileno())
    return checksums


# ---------------------------------------------------------------------- the quantized model on disk
def packed_tensors(model: HFModel) -> list[tuple[str, torch.Tensor]]:
    """The quantized model's tensors, each stored once, shared text modules under their decoder names.

    A ``Linear4bit`` is saved as bitsandbytes saves it: ``NAME.weight`` (packed) and ``NAME.weight.<stat>``."""
    bnb = bitsandbytes_module()

    modules = list(model.named_modules(remove_duplicate=False))
    modules.sort(key=lambda item: 0 if item[0].startswith(DECODER) else 1)
    seen_modules: set[int] = set()
    seen_tensors: set[int] = set()
    out: list[tuple[str, torch.Tensor]] = []
    for name, module in modules:
        if id(module) in seen_modules:
            continue
        seen_modules.add(id(module))
        if isinstance(module, bnb.nn.Linear4bit):
            state = module.weight.quant_state
            if getattr(state, "packing_format_for_cpu", False):
                raise ModelLoadError("Internal error: a 4-bit layer was repacked for the CPU before it was saved.")
            out.append((f"{name}.weight", module.weight.data))
            out.extend((f"{name}.weight.{key}", value) for key, value in state.as_dict(packed=True).items())
            continue
        for leaf, tensor in list(module.named_parameters(recurse=False)) + [
            (b, t) for b, t in module.named_buffers(recurse=False) if b not in module._non_persistent_buffers_set
        ]:
            if id(tensor) in seen_tensors or tensor is None:
                continue
            seen_tensors.add(id(tensor))
            out.append((f"{name}.{leaf}" if name else leaf, tensor))
    return out


def load_packed(
    config: Any, path: Path, settings: QuantSettings, dtype: torch.dtype, device: torch.device | str = "cpu"
) -> HFModel:
    """Rebuild the quantized model from ``model.safetensors`` in a cache folder (no quantization)."""
    steady_heap(BUILD_MMAP_THRESHOLD)
    store = MappedSafetensors(path)
    names = store.names()
    model = empty_model(config, dtype)
    linear_stats: dict[str, dict[str, torch.Tensor]] = {}
    for name in names:
        match = re.match(r"(.+)\.weight\.(.+)$", name)
        if match and (
            f"{match.group(1)}.weight{BNB_STATE}nf4" in store.header
            or f"{match.group(1)}.weight{BNB_STATE}fp4" in store.header
        ):
            linear_stats.setdefault(match.group(1), {})[match.group(2)] = store.get(name)
    done = {f"{m}.weight" for m in linear_stats} | {f"{m}.weight.{k}" for m, s in linear_stats.items() for k in s}
    for module_name, stats in linear_stats.items():  # (bitsandbytes consumes the dict it is given)
        install(
            model, module_name, linear4bit_from_stats(store.get(f"{module_name}.weight"), dict(stats), dtype, device)
        )
    for index, layer in enumerate(model.model.decoder.layers):
        install(model, f"{DECODER}layers.{index}.experts", NF4Experts.like(layer.experts, settings, device="meta"))
    for name in names:
        if name in done:
            continue
        tensor = store.get(name)
        if tensor.is_floating_point() and ".experts." not in name:
            tensor = tensor.to(dtype)
        set_tensor(model, name, tensor.to(device))
    if getattr(model.config, "tie_word_embeddings", True):
        model.lm_head.weight = model.model.decoder.embed_tokens.weight
    missing = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if missing:
        raise ModelLoadError(f"The quantized cache {path.parent} lacks {len(missing)} tensors ({missing[0]}, ...).")
    steady_heap()
    return model.eval()


# ---------------------------------------------------------------------- the cache folder
def cache_root() -> Path:
    explicit = os.environ.get("DWB_QUANT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(hf_home) / "dwb-quantized"


def source_fingerprint(folder: Path) -> dict[str, Any]:
    """What identifies a checkpoint folder without reading 50 GB: the hub revision when the folder is a hub snapshot,
    and per file either its content hash (hub blobs are named by their SHA-256) or its size, mtime and a hash of its
    safetensors header (tensor names, dtypes, shapes and offsets)."""
    folder = folder.resolve() if not folder.is_symlink() else folder
    files: dict[str, Any] = {}
    for path in sorted(folder.iterdir()):
        if not (path.suffix == ".safetensors" or path.name in ("config.json", "model.safetensors.index.json")):
            continue
        target = path.resolve()
        if path.is_symlink() and target.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", target.name):
            files[path.name] = {"sha256": target.name}
            continue
        stat = target.stat()
        entry: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if path.suffix == ".safetensors":
            header, _ = read_header(target)
            entry["header_sha256"] = hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()
        else:
            entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
        files[path.name] = entry
    snapshot = folder.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", folder.name)
    out: dict[str, Any] = {"files": files}
    if snapshot:
        repo = folder.parent.parent.name  # models--org--name
        out["repo"] = repo.removeprefix("models--").replace("--", "/")
        out["revision"] = folder.name
    else:
        out["folder"] = str(folder)
    return out


def library_versions() -> dict[str, str]:
    import transformers

    bitsandbytes = bitsandbytes_module()

    from inference import __version__

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "bitsandbytes": bitsandbytes.__version__,
        "diffusion-workbench": __version__,
    }


def manifest_for(folder: Path, config: Any, settings: QuantSettings, dtype: torch.dtype) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "source": source_fingerprint(folder),
        "config": config_fingerprint(config),
        "settings": settings.to_json(),
        "dtype": str(dtype).removeprefix("torch."),
        "versions": library_versions(),
    }


def cache_folder(folder: Path, settings: QuantSettings, dtype: torch.dtype) -> Path:
    resolved = folder.resolve()
    snapshot = resolved.parent.name == "snapshots"
    label = resolved.parent.parent.name.removeprefix("models--") if snapshot else resolved.name
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", label)[:80] or "model"
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    return cache_root() / f"{label}-{digest}--{settings.slug}-{str(dtype).removeprefix('torch.')}"


def read_manifest(target: Path) -> dict[str, Any]:
    try:
        found = json.loads((target / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def read_valid_manifest(target: Path, expected: dict[str, Any]) -> bool:
    """True when ``target`` holds a cache whose manifest matches ``expected`` (its bytes: :func:`verify_cache`)."""
    try:
        found = json.loads((target / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not (target / MODEL_FILE).is_file() or not isinstance(found, dict):
        return False
    return {k: v for k, v in found.items() if k not in ("created", "checksums")} == expected


def write_cache(
    target: Path, model: nn.Module, manifest: dict[str, Any], on_tensor: Callable[[int, int], None] | None = None
) -> None:
    """Write the packed model aside, then rename it into place; the manifest is written last."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{target.name}.partial-*"):
        try:  # a folder left by a killed writer whose process is gone
            if not _pid_alive(int(stale.name.rsplit("-", 1)[1])):
                shutil.rmtree(stale, ignore_errors=True)
        except ValueError:
            continue
    partial = target.parent / f"{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        checksums = write_safetensors(partial / MODEL_FILE, packed_tensors(model), {"format": "dwb-nf4"}, on_tensor)
        record = {**manifest, "created": time.time(), "checksums": checksums}
        (partial / MANIFEST_FILE).write_text(json.dumps(record, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
