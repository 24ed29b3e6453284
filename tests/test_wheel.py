"""The wheel is the product: built from the checkout, installed without the checkout, it loads its own model,
generates, parses its sample document and renders the window."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# Run in a folder away from the checkout, with only the installed wheel on the path before the environment's
# dependencies: every module must come from the target folder, every file from its ``inference/data``.
SCRIPT = r"""
import sys
from pathlib import Path

target = Path(sys.argv[1]).resolve()
import app, inference
from inference.resources import resource_path
for module in (app, inference):
    assert Path(module.__file__).resolve().is_relative_to(target), module.__file__
sample = resource_path("sample.pdf")
assert sample.resolve().is_relative_to(target / "inference" / "data"), sample
assert inference.__version__ != "development", inference.__version__

from app.cli import main

assert main(["generate", "--model", "tiny-trained", "--max-new-tokens", "8", "--steps", "4", "--seed", "0",
             "hello"]) == 0
assert main(["parse", str(sample), "--out", "parsed"]) == 0
assert main(["screenshot", "window.png", "--state", "done", "--size", "1024x700"]) == 0
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(out)]
    subprocess.run(cmd, check=True, cwd=out)
    (built,) = out.glob("diffusion_workbench-*.whl")
    return built


def test_the_wheel_carries_the_runtime_files_and_no_training_or_tests(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "inference/data/sample.pdf",
        "inference/data/icon.png",
        "inference/data/diffusion-workbench.desktop",
        "inference/data/tiny-trained/model.safetensors",
        "inference/data/tiny-trained/tokenizer.json",
        "inference/data/tiny-trained/config.json",
    ):
        assert needed in names, needed
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"app", "inference"}, tops  # no top-level resources, training or tests module


def test_the_installed_wheel_runs_from_another_folder(wheel, tmp_path):
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(cmd, check=True, cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target)], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert sorted(p.suffix for p in (work / "parsed").iterdir()), "parse wrote nothing"
    assert (work / "window.png").stat().st_size > 10_000
