"""The window's controls and their edge cases, each reproduced: Esc and close during a prefill, scope, exports, schemas.

Offscreen, real widgets, the real worker thread, real documents and the tiny model; no mocks, no timed assertions
(stalls are measured in tests/benchmarks/ui.py).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QKeySequence, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui import SAMPLE, apply_scheme
from app.gui.export_dialog import ExportChoice
from inference.runtime.events import (
    Cancelled,
    DenoisingStep,
    PrefillFinished,
    PrefillProgress,
    PrefillStarted,
)
from inference.runtime.prefill import text_layers
from tests.qt_helpers import TIMEOUT, ingested, load_tiny, png

ROOT = Path(__file__).resolve().parents[1]


def long_text(tmp_path: Path, chars: int = 7000) -> Path:
    """A text document whose Ask prompt is several thousand tokens (the tiny tokenizer is byte-level)."""
    words = (
        "diffusion canvas prefill cache token denoise entropy commit schedule sampler block page "
        "question answer workbench document layout"
    ).split()
    rng = np.random.default_rng(0)
    text = " ".join(rng.choice(words, size=chars // 8))
    path = tmp_path / "long.txt"
    path.write_text(text[:chars], encoding="utf-8")
    return path


def sample_on_tiny(win, qtbot, steps: int) -> None:
    """The sample document read, the tiny model loaded with ``steps`` per canvas, the model engine chosen."""
    win.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(win), timeout=TIMEOUT)
    load_tiny(win, qtbot, max_new_tokens=256, max_denoising_steps=steps)
    win.engine_box.setCurrentText("model")


def idle(win) -> bool:
    return not win.worker.busy


class Recorder:
    """Engine events in the order the worker emitted them (direct connection), and what happened after a mark."""

    def __init__(self) -> None:
        self.events: list = []
        self.mark: int | None = None
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append(event)

    def set_mark(self) -> None:
        with self.lock:
            self.mark = len(self.events)

    def after_mark(self, kind) -> list:
        with self.lock:
            return [e for e in self.events[self.mark or 0 :] if isinstance(e, kind)]


class LayersAfterCancel:
    """Counts the encoder layers that run (worker thread) although the job's cancel flag was set when they were
    called: model work done after the cancel, whatever the machine's speed."""

    def __init__(self, model, job) -> None:
        self.job = job
        self.started_after = 0
        self.flag_at_call = False
        layers = text_layers(model.model.encoder)
        self.handles = [layer.register_forward_pre_hook(self._pre) for layer in layers]
        self.handles += [layer.register_forward_hook(self._post) for layer in layers]

    def _pre(self, _module, _args) -> None:
        self.flag_at_call = self.job.cancel_token.cancelled

    def _post(self, _module, _args, _output) -> None:
        self.started_after += self.flag_at_call

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def start_long_ask(win, qtbot, tmp_path, on_prefill):
    win.add_paths([str(long_text(tmp_path))])
    qtbot.waitUntil(lambda: ingested(win), timeout=TIMEOUT)
    load_tiny(win, qtbot, max_new_tokens=512, max_denoising_steps=8)
    win.engine_box.setCurrentText("model")
    recorder = Recorder()
    job = win.ask("Which words repeat most often?")
    recorder.layers = LayersAfterCancel(win.model_engine.loaded.model, job)
    job.event.connect(recorder, Qt.ConnectionType.DirectConnection)
    fired = []

    def handler(event):  # UI thread
        if isinstance(event, (PrefillStarted, PrefillProgress)) and not fired:
            fired.append(event)
            recorder.set_mark()
            on_prefill()

    job.event.connect(handler)
    return job, recorder, fired


# Esc and closing during a long prefill -------------------------------------------------------------
def test_esc_during_a_long_prefill_cancels_within_one_chunk(window, qtbot, tmp_path):
    window.activateWindow()
    job, recorder, fired = start_long_ask(
        window, qtbot, tmp_path, lambda: QTest.keyClick(window.question, Qt.Key.Key_Escape)
    )
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert fired, "the prefill never started"
    started = next(e for e in recorder.events if isinstance(e, PrefillStarted))
    assert started.prompt_tokens > 5000  # a long prompt
    assert not recorder.after_mark(DenoisingStep)  # not one denoising step after Esc
    assert len(recorder.after_mark(PrefillProgress)) <= 1  # at most the chunk under way when Esc was pressed
    assert recorder.layers.started_after == 0  # not one encoder layer started once the flag was set
    assert recorder.after_mark(Cancelled)
    assert "Cancelled during the prefill" in window.banner.label.text()
    assert "Cancelling" not in window.status_label.text()  # : the status bar says what happened


def test_closing_during_a_long_prefill_cancels_waits_and_closes(window, qtbot, tmp_path):
    visible_after_close = []

    def close():
        window.close()
        visible_after_close.append(window.isVisible())  # the close waits for the worker, without blocking

    job, recorder, fired = start_long_ask(window, qtbot, tmp_path, close)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)
    assert fired and visible_after_close == [True]
    assert not window.worker.thread.isRunning() or window.worker.thread.wait(5000)
    assert not window.worker.thread.isRunning()
    assert not recorder.after_mark(DenoisingStep)
    assert len(recorder.after_mark(PrefillProgress)) <= 1
    assert recorder.layers.started_after == 0
    assert recorder.after_mark(Cancelled)


CLOSE_SCRIPT = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app.gui import application, run
from app.gui.main_window import MainWindow
from app.gui.model_dialog import ModelChoice
from inference.runtime.events import PrefillStarted, PrefillProgress

state = {"asked": False, "closed": False}

def closer(event):
    if isinstance(event, (PrefillStarted, PrefillProgress)) and not state["closed"]:
        state["closed"] = True
        print("closing during the prefill", flush=True)
        state["window"].close()

def step():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    if not windows:
        return
    window = state["window"] = windows[0]
    if window.worker.busy or state["asked"] or not window.entries:
        return
    if window.model_engine is None:
        if not state.get("loading"):
            state["loading"] = True
            window.load_model(ModelChoice("tiny", "fp32", "cpu", {"max_new_tokens": 256, "max_denoising_steps": 8,
                                                                  "seed": 0}))
        return
    state["asked"] = True
    window.engine_box.setCurrentText("model")
    window.ask("Which words repeat most often?").event.connect(closer)

application()  # run() takes this application: the timer needs it to exist
timer = QTimer()
timer.timeout.connect(step)
timer.start(50)
status = run([sys.argv[1]])  # the app's own entry: it ends the process once the window has closed
print("run returned", status, flush=True)
sys.exit(status)
"""


def test_closing_during_a_prefill_exits_cleanly_in_a_real_process(tmp_path):
    config = tmp_path / "config"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HF_HUB_OFFLINE": "1",
        "XDG_CONFIG_HOME": str(config),
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(
        [sys.executable, "-c", CLOSE_SCRIPT, str(long_text(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert "closing during the prefill" in run.stdout, run.stdout + run.stderr
    assert "QThread: Destroyed" not in run.stderr
    assert run.returncode == 0, run.stderr[-2000:]
    assert "run returned" not in run.stdout  # the process ended as soon as the window closed, without teardown
    written = (config / "DiffusionWorkbench" / "workbench.ini").read_text()
    assert "geometry" in written and "long.txt" in written  # what the window saves was written before the end


def test_the_status_bar_shows_prefill_progress(window, qtbot, tmp_path):
    seen = []

    def watch(event):
        if isinstance(event, PrefillProgress):
            seen.append((window.progress.maximum(), window.progress.value(), window.status_label.text()))

    sample_on_tiny(window, qtbot, 2)
    job = window.ask("What is block diffusion?")
    job.event.connect(watch)
    with qtbot.waitSignal(job.event, timeout=TIMEOUT, check_params_cb=lambda e: isinstance(e, PrefillStarted)):
        pass
    assert window.progress.isVisible() and window.progress.maximum() == 0  # busy while the prefill starts
    assert "prefill" in window.status_label.text()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    # the event itself, shown as the engine sends it (chunked prefill sends one per chunk)
    event = PrefillProgress(done=3000, total=12000, seconds=2.0, seconds_left=6.0)
    window.show_engine_progress(event)
    assert (window.progress.maximum(), window.progress.value()) == (12000, 3000)
    assert "3,000 of 12,000 tokens" in window.status_label.text() and "6 s left" in window.status_label.text()
    for maximum, value, text in seen:  # any the engine sent during the run
        assert maximum >= value and "prefill" in text
    window.show_engine_progress(PrefillFinished(prompt_tokens=12000, seconds=8.0))
    assert "12,000 tokens in 8.0 s" in window.status_label.text()


# the scope feature
def test_ask_covers_the_selection_only(window, qtbot, tmp_path):
    image = png(tmp_path)
    window.add_paths([str(SAMPLE), str(image)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.doc_list.setCurrentRow(0)  # the PDF alone
    sample = str(SAMPLE.resolve())
    assert [e.path for e in window.tasks.scope_entries()] == [sample]
    window.engine_box.setCurrentText("builtin")
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert window.entries[str(image.resolve())].parsed is None  # the image was not OCRed for a PDF question
    answer = window.results.thread[-1]
    assert answer.citations and {c.document for c in answer.citations} == {sample}
    window.scope_box.setCurrentIndex(1)  # all documents
    assert len(window.tasks.scope_entries()) == 2


def test_the_question_box_shows_the_exact_prompt_tokens_of_the_scope(window, qtbot, tmp_path):
    window.add_paths([str(SAMPLE), str(long_text(tmp_path, 3000))])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=256, max_denoising_steps=2)
    window.doc_list.setCurrentRow(0)
    window.engine_box.setCurrentText("model")
    window.question.setText("What is block diffusion?")
    qtbot.waitUntil(lambda: window.tasks.prompt_tokens is not None and idle(window), timeout=TIMEOUT)
    shown = window.tasks.prompt_tokens
    assert f"{shown:,} prompt tokens" in window.scope_label.text() and "sample.pdf" in window.scope_label.text()
    recorder = Recorder()
    job = window.ask(window.question.text())
    job.event.connect(recorder, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    started = next(e for e in recorder.events if isinstance(e, PrefillStarted))
    assert started.prompt_tokens == shown and started.cached_tokens == 0


def test_after_an_ask_the_viewer_still_shows_the_selected_document(window, qtbot, tmp_path):
    image = png(tmp_path)
    window.add_paths([str(image), str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.doc_list.setCurrentRow(0)
    window.scope_box.setCurrentIndex(1)  # all: the PDF is parsed along the way
    window.engine_box.setCurrentText("builtin")
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    shown = window.entries[str(image.resolve())]
    assert window.entries[str(SAMPLE.resolve())].parsed is not None
    assert window.current == shown.path and window.page_view.document is shown.document
    assert window.doc_list.currentItem().data(Qt.ItemDataRole.UserRole) == shown.path


def lookalike_pdf(tmp_path: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 90), "- Turn on editing in the View menu before you start.", fontsize=11)
    page.insert_text((72, 140), "Editing", fontsize=20)
    para = (
        "Select a block and type to change it. Changes are kept in a journal so that every edit can be undone "
        "later, one step at a time, without losing the original wording of the paragraph."
    )
    page.insert_textbox(pymupdf.Rect(72, 160, 520, 260), para, fontsize=11)
    path = tmp_path / "editing.pdf"
    doc.save(path)
    return path


def test_clicking_a_block_selects_its_own_text(window, qtbot, tmp_path):
    window.add_paths([str(lookalike_pdf(tmp_path))])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.parse()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    blocks = {b.text.strip().split()[0]: b for b in window.page_view.blocks if b.text.strip()}
    heading = blocks["Editing"]
    window.page_view.block_clicked.emit(1, heading.order)
    cursor = window.results.raw.textCursor()
    assert cursor.selectedText().endswith("Editing") and cursor.selectedText().lstrip("# ") == "Editing"
    assert window.results.markdown[: cursor.selectionStart()].count("Editing") == 0  # not the bullet's "editing"
    para = blocks["Select"]
    window.page_view.block_clicked.emit(1, para.order)
    selected = window.results.raw.textCursor().selectedText()
    assert selected.startswith("Select a block") and selected.endswith("paragraph.")  # whole words, whole block
    # and back: the cursor in the Markdown highlights that block
    cursor = window.results.raw.textCursor()
    cursor.setPosition(window.results.spans[(1, heading.order)][0] + 3)
    window.results.raw.setTextCursor(cursor)
    assert window.page_view.highlighted == heading.order


def test_the_model_dialog_reads_on_a_background_thread(window, qtbot):
    from app.gui.model_dialog import ModelDialog

    dialog = ModelDialog(window, [], None)
    assert dialog.estimate.text().startswith("Reading tiny")  # opened at once; the answer comes later
    qtbot.waitUntil(lambda: dialog.answers == 1, timeout=TIMEOUT)
    assert "parameters" in dialog.estimate.text()
    dialog.source.setCurrentText("no-such-org/no-such-model")
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.answers == 2, timeout=TIMEOUT)
    text = dialog.estimate.toolTip()
    assert text.startswith("No estimate") and "--model" not in text and "tiny" in text
    dialog.show()
    QApplication.processEvents()
    for spin in dialog.findChildren(type(dialog.fields["max_denoising_steps"])):
        assert spin.height() >= spin.minimumSizeHint().height()  # a long message never squashes the form
    dialog.close()
    dialog.deleteLater()


def test_cancel_leaves_the_right_state(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(
        window, qtbot, max_new_tokens=512, max_denoising_steps=6, stability_threshold=None, confidence_threshold=None
    )
    window.model_engine.engine.eos_token_ids = []  # two full canvases per page
    window.engine_box.setCurrentText("model")
    job = window.parse()

    def on_event(event):  # cancel when page 2's run starts: the panel shows page 1's last canvas and step
        if isinstance(event, PrefillStarted) and window.panel.frames:
            window.cancel()

    recorder = Recorder()
    job.event.connect(recorder, Qt.ConnectionType.DirectConnection)
    job.event.connect(on_event)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    entry = window.entries[str(SAMPLE.resolve())]
    assert entry.parsed is None and entry.status == "ready"  # not "done": nothing was parsed
    assert "ready" in window.doc_list.item(0).text()
    starts = [i for i, e in enumerate(recorder.events) if isinstance(e, PrefillStarted)]
    page_two = recorder.events[starts[1] :]
    steps = [e for e in page_two if isinstance(e, DenoisingStep)]
    # where the run stopped, as the engine's events say: in page 2's prefill, or after the step it reached
    expected = f"step {steps[-1].step + 1}" if steps else "during the prefill"
    assert expected in window.banner.label.text(), (expected, window.banner.label.text())
    assert "Cancelling" not in window.status_label.text() and "Cancelled" in window.status_label.text()


def contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_dark_mode_is_readable_and_disabled_looks_disabled(window, qtbot):
    from app.gui.denoise_frames import COMMITTED, NOISE
    from app.gui.denoise_views import state_colours

    app = QApplication.instance()
    apply_scheme(app, True)
    try:
        QApplication.processEvents()
        pal = window.palette()
        enabled = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
        disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
        assert contrast(enabled, disabled) > 1.8  # disabled Cancel and Cleaned look disabled
        assert not window.cancel_action.isEnabled() and not window.cleaned_box.isEnabled()
        background = pal.color(QPalette.ColorRole.Window)
        colours = state_colours(window.panel)
        legend = QColor(window.panel.swatches[COMMITTED].styleSheet().split("color:")[1].strip(" ;"))
        assert contrast(legend, background) >= 3.0  # not navy on near-black
        assert contrast(colours[NOISE], pal.color(QPalette.ColorRole.Base)) >= 3.0  # noise cells visible
    finally:
        apply_scheme(app, False)


# export choices
def test_export_writes_the_choices_with_the_umask_mode(window, qtbot, tmp_path):
    image = png(tmp_path)
    window.add_paths([str(SAMPLE), str(image)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.scope_box.setCurrentIndex(1)
    window.parse()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object", "properties": {"Canvas": {"type": "string"}}}')
    window.extract(str(schema))
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        window.export_to(ExportChoice(str(out), [str(SAMPLE.resolve())], ("md", "json"), True, True))
        qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    finally:
        os.umask(old)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["answers.md", "extraction-1.json", "sample.json", "sample.md"]  # not the PNG, not 5 formats
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in out.iterdir())
    assert "What is block diffusion?" in (out / "answers.md").read_text()


def test_the_page_viewer_takes_drops_as_copies_never_moves(window, qtbot):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE))])
    target = window.page_view.viewport()
    move_or_copy = Qt.DropAction.MoveAction | Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        QPoint(30, 30), move_or_copy, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    only_move = QDragEnterEvent(
        QPoint(30, 30), Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(target, only_move)
    assert not only_move.isAccepted()
    window.page_view.dropped.emit(mime)  # what a drop on the viewer does
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert str(SAMPLE.resolve()) in window.entries


def test_no_stale_text_between_runs(window, qtbot, tmp_path):
    from app.gui.denoise_views import steps_text

    sample_on_tiny(window, qtbot, 3)
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    window.panel.scrubber.setValue(0)
    assert window.panel.scrub_label.text()
    window.show_error("An old error")
    job = window.ask("And again?")
    assert window.panel.scrub_label.text() == "" and not window.banner.isVisible()
    with qtbot.waitSignal(job.event, timeout=TIMEOUT):
        pass
    assert "old error" not in window.status_label.text()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    window.add_paths([str(png(tmp_path))])  # a new ingest: busy, not a full bar left from before
    assert window.progress.maximum() == 0 and window.progress.isVisible()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert steps_text([48, 46]) == "steps per canvas: 48, 46"


def test_the_empty_window_says_what_to_do(window, qtbot):
    assert window.page_spin.text() == "\u2013" and window.page_total.text() == "/ 0"
    assert not window.page_spin.isEnabled() and not window.cleaned_box.isEnabled()
    window.cleaned_box.setChecked(True)
    texts = [i.toPlainText() for i in window.page_view.scene().items() if hasattr(i, "toPlainText")]
    assert any("Drop PDFs" in t for t in texts)  # the hint stays
    for run in (
        window.parse,
        lambda: window.ask("anything?"),
        lambda: window.extract("schema.json"),
        window.extract_dialog,
    ):
        window.banner.hide()
        assert run() is None
        assert "Add a document first" in window.banner.label.text() and window.banner.isVisible()
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert window.page_spin.text() == "1" and window.page_total.text() == "/ 2"
    window.remove_selected()
    assert window.page_spin.text() == "\u2013" and not window.entries


def test_zoom_keys_and_refit_on_resize(window, qtbot):
    zoom_in = next(a for a in window.findChildren(type(window.cancel_action)) if a.text() == "Zoom &in")
    assert QKeySequence("Ctrl+=") in zoom_in.shortcuts()
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    fitted = window.page_view.transform().m11()
    window.resize(window.width() + 300, window.height() + 200)
    qtbot.waitUntil(lambda: window.page_view.transform().m11() != fitted, timeout=5000)  # refitted
    zoom_in.trigger()
    zoomed = window.page_view.transform().m11()
    window.resize(window.width() - 200, window.height() - 100)
    QApplication.processEvents()
    assert window.page_view.transform().m11() == zoomed  # an explicit zoom is kept


# features
def test_a_citation_link_opens_the_page_and_highlights_the_passage(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.ask("What does the builtin engine do without model weights?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    html = window.results.answer.toHtml()
    assert html.count("Retrieved evidence") == 1  # the header once
    answer = window.results.thread[-1]
    target = next(c for c in answer.citations if c.page == 2)
    index = window.results._links.index(target)
    window.page_view.show_page(1)
    window.results.answer.anchorClicked.emit(QUrl(f"cite:{index}"))
    assert window.page_view.page == 2
    assert window.page_view.highlighted is not None
    block = next(b for b in window.page_view.blocks if b.order == window.page_view.highlighted)
    assert "builtin engine" in block.text or "workbench" in block.text
    pages = window.results.answer.toPlainText().split("Pages:")[-1]
    assert pages.count("p. 2") == 1  # no duplicated page entries


def test_a_follow_up_question_prefills_only_its_new_tokens(window, qtbot):
    sample_on_tiny(window, qtbot, 3)
    starts = []

    def record(event):
        if isinstance(event, PrefillStarted):
            starts.append(event)

    window.ask("What is block diffusion?").event.connect(record, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    window.question.setText("And adaptive stopping?")
    qtbot.waitUntil(lambda: window.tasks.prompt_tokens is not None and idle(window), timeout=TIMEOUT)
    shown = window.tasks.prompt_tokens
    window.ask("And adaptive stopping?").event.connect(record, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    first, second = starts
    assert second.cached_tokens >= first.prompt_tokens  # the documents are not read again
    assert second.prompt_tokens == shown < first.prompt_tokens // 2  # only the pending answer and the new turn
    assert f"cached {second.cached_tokens:,}" in window.panel.counters.text()
    assert len(window.results.thread) == 2
    window.clear_conversation()
    assert window.results.thread == [] and not window.tasks.conversations


def test_the_text_view_shows_the_draft_and_replays_a_step(window, qtbot):
    sample_on_tiny(window, qtbot, 4)
    steps = []
    job = window.ask("What is block diffusion?")
    job.event.connect(
        lambda e: steps.append(e) if isinstance(e, DenoisingStep) else None, Qt.ConnectionType.DirectConnection
    )
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    window.panel.redraw_now()
    tokenizer = window.loaded.tokenizer

    def decode(ids):  # the tokenizer's text for a token, tabs and newlines shown as arrows, nothing as a dot
        return tokenizer.decode(ids).replace("\n", "\u21b5").replace("\t", "\u2192") or "\u00b7"

    window.panel.scrubber.setValue(1)  # replay step 2 of canvas 1
    frame = window.panel.frames[1]
    assert frame.step == 1 and np.array_equal(frame.draft, steps[1].draft[0])
    shown = [window.loaded.tokenizer.decode([int(t)]) for t in steps[1].draft[0]]
    assert window.panel.text.tokens == [decode([int(t)]) for t in steps[1].draft[0]]
    plain = [i for i, t in enumerate(shown) if t.strip() and "\n" not in t and "\t" not in t]
    assert [window.panel.text.tokens[i] for i in plain] == [shown[i] for i in plain]  # the tokenizer's own text
    window.panel.scrubber.setValue(0)
    assert window.panel.text.tokens == [decode([int(t)]) for t in steps[0].draft[0]]


def test_the_extraction_table_shows_the_value_on_its_page(window, qtbot, tmp_path):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object", "properties": {"Canvas": {"type": "string"}, "Steps": {"type": "string"}}}')
    window.extract(str(schema))
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    table = window.results.table
    assert table.rowCount() >= 1
    sources = window.results.extraction_sources()
    row = next(i for i, s in enumerate(sources) if s is not None)
    window.page_view.show_page(2)
    table.cellClicked.emit(row, 1)
    assert window.page_view.page == sources[row].page


def test_every_shortcut_belongs_to_one_action(window):
    """Two actions on one key make Qt ignore the key ("Ambiguous shortcut overload"): Ctrl+D did nothing while both
    the denoising panel and Remove document (the platform's Delete bindings) held it."""
    from PySide6.QtGui import QAction

    owners: dict[str, list[str]] = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            owners.setdefault(key.toString(), []).append(action.text())
    shared = {key: names for key, names in owners.items() if len(names) > 1}
    assert not shared, shared
    assert owners["Ctrl+D"] == ["Denoising &panel"] and owners["Del"] == ["&Remove document"]
    window.toggle_panel(True)
    QTest.keySequence(window, QKeySequence("Ctrl+D"))
    assert not window.panel_action.isChecked()  # the key reaches its action
