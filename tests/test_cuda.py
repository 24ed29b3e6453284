"""CUDA checks, ready for a GPU machine (skipped without one): the NF4 tiny model gives the CPU's logits and tokens
on CUDA (the packed bytes are the same on every backend), and the full-size NF4 forward fits 18 GB."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import chat_inputs

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
ROOT = Path(__file__).resolve().parents[1]


def test_nf4_tiny_on_cuda_gives_the_cpu_results(tiny_pair):
    from test_engine_parity import sharpen

    from inference.engine import DiffusionEngine
    from inference.quant import QuantSettings, StateDictSource, quantize_model

    torch.backends.cuda.matmul.allow_tf32 = False
    model, processor = tiny_pair
    cpu = quantize_model(model.config, StateDictSource(model.state_dict()), QuantSettings(), torch.float32)
    gpu = copy.deepcopy(cpu).to("cuda")
    ids = torch.randint(20, 200, (1, 40), generator=torch.Generator().manual_seed(0))
    canvas = torch.randint(20, 200, (1, 256), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a = cpu(input_ids=ids, decoder_input_ids=canvas).logits
        b = gpu(input_ids=ids.cuda(), decoder_input_ids=canvas.cuda()).logits.cpu()
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
