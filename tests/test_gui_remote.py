"""The window on the remote engine: the model dialog connects to a real ``dwb serve --model tiny`` (its
own process) on 127.0.0.1 and a free port, Ask and Parse run there, and the denoising panel follows the server's
events. Bad choices get a message that says what to fix. Offscreen, real widgets, real HTTP on loopback; no mocks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("uvicorn")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from app.gui import SAMPLE
from inference.runtime.events import CanvasCommitted, DenoisingStep, Finished, PrefillStarted
from tests.qt_helpers import TIMEOUT, ingested

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served_process():
    """``dwb serve --model tiny`` as its own process on 127.0.0.1 and a free port; its URL once it answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--model",
            "tiny",
            "--dtype",
            "fp32",
            "--device",
            "cpu",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(1200):  # a bound on waiting for it to listen (it loads torch first), not a timing assertion
            if server.poll() is not None:
                pytest.fail(f"dwb serve exited: {server.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)


def connect(win, qtbot, url: str, **fields) -> None:
    """Tasks -> Model...: Engine "Remote server", Source tiny, the base URL, 4 steps a canvas; Connect."""
    win.model_dialog()
    dialog = win.dialog
    dialog.engine.setCurrentIndex(dialog.engine.findData("remote"))
    assert dialog.base_url.isVisibleTo(dialog) and not dialog.device.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: dialog.answers >= 1, timeout=TIMEOUT)  # the source's defaults are in the form
    dialog.source.setCurrentText("tiny")  # the prompts are built with the processor of the model served
    dialog.base_url.setText(url)
    for name, value in fields.items():
        getattr(dialog, name).setText(value)
    dialog.fields["max_new_tokens"].setValue(256)
    dialog.fields["max_denoising_steps"].setValue(4)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=TIMEOUT)


def test_ask_and_parse_on_a_remote_dwb_serve_drive_the_panel(window, qtbot, served_process):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    connect(window, qtbot, served_process)
    assert window.remote_engine is not None, window.last_error
    assert window.engine_box.currentText() == "remote"
    assert served_process in window.model_label.text() and "tiny" in window.model_label.text()
    assert window.panel.isVisible()

    seen = []
    job = window.ask("What does the sample say about block diffusion?")
    job.event.connect(seen.append, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert not window.last_error
    kinds = {type(e) for e in seen}
    assert {PrefillStarted, DenoisingStep, CanvasCommitted, Finished} <= kinds  # the server's typed events
    answer = window.results.thread[-1]
    assert answer.engine == "remote" and answer.text == next(e for e in seen if isinstance(e, Finished)).text.strip()
    window.panel.redraw_now()
    steps = [e for e in seen if isinstance(e, DenoisingStep)]
    assert len(window.panel.frames) >= len(steps) > 0
    # the canvas as text, decoded with the tokenizer of the served model (tabs, newlines, empties made visible)
    from inference.weights.tiny import build_tokenizer

    tokenizer = build_tokenizer()  # the served model's tokenizer, built here on its own

    def decode(token_id):
        return tokenizer.decode([token_id]).replace("\n", "\u21b5").replace("\t", "\u2192") or "\u00b7"

    expected = [decode(int(t)) for t in window.panel.frames[-1].draft]
    assert window.panel.text.tokens == expected
    assert f"step {window.panel.frames[-1].step + 1}" in window.panel.counters.text()

    parsed = window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert parsed is not None
    entry = window.entries[str(SAMPLE.resolve())]
    assert entry.parsed.engine == "remote"
    assert entry.status in ("parsed", "partial")  # each is forced in the test below
    assert window.results.markdown == entry.parsed.markdown


@pytest.mark.parametrize("ends", [True, False], ids=["ends-in-time", "cut-off"])
def test_a_remote_parse_is_parsed_or_partial_as_the_server_finished(window, qtbot, ends):
    """A server whose model ends its answers in time: the document is parsed, no error. One whose model never
    writes end-of-sequence: the page is cut off at max_tokens, which is said, and the partial parse is kept."""
    from inference.weights.loading import load_model
    from tests.helpers import serving
    from tests.model_helpers import towards, writes_then_ends

    biased = load_model("tiny", dtype="fp32", device="cpu")
    letter = biased.tokenizer.convert_tokens_to_ids("a")
    if ends:
        writes_then_ends(biased.model, letter, biased.tokenizer.eos_token_id)
    else:
        towards(biased.model, letter, strength=30.0)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    with serving(biased) as (_runner, url):
        connect(window, qtbot, url)
        assert window.remote_engine is not None, window.last_error
        assert window.parse() is not None
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    entry = window.entries[str(SAMPLE.resolve())]
    assert entry.parsed.engine == "remote" and window.results.markdown == entry.parsed.markdown
    if ends:
        assert entry.status == "parsed" and not window.last_error
    else:
        assert entry.status == "partial" and "finish_reason: length" in window.last_error


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"base_url": ""}, "base URL"),
        ({"base_url": "127.0.0.1:8000"}, "not an http:// or https:// address"),
        ({"api_key_env": "DWB_TEST_UNSET_KEY_VARIABLE"}, "DWB_TEST_UNSET_KEY_VARIABLE"),
        ({"base_url": "SERVED_WITHOUT_V1"}, "usually ends in /v1"),  # the server answers 404
    ],
)
def test_a_bad_remote_choice_says_what_to_fix(window, qtbot, served_process, fields, expected, monkeypatch):
    monkeypatch.delenv("DWB_TEST_UNSET_KEY_VARIABLE", raising=False)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    url = fields.pop("base_url", served_process)
    url = served_process.removesuffix("/v1") if url == "SERVED_WITHOUT_V1" else url
    connect(window, qtbot, url, **fields)
    assert window.remote_engine is None
    assert expected in window.last_error and "Traceback" not in window.last_error
    assert window.banner.isVisible()
    window.engine_box.setCurrentText("remote")
    window.question.setText("What is it?")
    assert window.ask("What is it?") is None  # no engine: it says so instead of running
    assert "Connect to a server first" in window.last_error
