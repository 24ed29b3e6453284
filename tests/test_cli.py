"""The dwb command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image


def dwb(*args, check=True):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_model_info_tiny():
    out = dwb("model-info", "tiny").stdout
    assert "random weights" in out
    for group in ("embeddings", "attention", "dense_mlp", "experts", "vision", "total", "active"):
        assert group in out
    for dtype in ("fp32", "bf16", "fp16"):
        assert dtype in out


def test_generate_json_is_one_event_per_line(tmp_path):
    image = tmp_path / "page.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(image)
    proc = dwb(
        "generate",
        "--model",
        "tiny",
        "--image",
        str(image),
        "--steps",
        "3",
        "--max-new-tokens",
        "300",
        "--seed",
        "7",
        "--json",
        "Read the page",
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "prefill_started" and events[0]["images"] == 1
    commits = kinds.count("canvas_committed")
    assert 1 <= commits <= 2 and kinds.count("step") == 3 * commits and kinds[-1] == "finished"
    step = events[kinds.index("step")]
    assert len(step["draft"][0]) == 256 and len(step["entropy"][0]) == 256
    again = dwb(
        "generate",
        "--steps",
        "3",
        "--max-new-tokens",
        "300",
        "--seed",
        "7",
        "--json",
        "--image",
        str(image),
        "Read the page",
    )
    assert _same_ids(proc.stdout, again.stdout)  # same seed, same tokens


def _same_ids(a, b):
    last = [json.loads(x.splitlines()[-1])["ids"] for x in (a, b)]
    return last[0] == last[1]


def test_generate_streams_text_and_labels_random_weights():
    proc = dwb("generate", "--steps", "2", "Hi")
    assert "random weights" in proc.stderr and "tokens/s" in proc.stderr
    assert proc.stdout.strip()


def test_errors_are_messages_not_tracebacks(tmp_path):
    proc = dwb("generate", "--model", str(tmp_path), "Hi", check=False)
    assert proc.returncode == 2 and "no config.json" in proc.stderr and "Traceback" not in proc.stderr
    proc = dwb("generate", "--image", str(tmp_path / "missing.png"), "--steps", "1", "Hi", check=False)
    assert proc.returncode == 2 and "missing.png" in proc.stderr and "Traceback" not in proc.stderr


def _interrupted_generate(json_mode: bool):
    """Start a long generation, wait until it is under way, send SIGINT, and return (code, stdout, stderr)."""
    import signal
    import time

    args = [
        sys.executable,
        "-m",
        "app.cli",
        "generate",
        "--model",
        "tiny",
        "--max-new-tokens",
        "512",
        "--steps",
        "5000",
        "--seed",
        "0",
        "Write a long story.",
    ]  # minutes of denoising: it is under way
    if json_mode:
        args.insert(-1, "--json")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    if json_mode:  # the first event (prefill started) means the engine is running
        lines.append(proc.stdout.readline())
    else:
        while "model:" not in (line := proc.stderr.readline()):
            assert line, "dwb ended before the model was loaded"
            lines.append(line)
        time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(lines if json_mode else []) + out, "".join(lines if not json_mode else []) + err


def test_ctrl_c_cancels_generate_in_text_mode():
    code, _out, err = _interrupted_generate(json_mode=False)
    assert code == 130, err
    assert "dwb: cancelled" in err and "Traceback" not in err and "KeyboardInterrupt" not in err


def test_ctrl_c_cancels_generate_in_json_mode():
    code, out, err = _interrupted_generate(json_mode=True)
    assert code == 130, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events[0]["event"] == "prefill_started" and events[-1]["event"] == "cancelled"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_stderr_carries_our_messages_not_libraries_debug_logs_or_bars():
    """A trial saw ``DEBUG bm25s: Building index...`` (bm25s sets its own logger to DEBUG) and transformers'
    "Loading weights" bar beside the workbench's own progress."""
    from pathlib import Path

    sample = str(Path(__file__).resolve().parents[1] / "resources" / "sample.pdf")
    ask = dwb("ask", sample, "What is block diffusion?")
    assert ask.stdout.strip() and "DEBUG" not in ask.stderr
    gen = dwb("generate", "--model", "tiny-trained", "--steps", "2", "--max-new-tokens", "8", "Hi")
    assert "Loading weights" not in gen.stderr and "loading weights" in gen.stderr  # ours, not the library's bar
