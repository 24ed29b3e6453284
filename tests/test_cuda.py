"""CUDA checks, ready for a GPU machine (skipped without one): the NF4 tiny model gives the CPU's logits and tokens
on CUDA (the packed bytes are the same on every backend), and the full-size NF4 forward fits 18 GB."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import chat_inputs

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the script runs for real")
def test_the_gpu_check_script_says_it_skipped_without_cuda():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.cuda"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.startswith("cuda=skipped"), out.stderr[-2000:]


@pytest.mark.cuda
@needs_cuda
def test_nf4_tiny_on_cuda_gives_the_cpu_results(tiny_pair):
    from inference.runtime.engine import DiffusionEngine
    from tests.benchmarks.cuda import nf4_on_both
    from tests.model_helpers import sharpen

    model, processor = tiny_pair
    cpu, gpu, a, b = nf4_on_both(model)
    assert (a - b).abs().max().item() < 1e-3 and torch.equal(a.argmax(-1), b.argmax(-1))
    # the engine's tokens: the RNGs of the two devices differ, so sampling is settled with a sharpened head
    for m in (cpu, gpu):
        m.generation_config = model.generation_config
        sharpen(m, [40.0])
    results = []
    for m, device in ((cpu, "cpu"), (gpu, "cuda")):
        engine = DiffusionEngine(m, processor.tokenizer)
        inputs = {k: v.to(device) for k, v in chat_inputs(processor, "cuda parity").items()}
        results.append(list(engine.generate(inputs, engine.default_params(seed=0, max_denoising_steps=8)))[-1].ids)
    np.testing.assert_array_equal(*results)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.slow
def test_full_size_nf4_forward_fits_18_gb():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.quant_memory", "--device", "cuda"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    print(out.stdout)
    peak = float(re.search(r"cuda_peak_gib=([\d.]+)", out.stdout).group(1))
    assert peak * 2**30 <= 18e9
    assert re.search(r"tokens_per_s=\d+", out.stdout)
