"""Where a model runs: the device and dtype a request resolves to, and how much memory the device has free."""

from __future__ import annotations

import os
from typing import Any

from inference.errors import ConfigError, ModelLoadError
from inference.weights.choices import DEVICES, DTYPES


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
        raise ModelLoadError("CUDA was requested but no CUDA device is available.", hint="$device_cpu")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("MPS was requested but is not available on this machine.", hint="$device_cpu")
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
    return host_available_bytes()


def host_available_bytes() -> int | None:
    """Memory the system can give this process: Linux's MemAvailable (free pages and the page cache it can drop),
    else the free pages alone; None where neither can be told. Free pages alone undercount a machine whose page
    cache holds most of its memory (23 GB available, 6 GB free)."""
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


# glibc's malloc returns freed memory at the top of its heap to the system once more than M_TRIM_THRESHOLD is free,
# and serves blocks over M_MMAP_THRESHOLD by mmap; both adapt to the first frees, then keep giving back. A denoising
# step allocates and frees the same few logit-sized tensors, so with the defaults every step would fault those pages
# in again; keeping them makes the next step reuse them.
HEAP_KEEP_BYTES = 64 << 20  # freed heap kept for the next step (M_TRIM_THRESHOLD)
HEAP_MMAP_BYTES = 32 << 20  # blocks larger than this still come from, and go back to, the system (glibc's maximum)
_HEAP_TUNED: bool | None = None


def keep_heap_between_steps() -> bool:
    """On glibc, keep up to :data:`HEAP_KEEP_BYTES` of freed heap and serve blocks up to :data:`HEAP_MMAP_BYTES` from
    it, so that a step reuses the previous step's pages instead of faulting in new ones; the process's peak memory is
    unchanged (a kept block is one the previous step used). Once per process; left alone where the user set glibc's
    ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_``, and elsewhere than glibc. True when applied."""
    global _HEAP_TUNED
    if _HEAP_TUNED is None:
        _HEAP_TUNED = False
        if os.environ.get("MALLOC_TRIM_THRESHOLD_") is None and os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
            import ctypes
            import platform

            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                try:
                    libc = ctypes.CDLL("libc.so.6")
                    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
                    _HEAP_TUNED = bool(libc.mallopt(m_mmap_threshold, HEAP_MMAP_BYTES)) and bool(
                        libc.mallopt(m_trim_threshold, HEAP_KEEP_BYTES)
                    )
                except (OSError, AttributeError):
                    _HEAP_TUNED = False
    return _HEAP_TUNED
