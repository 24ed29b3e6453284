"""The GPU check: what this project cannot measure without CUDA, in one script that takes minutes on a GPU.

1. NF4 parity: the tiny model quantized on the CPU and copied to CUDA gives the CPU's logits (the packed bytes
   are the same on every bitsandbytes backend): ``nf4_tiny_max_abs_diff=`` and ``nf4_tiny_argmax_equal=``.
2. Full size: the 26B-A4B model in NF4 from ``../shared/models/diffusiongemma-26B-A4B-approx/config.json``, built
   layer by layer on the meta device and filled with random weights tensor by tensor as the quantizer asks for them
   (no bf16 copy of the model exists at any time), then one forward on CUDA (``tests/benchmarks/quant_memory.py``):
   ``full_nf4_cuda_peak_gib=`` and ``full_nf4_fits_18gb=``.
3. Speed: our engine against ``model.generate()`` on the same model, prompt and seed, 16 denoising steps per canvas,
   adaptive stopping off (``tests/benchmarks/engine.py``): ``cuda_tokens_per_s=`` and, last,
   ``cuda_overhead_ratio=`` (engine median / generate() median).

Without a CUDA device it prints why and exits 0 (``cuda=skipped``); without the full-size config, part 2 is skipped
the same way.

    python -m tests.benchmarks.cuda [--model tiny-trained] [--pairs 5] [--skip-full-size]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
FULL_CONFIG = ROOT.parent / "shared/models/diffusiongemma-26B-A4B-approx/config.json"
LIMIT_BYTES = 18e9


def nf4_on_both(model: Any) -> tuple[Any, Any, Any, Any]:
    """``model`` quantized to NF4 on the CPU and copied to CUDA, and the logits of both for one prompt and canvas."""
    import torch

    from inference.weights.quant import QuantSettings, StateDictSource, quantize_model

    torch.backends.cuda.matmul.allow_tf32 = False
    cpu = quantize_model(model.config, StateDictSource(model.state_dict()), QuantSettings(), torch.float32)
    gpu = copy.deepcopy(cpu).to("cuda")
    ids = torch.randint(20, 200, (1, 40), generator=torch.Generator().manual_seed(0))
    canvas = torch.randint(20, 200, (1, 256), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a = cpu(input_ids=ids, decoder_input_ids=canvas).logits
        b = gpu(input_ids=ids.cuda(), decoder_input_ids=canvas.cuda()).logits.cpu()
    return cpu, gpu, a, b


def nf4_parity() -> None:
    from inference.weights.tiny import build_tiny

    _cpu, _gpu, a, b = nf4_on_both(build_tiny()[0])
    print(f"nf4_tiny_max_abs_diff={(a - b).abs().max().item():.2e}")
    print(f"nf4_tiny_argmax_equal={(a.argmax(-1) == b.argmax(-1)).float().mean().item():.4f}", flush=True)


def run_module(module: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise SystemExit(f"{module} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def full_size() -> None:
    if not FULL_CONFIG.is_file():
        print(f"full_nf4=skipped ({FULL_CONFIG} is not present)", flush=True)
        return
    out = run_module("tests.benchmarks.quant_memory", "--device", "cuda")
    found = re.search(r"cuda_peak_gib=([\d.]+)", out)
    if found is None:
        print(f"full_nf4=skipped ({out.strip().splitlines()[-1] if out.strip() else 'no output'})", flush=True)
        return
    peak = float(found.group(1))
    print(f"full_nf4_cuda_peak_gib={peak:.2f}")
    print(f"full_nf4_fits_18gb={int(peak * 2**30 <= LIMIT_BYTES)}", flush=True)


def speed(model: str, pairs: int) -> None:
    out = run_module(
        "tests.benchmarks.engine", "--model", model, "--device", "cuda", "--steps", "16", "--pairs", str(pairs)
    )
    engine = re.search(r"engine tokens/s: (\d+)", out)
    ratio = re.search(r"overhead_ratio=([\d.]+)", out)
    if engine is None or ratio is None:
        raise SystemExit(f"unexpected output of tests.benchmarks.engine:\n{out}")
    print(f"cuda_tokens_per_s={engine.group(1)}")
    print(f"cuda_overhead_ratio={ratio.group(1)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-trained", help="model for the speed comparison (default tiny-trained)")
    parser.add_argument("--pairs", type=int, default=5, help="alternating generate()/engine pairs (at least 5)")
    parser.add_argument("--skip-full-size", action="store_true", help="leave out the full-size NF4 forward")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("cuda=skipped (no CUDA device: nothing to check here)")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}", flush=True)
    nf4_parity()
    if not args.skip_full_size:
        full_size()
    speed(args.model, args.pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
