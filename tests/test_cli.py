"""The dwb command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "sample.pdf"


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
    assert kinds[-1] == "finished" and commits == len(events[-1]["stats"]["steps_per_canvas"]) >= 1
    assert kinds.count("step") == 3 * commits and events[-1]["stats"]["new_tokens"] <= 300
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
    proc = dwb("generate", "--steps", "2", "--seed", "4", "Hi")
    assert "random weights" in proc.stderr and "tokens/s" in proc.stderr
    events = dwb("generate", "--steps", "2", "--seed", "4", "--json", "Hi").stdout.splitlines()
    text = json.loads(events[-1])["texts"][0]
    assert text.strip()  # the streamed text is the whole answer (subprocess's text mode reads \r as \n)
    assert proc.stdout == text.replace("\r\n", "\n").replace("\r", "\n")


def test_parse_outputs_get_the_mode_the_umask_gives_new_files(tmp_path):
    """``write_atomic`` writes through a 0600 temporary file; what it leaves must follow the umask like any new file."""
    for umask in (0o022, 0o027):
        out = tmp_path / f"out-{umask:o}"
        old = os.umask(umask)  # the child inherits it
        try:
            dwb("parse", str(SAMPLE), "--out", str(out), "--format", "md,json,txt")
        finally:
            os.umask(old)
        written = [p for p in out.rglob("*") if p.is_file()]
        assert {p.suffix for p in written} >= {".md", ".json", ".txt"}
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {
            p.name: oct(0o666 & ~umask) for p in written
        }


def test_errors_are_messages_not_tracebacks(tmp_path):
    proc = dwb("generate", "--model", str(tmp_path), "Hi", check=False)
    assert proc.returncode == 2 and "no config.json" in proc.stderr and "Traceback" not in proc.stderr
    proc = dwb("generate", "--image", str(tmp_path / "missing.png"), "--steps", "1", "Hi", check=False)
    assert proc.returncode == 2 and "missing.png" in proc.stderr and "Traceback" not in proc.stderr


def _interrupted_generate(json_mode: bool, tmp_path):
    """Start a generation, send SIGINT once its prefill has begun, and return (code, stdout, stderr).

    The prompt is about 30K tokens, so the prefill alone takes seconds on any CPU and the signal always lands while
    the engine works (the random tiny model may end its answer on the first canvas, well under a second).
    """
    import signal

    prompt = tmp_path / "prompt.txt"
    prompt.write_text("word " * 6000)
    args = [sys.executable, "-m", "app.cli", "generate", "--model", "tiny", "--steps", "48", "--seed", "0"]
    args += ["--prompt-file", str(prompt)] + (["--json"] if json_mode else [])
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    if json_mode:  # the first event (prefill started) means the engine is running
        lines.append(proc.stdout.readline())
    else:  # the prompt's size is said just before its prefill starts
        while not (line := proc.stderr.readline()).startswith("prompt:"):
            assert line, "dwb ended before the prompt was built"
            lines.append(line)
        lines.append(line)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(lines if json_mode else []) + out, "".join(lines if not json_mode else []) + err


def test_ctrl_c_cancels_generate_in_text_mode(tmp_path):
    code, _out, err = _interrupted_generate(json_mode=False, tmp_path=tmp_path)
    assert code == 130, err
    assert "dwb: cancelled" in err and "Traceback" not in err and "KeyboardInterrupt" not in err


def test_ctrl_c_cancels_generate_in_json_mode(tmp_path):
    code, out, err = _interrupted_generate(json_mode=True, tmp_path=tmp_path)
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


# ---------------------------------------------------------------------- arguments, prompts, failures, progress
def _no_load(monkeypatch):
    """Replace the weight loader with one that records a call: an argument error must come before it."""
    import inference.weights.loading

    calls = []
    monkeypatch.setattr(
        inference.weights.loading, "load_model", lambda *a, **k: calls.append(a) or pytest.fail("loaded")
    )
    return calls


@pytest.mark.parametrize(
    "args,expected",
    [
        (["generate", "--model", "tiny", "--steps", "49", "hi"], "over this model's 48 denoising steps"),
        (["generate", "--model", "tiny", "--steps", "0", "hi"], "--steps: must be at least 1"),
        (["generate", "--model", "tiny", "--max-new-tokens", "0", "hi"], "--max-new-tokens: must be at least 1"),
        (["generate", "--model", "tiny", "--seed", "-1", "hi"], "--seed: must be between 0 and 2**63 - 1"),
        (["generate", "--model", "tiny", "--seed", str(2**70), "hi"], "--seed: must be between 0 and 2**63 - 1"),
        (["generate", "--model", "tiny", "--image", "/no/such.png", "hi"], "cannot read the image"),
        (["generate", "--model", "tiny", "  \n "], "the prompt is empty"),
        (
            ["generate", "--model", "tiny", "--temperature-range", "0.9:0.2", "hi"],
            "--temperature-range MAX: must be greater than t_min (0.9), not 0.2",
        ),
        (["generate", "--model", "./no-such-folder", "hi"], "There is no folder"),
        (["ask", "--engine", "model", "--model", "tiny", "SAMPLE", " "], "the question is empty"),
        (["ask", "--engine", "model", "--model", "tiny", "--steps", "99", "SAMPLE", "Why?"], "over this model's"),
        (
            ["parse", "SAMPLE", "--engine", "model", "--model", "tiny", "--out", "OUT", "--batch-size", "0"],
            "at least 1",
        ),
    ],
)
def test_argument_errors_come_before_any_weight_is_read(monkeypatch, capsys, tmp_path, args, expected):
    from app.cli import main

    calls = _no_load(monkeypatch)
    sample = str(Path(__file__).resolve().parents[1] / "resources" / "sample.pdf")
    args = [sample if a == "SAMPLE" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse: usage and one error line
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err and calls == []


def test_generate_reads_the_prompt_from_stdin_or_a_file(monkeypatch, capsys, tmp_path):
    import io

    from app.cli import main

    prompt = "A prompt read from elsewhere. " * 20

    def prompt_tokens(args, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        base = ["generate", "--model", "tiny", "--steps", "1", "--max-new-tokens", "8", "--json"]
        assert main(base + args) == 0
        first = json.loads(capsys.readouterr().out.splitlines()[0])
        return first["prompt_tokens"]

    given = prompt_tokens([prompt])
    assert prompt_tokens(["-"], stdin=prompt) == given
    (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8")
    assert prompt_tokens(["--prompt-file", str(tmp_path / "prompt.txt")]) == given
    assert prompt_tokens(["--prompt-file", "-"], stdin=prompt) == given
    assert prompt_tokens(["short"]) < given


FAILING_ENGINE = """
import sys
from inference.runtime.engine import DiffusionEngine

def broken(self, *args, **kwargs):
    raise RuntimeError("device lost in the middle of a step")

DiffusionEngine.check_cache_fits = broken  # a failure inside the engine's run, as a driver error would be
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_an_engine_failure_is_one_line_on_stderr_and_a_traceback_only_with_verbose(verbose):
    args = [*(["-v"] if verbose else []), "generate", "--model", "tiny", "--steps", "1", "hi"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", FAILING_ENGINE, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 1
    assert "dwb: Generation failed: RuntimeError: device lost in the middle of a step" in proc.stderr
    assert ("Traceback" in proc.stderr) is verbose, proc.stderr


@pytest.mark.slow
def test_ask_with_question_file_and_what_is_left_out(tmp_path):
    import pymupdf

    scan = tmp_path / "scan.pdf"
    image = tmp_path / "scan.png"
    Image.fromarray((np.random.default_rng(0).random((300, 200, 3)) * 255).astype(np.uint8)).save(image)
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), filename=str(image))  # no text layer
    doc.save(scan)
    (tmp_path / "q.txt").write_text("What does the scan show?\n", encoding="utf-8")
    base = ["ask", "--engine", "model", "--model", "tiny", "--steps", "1", "--max-new-tokens", "8"]
    base += ["--budget-tokens", "60", "--question-file", str(tmp_path / "q.txt"), "--json", str(scan)]
    proc = dwb(*base, check=False)
    assert proc.returncode == 1, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["question"].startswith("What does the scan show?")
    (left,) = answer["left_out"]
    assert left["page"] == 1 and left["tokens"] > 60 and left["document"] == "scan.pdf"
    assert "left out, never read by the model: scan.pdf p. 1" in proc.stderr and "--allow-truncation" in proc.stderr
    allowed = dwb(*base, "--allow-truncation", check=False)
    # what is left out is said and allowed; the only page was left out, so nothing is cited and that is said too
    assert json.loads(allowed.stdout)["left_out"] == answer["left_out"]
    assert "--allow-truncation" not in allowed.stderr and "cites no passage" in allowed.stderr
    assert allowed.returncode == 1
    events = [json.loads(line) for line in allowed.stderr.splitlines() if line.startswith("{")]
    assert events and events[0]["event"] == "prefill_started"


ASK_ON_A_TERMINAL = [
    "ask",
    "--engine",
    "model",
    "--model",
    "tiny",
    "--steps",
    "3",
    "--max-new-tokens",
    "16",
]


@pytest.mark.slow
def test_ask_shows_prompt_size_prefill_and_canvases_on_a_terminal(tmp_path):
    """Run under a pseudo-terminal, as a user would: the prompt's token count, the prefill and each canvas's steps
    are drawn on stderr (which is the terminal)."""
    import pty
    import select

    text = tmp_path / "notes.txt"
    text.write_text("The harbour opens at six. " * 400, encoding="utf-8")
    args = [sys.executable, "-m", "app.cli", *ASK_ON_A_TERMINAL, "--prefill-chunk", "512", str(text), "When?"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execvpe(args[0], args, env)
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 300)
        if not ready:
            break
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode("utf-8", "replace")
    refused = "cites no passage" in screen or "were left out" in screen  # what the tiny model's answer holds
    assert os.waitstatus_to_exitcode(status) == (1 if refused else 0), screen
    assert "prompt: " in screen and " tokens" in screen
    tokens = int(screen.split("prompt: ")[1].split(" tokens")[0].replace(",", ""))
    assert tokens > 10_000 // 4
    assert "\rprefill 512 of" in screen and "prefill done" in screen  # redrawn in place, chunk by chunk
    assert "\rcanvas 1: step 1" in screen and "canvas 1: committed after" in screen
    assert "**Question:** When?" in screen  # then the answer, after the progress


@pytest.mark.slow
def test_an_nf4_load_says_nothing_about_optional_bitsandbytes_kernels(tmp_path):
    for _ in range(2):  # the first load builds the quantized cache, the second reads it
        env = dict(os.environ, HF_HUB_OFFLINE="1", DWB_QUANT_CACHE=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "generate", "--model", "tiny-trained", "--quant", "nf4", "--steps", "1"]
            + ["--max-new-tokens", "4", "hi"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert "NF4" in proc.stderr and "kernels" not in proc.stderr and "WARNING" not in proc.stderr


def test_a_second_ctrl_c_ends_the_process_at_once_even_while_the_model_loads():
    """The first Ctrl-C asks the run to stop at its next step; nothing checks it while weights load, so the second
    must end the process there and then, before the load finishes."""
    import signal
    import time

    args = [sys.executable, "-m", "app.cli", "generate", "--model", "tiny-trained", "--steps", "2", "hi"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    while "reading config" not in (line := proc.stderr.readline()):
        assert line, "dwb ended before it read the config"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Ctrl-C again quits at once" in err and "dwb: interrupted" in err
    assert "model:" not in err and "Traceback" not in err  # gone before the load finished


def test_a_finished_parse_exits_without_loading_the_model(monkeypatch, capsys, tmp_path):
    from app.cli import main

    sample = str(Path(__file__).resolve().parents[1] / "resources" / "sample.pdf")
    args = ["parse", sample, "--engine", "model", "--model", "tiny", "--steps", "1", "--max-new-tokens", "8"]
    args += ["--batch-size", "4", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "1 parsed" in capsys.readouterr().err
    calls = _no_load(monkeypatch)
    assert main(args) == 0
    assert "0 parsed, 1 already done" in capsys.readouterr().err and calls == []


def test_generate_says_when_the_model_wrote_nothing_and_what_tiny_trained_is_for():
    """tiny-trained answers an open question with end-of-sequence at once: the CLI says so (exit 0, a finished
    run), and points to what the demonstration model does."""
    proc = dwb("generate", "--model", "tiny-trained", "Write one line about the sea.")
    assert proc.stdout.strip() == ""
    assert "[0 tokens" in proc.stderr
    assert "the model wrote nothing" in proc.stderr and "--engine model --model tiny-trained" in proc.stderr
