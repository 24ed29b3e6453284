"""The engine keeps freed heap between denoising steps (glibc), so that a step does not fault its pages in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings only"
)

# A batched run of the tiny model, as the server runs four requests together; prints whether the heap was tuned and
# the page faults per denoising step of the second run.
STEPS = """
import resource, sys, torch
import inference.weights.devices
from inference.runtime.engine import DiffusionEngine
from inference.weights.tiny import build_tiny
if sys.argv[1] == "plain":
    inference.weights.devices._HEAP_TUNED = False
model, processor = build_tiny()
engine = DiffusionEngine(model, processor.tokenizer)
inputs = dict(processor(text=["Write about the sea."] * 4, return_tensors="pt", padding=True))
params = engine.default_params(max_new_tokens=256, max_denoising_steps=12, stability_threshold=None,
                               confidence_threshold=None, seed=None)
for _ in engine.generate(inputs, params, seeds=[1, 2, 3, 4]):
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in engine.generate(inputs, params, seeds=[1, 2, 3, 4]):
    pass
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(inference.weights.devices.keep_heap_between_steps(), faults / 12)
"""


def _steps(mode: str, **env: str) -> tuple[str, float]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    out = subprocess.run(
        [sys.executable, "-c", STEPS, mode], capture_output=True, text=True, env=environ, check=True, timeout=120
    ).stdout.split()
    return out[0], float(out[1])


def test_denoising_steps_reuse_the_heap_pages_freed_by_the_step_before():
    _, untuned = _steps("plain")
    if untuned < 100:
        pytest.skip(f"this glibc faults {untuned} pages per step even untuned: nothing to remove")
    tuned, faults = _steps("engine")
    assert tuned == "True"
    assert faults * 10 < untuned, f"{faults} page faults per step with the heap kept, {untuned} without"


def test_a_users_own_malloc_settings_are_left_alone():
    tuned, _ = _steps("engine", MALLOC_TRIM_THRESHOLD_="131072")
    assert tuned == "False"
