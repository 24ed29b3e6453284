"""Benchmark: chunked prefill of long prompts on the tiny model (CPU, fp32), time and peak memory per size.

Each size runs in its own subprocess (a fresh peak): text prompts of 32K, 64K, 128K and 256K tokens, and one of
about 32K tokens with 16 images interleaved. A run ends at ``PrefillFinished`` (the canvas that would follow is not
part of the prefill). Prints seconds and peak resident memory per size, then ``prefill_scaling=`` (time at 256K /
time at 64K; attention in the full-attention layer is quadratic, so up to 16 is expected, the rest is linear),
``prefill_256k_peak_gib=`` and, last, ``prefill_memory_growth=`` (peak at 256K / peak at 64K). Goals: 256K completes
with a peak <= 4 GiB, growth <= 1.5. ``--one-shot`` measures the unchunked prefill (one encoder call) instead.

    .venv/bin/python -m tests.benchmarks.prefill [--sizes 32768,65536,131072,262144] [--chunk 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from PIL import Image
from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import PrefillFinished, Failed
from inference.weights.tiny import build_tiny
size, images, chunk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
model, processor = build_tiny()
if images:
    rng = np.random.default_rng(0)
    words = " ".join(rng.choice(["page", "total", "clause", "annex", "date"], size=size // 3))
    part = len(words) // (images + 1)
    content = []
    for i in range(images + 1):
        content.append({"type": "text", "text": words[i * part:(i + 1) * part]})
        if i < images:
            content.append({"type": "image", "image": Image.fromarray(rng.integers(0, 255, (40, 56, 3), np.uint8))})
    inputs = dict(processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                tokenize=True, return_dict=True, return_tensors="pt"))
else:
    inputs = {"input_ids": torch.randint(20, 260, (1, size), generator=torch.Generator().manual_seed(0))}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
engine = DiffusionEngine(model, processor.tokenizer)
params = engine.default_params(seed=0, prefill_chunk=chunk, max_new_tokens=256)
t0 = time.perf_counter()
result = {"tokens": int(inputs["input_ids"].shape[1])}
for event in engine.generate(inputs, params):
    if isinstance(event, PrefillFinished):
        result["seconds"] = event.seconds
        break
    if isinstance(event, Failed):
        result["error"] = event.message
        break
# VmHWM: this process's own high-water mark (ru_maxrss would keep the parent's peak across fork and exec)
result["peak"] = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) * 1024
result["base"] = base
print(json.dumps(result))
"""


def run(size: int, images: int, chunk: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(size), str(images), str(chunk)], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        return {"tokens": size, "error": out.stderr.strip().splitlines()[-1] if out.stderr else str(out.returncode)}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32768,65536,131072,262144")
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--one-shot", action="store_true", help="one encoder call for the whole prompt")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        chunk = size + 1 if args.one_shot else args.chunk
        results[size] = r = run(size, 0, chunk)
        print(
            f"{r['tokens']:>7} tokens: "
            + (
                f"error {r['error']}"
                if "error" in r
                else f"{r['seconds']:8.1f} s, peak {r['peak'] / 2**30:.2f} GiB (after setup {r['base'] / 2**30:.2f})"
            ),
            flush=True,
        )
    r = run(32768, 16, args.chunk)
    print(
        f"{r['tokens']:>7} tokens with 16 images: "
        + (f"error {r['error']}" if "error" in r else f"{r['seconds']:8.1f} s, peak {r['peak'] / 2**30:.2f} GiB"),
        flush=True,
    )
    if all(s in results and "seconds" in results[s] for s in (65536, 262144)):
        print(f"prefill_scaling={results[262144]['seconds'] / results[65536]['seconds']:.2f}")
        print(f"prefill_256k_peak_gib={results[262144]['peak'] / 2**30:.2f}")
        print(f"prefill_memory_growth={results[262144]['peak'] / results[65536]['peak']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
