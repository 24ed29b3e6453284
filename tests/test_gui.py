"""The window, offscreen, with pytest-qt: real widgets, the real worker thread, real documents and the tiny model."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from tests.helpers import shared_path

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.gui import SAMPLE
from app.gui.main_window import MainWindow
from app.gui.worker import Job
from inference.runtime.events import CanvasCommitted, DenoisingStep, Finished
from tests.qt_helpers import TIMEOUT, delete_now, drop, ingested, load_tiny, png


def test_dropping_a_pdf_and_a_png_lists_both_and_shows_their_pages(window, qtbot, tmp_path):
    image = png(tmp_path)
    drop(window, [SAMPLE, image])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert window.doc_list.count() == 2
    statuses = [window.entries[str(p.resolve())].status for p in (SAMPLE, image)]
    assert statuses == ["ready", "ready"]
    assert "sample.pdf" in window.doc_list.item(0).text() and "2 pages" in window.doc_list.item(0).text()
    assert not window.doc_list.item(0).icon().isNull()  # a thumbnail
    window.doc_list.setCurrentRow(0)
    assert window.page_view.page == 1 and window.page_view.outline_items  # the page with its block outlines
    window.next_page()
    assert window.page_view.page == 2 and window.page_spin.value() == 2
    window.doc_list.setCurrentRow(1)
    scene = window.page_view.scene()
    assert window.page_view.document.kind == "image" and scene.sceneRect().width() == 450


def test_parse_builtin_shows_results_and_writes_the_exports(window, qtbot, tmp_path):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    assert window.parse() is not None
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert "# How block diffusion writes" in window.results.raw.toPlainText()
    assert "How block diffusion writes" in window.results.rendered.toPlainText()
    assert '"engine": "builtin"' in window.results.json.toPlainText()
    # a click on a block selects its text in the results; moving in the results highlights the block
    window.page_view.show_page(1)
    heading = next(b for b in window.page_view.blocks if b.kind == "heading")
    window._block_clicked(1, heading.order)
    assert window.results.raw.textCursor().selectedText() == "# How block diffusion writes"
    window.export_to(tmp_path / "out")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    names = sorted(p.name for p in window.tasks.exported)
    assert names == ["sample.html", "sample.json", "sample.md", "sample.txt", "sample_p1_t1.csv"]
    assert (tmp_path / "out" / "sample.md").read_text().startswith("<!-- page 1 -->")


def test_parse_with_the_tiny_model_drives_the_panel(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot)
    window.engine_box.setCurrentText("model")
    emitted = []
    job = window.parse()
    job.event.connect(emitted.append, Qt.ConnectionType.DirectConnection)  # counted on the worker thread
    paints = window.panel.grid.paints
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    QApplication.processEvents()
    steps = [e for e in emitted if isinstance(e, DenoisingStep)]
    assert len(steps) >= 2 and sum(isinstance(e, Finished) for e in emitted) == 2  # two pages, two runs
    assert window.panel.received == len(emitted)  # every event reached the panel
    commits = sum(isinstance(e, CanvasCommitted) for e in emitted)
    assert len(window.panel.frames) == len(steps) + commits
    qtbot.waitUntil(lambda: window.panel.grid.paints > paints, timeout=5000)  # and it redrew
    assert window.panel.redraws >= 1 and window.panel.scrubber.isEnabled()
    window.panel.scrubber.setValue(0)  # replay the first step of the first canvas
    assert window.panel.grid.frame is window.panel.frames[0]
    assert "canvas 1, step 1" in window.panel.scrub_label.text()
    counters = window.panel.counters.text()  # no empty field, no 0.00 before anything is committed
    assert "\u00b7  \u00b7" not in counters and " 0.00 tokens/forward" not in counters, counters
    assert "<!-- page 2 -->" in window.results.raw.toPlainText()


def test_a_window_deleted_while_its_close_waits_for_a_job_stops_the_thread(qtbot):
    """Close while a job runs (the close waits for it), then delete the window before the job ends: the thread is
    cancelled and joined with the window, not left running (a QThread destroyed running aborts the process)."""
    win = MainWindow()
    win.show()
    started, seen_cancel = threading.Event(), threading.Event()

    def wait_for_cancel(job):
        started.set()
        for _ in range(3000):  # at most 30 s: a bound, so that a failure cannot hang the run
            if job.cancelled_requested:
                seen_cancel.set()
                return None
            threading.Event().wait(0.01)
        return None

    win.worker.submit(Job("waiting", wait_for_cancel))
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)  # the job starts when the event loop runs
    thread = win.worker.thread
    win.close()  # the job runs: the close waits for it
    assert win.closing and win.isVisible()
    delete_now(win)
    try:
        assert seen_cancel.is_set() and not thread.isRunning()
    finally:
        thread.quit()
        thread.wait()


def test_a_connection_made_right_after_submit_sees_the_jobs_first_event(window, qtbot):
    """A job that emits at once (a follow-up's prefill is that quick) starts only when the UI thread's event loop
    runs again, so the caller's ``job.event.connect`` after ``submit`` always sees its first event."""
    for _ in range(20):
        seen = []
        job = window.worker.submit(Job("quick", lambda job: job.event.emit("first")))
        job.event.connect(seen.append, Qt.ConnectionType.DirectConnection)
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
        assert seen == ["first"]


def test_a_closed_window_queues_no_new_work(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot)
    window.engine_box.setCurrentText("model")  # a scope change: the token count's timer starts
    assert window.tasks.count_timer.isActive()
    window.close()
    assert not window.tasks.count_timer.isActive() and not window.worker.thread.isRunning()
    window.tasks.count_tokens()
    late = window.worker.submit(Job("late", lambda job: 1 / 0))
    assert late.cancelled_requested and not window.worker.busy


def test_cancel_mid_canvas_stops_before_the_next_step(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(
        window, qtbot, max_new_tokens=1024, max_denoising_steps=48, stability_threshold=None, confidence_threshold=None
    )
    window.engine_box.setCurrentText("model")
    seen: list[int] = []
    at_cancel: list[int] = []
    lock = threading.Lock()

    def record(event):  # worker thread: the true order of steps
        if isinstance(event, DenoisingStep):
            with lock:
                seen.append(event.step)

    def maybe_cancel(event):  # UI thread
        if isinstance(event, DenoisingStep) and event.step == 3 and not at_cancel:
            with lock:
                at_cancel.append(len(seen))
            window.cancel()

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    job = window.parse()
    job.event.connect(record, Qt.ConnectionType.DirectConnection)
    job.event.connect(maybe_cancel)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    timer.stop()
    assert at_cancel, "never reached step 3"
    assert len(seen) <= at_cancel[0] + 1  # at most the step already under way when Cancel was pressed
    assert max(seen) < 47
    assert "Cancelled" in window.banner.label.text() and window.banner.isVisible()
    assert ticks  # the UI thread kept running its timers during the run
    window.panel.redraw_now()
    # the panel keeps the steps that ran, the last one shown: the step where the run stopped
    assert [f.step for f in window.panel.frames][-len(seen) :] == seen
    assert window.isVisible() and not window.cancel_action.isEnabled()


def test_a_worker_error_shows_a_message_and_keeps_the_window_and_results(window, qtbot, tmp_path):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    earlier = window.results.raw.toPlainText()
    assert earlier

    def explode(job):
        raise ZeroDivisionError("division by zero in a task")

    window.worker.submit(window.tasks.connect(Job("boom", explode), lambda result: None))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert "Something went wrong (ZeroDivisionError" in window.banner.label.text()
    assert "Traceback" not in window.banner.label.text() and "Traceback" in window.banner.details
    bad = tmp_path / "schema.json"
    bad.write_text("{not json", encoding="utf-8")
    window.extract(str(bad))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert "not valid JSON" in window.banner.label.text()
    assert window.results.raw.toPlainText() == earlier and window.isVisible()
    window.engine_box.setCurrentText("model")  # no model loaded: a message, not a crash
    assert window.parse() is None and "Load a model first" in window.banner.label.text()
    window.add_paths([str(tmp_path / "missing.pdf")])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert window.entries[str((tmp_path / "missing.pdf").resolve())].status == "failed"
    window.engine_box.setCurrentText("builtin")
    assert window.ask("What is block diffusion?") is None  # the new file, which failed, is the scope
    assert "No document in scope is ready" in window.banner.label.text()
    window.doc_list.setCurrentRow(0)
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert "cite:0" in window.results.answer.toHtml() and "not a generated" in window.results.answer.toPlainText()


def test_screenshot_renders_every_state(qtbot, tmp_path):
    from app.gui.screenshot import STATES, screenshot

    images = {}
    for state in STATES:
        path = screenshot(tmp_path / f"{state}.png", state, (1200, 760))
        img = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
        assert img.shape == (760, 1200, 3)
        images[state] = img
    # the document list is empty only in the empty state
    list_region = (slice(60, 200), slice(0, 180))
    assert images["empty"][list_region].std() < images["loaded"][list_region].std()
    # the denoising grid (lower right) changes once the model runs, and again when it finishes
    grid = (slice(480, 700), slice(760, 1000))
    assert np.abs(images["generating"][grid] - images["loaded"][grid]).mean() > 5
    assert np.abs(images["done"][grid] - images["generating"][grid]).mean() > 2
    assert images["dark"].mean() < images["done"].mean() - 40  # the dark scheme, really dark
    assert np.abs(images["conversation"] - images["extract"]).mean() > 2
    assert np.abs(images["extract-pinned"] - images["extract"]).mean() > 1  # the model's values, coloured
    assert not [w for w in QApplication.topLevelWidgets() if w.isVisible()]


def test_the_layout_works_at_1024_by_700_and_900_wide(window, qtbot):
    for width in (1024, 900):
        window.resize(width, 700)
        qtbot.waitUntil(lambda width=width: window.width() == width, timeout=5000)
        assert window.results.height() >= 300 and window.height() == 700


def test_cli_screenshot(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "empty.png"
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "screenshot", str(out), "--state", "empty", "--size", "1100x700"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert run.returncode == 0, run.stderr
    assert Image.open(out).size == (1100, 700)


def test_the_window_opens_without_heavy_imports(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from app.gui import application; app = application(); "
        "from app.gui.main_window import MainWindow; w = MainWindow(); w.show(); app.processEvents(); "
        "heavy = [m for m in ('torch', 'transformers', 'cv2', 'pymupdf', 'fitz') if m in sys.modules]; "
        "w.close(); print(heavy)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        # settings and session in a folder of the test's own: never the user's
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    heavy = run.stdout.strip().splitlines()[-1]
    assert heavy == "[]", heavy


def test_a_scanned_page_shows_before_and_after_cleanup(window, qtbot):
    data = shared_path("data", "ocrmypdf", "skew.pdf")
    window.add_paths([str(data)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert window.cleaned_box.isEnabled()
    before = window.page_view.scene().sceneRect()
    window.page_view.zoom_by(1.25)
    zoom = window.page_view.transform().m11()
    window.cleaned_box.setChecked(True)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    QApplication.processEvents()
    texts = [i.toPlainText() for i in window.page_view.scene().items() if hasattr(i, "toPlainText")]
    assert any("deskew" in t for t in texts), texts
    assert window.page_view.scene().sceneRect() != before
    # : the cleaned page is drawn at the page's scale, so toggling keeps the zoom and the size on screen
    assert window.page_view.transform().m11() == zoom
    after = window.page_view.scene().sceneRect()
    assert 0.7 < after.width() / before.width() < 1.3
    window.cleaned_box.setChecked(False)
    assert window.page_view.outline_items is not None and window.page_view.scene().sceneRect() == before


def test_the_model_dialog_offers_nf4_and_the_window_loads_it_with_layer_progress(window, qtbot):
    from app.gui.model_dialog import ModelDialog

    dialog = ModelDialog(window, [], None)
    qtbot.addWidget(dialog)
    dialog.source.setCurrentText("tiny")  # two layers: "layer 2 of 2"
    dialog.quant.setCurrentText("nf4")
    dialog.refresh()
    qtbot.waitUntil(lambda: "NF4" in dialog.estimate.text(), timeout=TIMEOUT)
    assert "4-bit NF4" in dialog.estimate.text()
    choice = dialog.choice()
    assert choice.quant == "nf4"
    choice.params.update(max_new_tokens=256, max_denoising_steps=4, seed=0)
    seen = []
    job = window.load_model(choice)
    job.progress.connect(lambda done, total, what: seen.append(what))
    qtbot.waitUntil(lambda: window.model_engine is not None and not window.worker.busy, timeout=TIMEOUT)
    assert window.loaded.quant == "nf4" and "NF4" in window.model_label.text()
    assert any("layer 2 of 2" in what for what in seen), seen
