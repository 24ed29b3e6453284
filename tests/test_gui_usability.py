"""What a new user met in the window: keys that must do what they say, the Engine left as chosen, zoom where the
mouse is, details at once. Offscreen, real widgets and documents, the tiny model where a model is needed."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPlainTextEdit

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, ingested, load_tiny, parsed_sample


def test_ask_with_an_empty_box_puts_the_cursor_in_the_box(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.activateWindow()
    window.doc_list.setFocus()
    QTest.keySequence(window, QKeySequence("Ctrl+K"))
    assert "Type a question first." in window.banner.label.text()
    qtbot.waitUntil(lambda: window.question.hasFocus() or QApplication.focusWidget() is window.question, timeout=2000)


def test_loading_a_model_leaves_the_engine_as_the_user_chose(window, qtbot):
    parsed_sample(window, qtbot)
    markdown = window.results.raw.toPlainText()
    assert markdown.strip()
    load_tiny(window, qtbot, max_new_tokens=32, max_denoising_steps=2, choose=False)
    assert window.engine_box.currentText() == "builtin"
    assert "choose Engine" in window.status_label.text()
    assert window.results.raw.toPlainText() == markdown  # the builtin parse still shown


def wheel(view, point: QPoint, steps: int, modifiers) -> None:
    event = QWheelEvent(
        QPointF(point),
        QPointF(view.viewport().mapToGlobal(point)),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), event)


def test_ctrl_wheel_zooms_at_the_mouse_and_the_wheel_scrolls(window, qtbot):
    window.resize(1200, 800)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    view = window.page_view
    view.fit()
    zoom = view.zoom
    point = QPoint(view.viewport().width() // 4, view.viewport().height() // 4)
    under = view.mapToScene(point)
    wheel(view, point, 2, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom == pytest.approx(zoom * 1.25**2)
    after = view.mapToScene(point)
    assert abs(after.x() - under.x()) < 2 and abs(after.y() - under.y()) < 2  # the point under the mouse stays
    scroll = view.verticalScrollBar().value()
    wheel(view, point, -1, Qt.KeyboardModifier.NoModifier)
    assert view.zoom == pytest.approx(zoom * 1.25**2) and view.verticalScrollBar().value() > scroll


def test_zoom_keys_keep_the_part_in_view(window, qtbot):
    window.resize(1200, 800)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    view = window.page_view
    view.zoom_by(3)
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum() // 3)
    centre = view.viewport().rect().center()
    before = view.mapToScene(centre)
    view.zoom_by(1.25)
    after = view.mapToScene(centre)
    assert abs(after.x() - before.x()) < 2 and abs(after.y() - before.y()) < 2


def test_details_show_the_details_at_once(window, qtbot):
    window.show_error("Could not read the file.", "Traceback (most recent call last):\n  ValueError: bad xref")
    assert window.banner.details_button.isVisible()
    window.banner.details_button.click()
    box = window.banner.details_dialog
    qtbot.waitUntil(box.isVisible, timeout=2000)
    text = box.findChild(QPlainTextEdit).toPlainText()
    assert "ValueError: bad xref" in text and "Could not read the file." not in text
    box.reject()


def test_export_with_no_folder_says_so_and_stays_open(window, qtbot):
    parsed_sample(window, qtbot)
    window.export_dialog()
    dialog = window.dialog
    dialog.folder.setText("  ")
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert dialog.isVisible() and dialog.problem.isVisible() and "Choose a folder" in dialog.problem.text()
    dialog.reject()


def test_exporting_again_asks_before_replacing(window, qtbot, tmp_path):
    parsed_sample(window, qtbot)
    out = tmp_path / "out"

    def export_via_dialog():
        window.export_dialog()
        dialog = window.dialog
        dialog.folder.setText(str(out))
        for key, box in dialog.format_boxes.items():
            box.setChecked(key == "md")
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)

    export_via_dialog()
    written = out / "sample.md"
    assert written.exists()
    written.write_text("my own notes", encoding="utf-8")
    export_via_dialog()
    box = window.tasks.overwrite_box
    assert box.isVisible() and "sample.md" in box.text()
    box.button(box.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert written.read_text(encoding="utf-8") == "my own notes"  # nothing replaced
    export_via_dialog()
    replace = next(b for b in window.tasks.overwrite_box.buttons() if b.text() == "Replace")
    replace.click()
    qtbot.waitUntil(lambda: written.read_text(encoding="utf-8") != "my own notes", timeout=TIMEOUT)
    assert "# How block diffusion writes" in written.read_text(encoding="utf-8")


def test_a_task_does_not_wait_behind_a_token_count(qtbot):
    """A quiet job (the prompt token count) under way gives way at once to the user's task: the Ask showed
    nothing, with Cancel greyed, while a big prompt was being counted."""
    import time

    from app.gui.worker import Job, Worker
    from inference.errors import CancelledError

    worker = Worker()
    started = []

    def counting(job):
        started.append("count")
        while not job.cancelled_requested:  # as the count does between pages
            time.sleep(0.005)
        raise CancelledError("superseded")

    count = worker.submit(Job("counting prompt tokens", counting, quiet=True))
    qtbot.waitUntil(lambda: started == ["count"], timeout=TIMEOUT)
    with qtbot.waitSignal(count.cancelled, timeout=TIMEOUT):
        task = worker.submit(Job("asking", lambda job: "answer"))
    with qtbot.waitSignal(task.succeeded, timeout=TIMEOUT) as result:
        pass
    assert result.args == ["answer"]
    qtbot.waitUntil(lambda: not worker.busy, timeout=TIMEOUT)
    worker.finish()


def test_the_token_count_comes_back_after_a_cancel(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    # an Ask that runs for seconds on any machine (every step of a long canvas: no adaptive stopping), so that the
    # count asked for meanwhile is still queued behind it when the test looks
    long = {"max_denoising_steps": 1000, "stability_threshold": None, "confidence_threshold": None}
    load_tiny(window, qtbot, max_new_tokens=256, **long)
    window.engine_box.setCurrentText("model")
    window.question.setText("What is block diffusion?")
    qtbot.waitUntil(lambda: "prompt tokens " in window.scope_label.text(), timeout=TIMEOUT)
    progress = []
    job = window.ask(window.question.text())
    job.progress.connect(lambda done, total, what: progress.append(what))
    window.question.setText("What is a canvas?")  # a count is asked for meanwhile: it queues behind the Ask
    qtbot.wait(window.tasks.count_timer.interval() + 200)
    assert window.worker.busy and "counting" in window.scope_label.text()
    window.cancel()  # cancels the Ask and the count queued behind it
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "counting" not in window.scope_label.text(), timeout=TIMEOUT)
    assert window.tasks.prompt_tokens and f"{window.tasks.prompt_tokens:,} prompt tokens" in window.scope_label.text()


def test_building_a_prompt_shows_its_pages_in_the_status_bar(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=32, max_denoising_steps=2)
    window.engine_box.setCurrentText("model")
    shown = []
    job = window.ask("What is block diffusion?")
    job.progress.connect(lambda done, total, what: shown.append((done, total, what)))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    pages = len(window.entries[str(SAMPLE.resolve())].document.pages)
    assert [w for _, _, w in shown if w.startswith("building the prompt")] == [
        f"building the prompt: page {i} of {pages}" for i in range(1, pages + 1)
    ]


def test_an_empty_answer_is_not_reported_as_an_answer(window):
    from inference.tasks import Answer

    window.tasks.say_answered(Answer(question="q", text="  \n", citations=[], kind="generated", engine="model"), 1)
    assert window.status_label.text() == "Empty answer." and "empty answer" in window.banner.label.text()
    assert window.banner.isVisible()
    window.tasks.say_answered(Answer(question="q", text="Canvases.", citations=[], kind="generated", engine="model"), 2)
    assert window.status_label.text() == "Answered from 2 document(s)."


def test_a_page_the_model_wrote_nothing_for_is_not_reported_as_parsed(window, qtbot):
    from tests.model_helpers import towards

    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_denoising_steps=2)
    loaded = window.model_engine.loaded
    towards(loaded.model, loaded.processor.tokenizer.eos_token_id)  # every page: end-of-sequence at once
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    entry = window.entries[window.current]
    assert entry.status == "partial"
    assert [e.message for e in entry.parsed.document.errors] == ["the model wrote nothing for this page"] * 2
    assert window.status_label.text() == "Parsed 1 document(s), 1 partial."
    assert window.banner.isVisible() and "page 1: the model wrote nothing" in window.banner.label.text()


def test_parsing_several_documents_skips_those_this_engine_parsed(window, qtbot, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Some notes about canvases.", encoding="utf-8")
    parsed_sample(window, qtbot)
    first = window.entries[str(SAMPLE.resolve())].parsed
    window.add_paths([str(notes)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.scope_box.setCurrentIndex(1)  # all documents, as select-all does
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.entries[str(SAMPLE.resolve())].parsed is first  # not parsed again
    assert window.entries[str(notes.resolve())].parsed is not None
    assert window.parse() is None and "Already parsed" in window.status_label.text()
    window.parse([str(SAMPLE.resolve())])  # Parse again, asked for by name
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.entries[str(SAMPLE.resolve())].parsed is not first


def test_the_model_dialog_checks_the_source_as_you_type_and_browses(window, qtbot, tmp_path):
    from app.gui.model_dialog import ModelDialog

    dialog = ModelDialog(window, ["owner/recent-model"], None)
    qtbot.addWidget(dialog)
    load = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert dialog.source.findText("owner/recent-model") >= 0  # the recent models are offered
    cases = [
        ("tiny-trained", True, "Built in"),
        ("", False, "Choose a model"),
        (str(tmp_path / "missing"), False, "No such folder"),
        (str(tmp_path), False, "no config.json"),
        ("google/diffusiongemma-26B-A4B-it", True, "Hugging Face id"),
        ("not a model", False, "Not a model"),
    ]
    for text, ok, said in cases:
        dialog.source.setCurrentText(text)
        assert load.isEnabled() == ok and said in dialog.source_check.text(), (text, dialog.source_check.text())
        assert dialog.source_check.isVisibleTo(dialog) != ok and said in dialog.source.toolTip()
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    dialog.source.setCurrentText(str(tmp_path))
    assert load.isEnabled() and "local model folder" in dialog.source_check.text()
    assert any(b.text() == "Browse\u2026" for b in dialog.findChildren(type(load)))


def test_an_old_error_does_not_stay_after_a_later_open(window, qtbot, tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    window.add_paths([str(bad)])
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert not window.banner.isVisible()


def test_the_rendered_view_follows_the_page(window, qtbot):
    window.resize(1200, 500)
    parsed_sample(window, qtbot)
    rendered = window.results.rendered
    window.page_view.show_page(2)
    cursor = rendered.textCursor()
    cursor.select(cursor.SelectionType.LineUnderCursor)
    assert "What the workbench does" in cursor.selectedText()  # page 2's heading, not page 1's text
    window.page_view.show_page(1)
    cursor = rendered.textCursor()
    cursor.select(cursor.SelectionType.LineUnderCursor)
    assert "How block diffusion writes" in cursor.selectedText()


def test_a_long_json_is_highlighted_on_the_lines_on_screen(window, qtbot):
    import json

    from app.gui.highlight import MAX_CHARS, show_text

    window.resize(1200, 800)
    results = window.results
    results.setCurrentWidget(results.json)
    pages = [
        {"page": n, "blocks": [{"kind": "paragraph", "text": "word " * 40, "order": i} for i in range(8)]}
        for n in range(1, 41)
    ]
    text = json.dumps({"pages": pages}, indent=1)
    assert len(text) > MAX_CHARS  # a 40-page document's JSON
    show_text(results.json, text, results.json_highlighter)
    qtbot.wait(20)
    first = results.json.extraSelections()
    assert first and all(s.format.foreground().color().isValid() for s in first)
    assert any(s.cursor.selectedText() == '"page"' for s in first)
    bar = results.json.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.wait(20)
    last = results.json.extraSelections()
    assert last and min(s.cursor.position() for s in last) > max(s.cursor.position() for s in first)
    show_text(results.json, '{"a": 1}', results.json_highlighter)  # short: highlighted whole, no selections
    assert results.json.extraSelections() == [] and results.json_highlighter.document() is results.json.document()


def test_the_extract_tab_never_shows_another_documents_values(window, qtbot, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Canvas: 7\n", encoding="utf-8")
    window.add_paths([str(SAMPLE), str(notes)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.doc_list.clearSelection()
    window.doc_list.item_for(str(notes.resolve())).setSelected(True)  # the scope: the notes alone
    window.engine_box.setCurrentText("builtin")
    window.extract({"type": "object", "properties": {"Canvas": {"type": "string"}}})
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.results.table.rowCount() == 1, window.tasks.extraction_scope
    assert window.tasks.extraction_scope == {str(notes.resolve())}, window.tasks.extraction_scope
    window.show_entry(str(SAMPLE.resolve()))
    assert window.results.table.rowCount() == 0 and "other documents" in window.results.extract.toPlainText()


def test_a_retrieval_that_matched_no_passage_is_not_reported_as_an_answer(window):
    from inference.documents import open_document
    from inference.tasks import BuiltinEngine

    engine = BuiltinEngine()
    doc = engine.parse(open_document(SAMPLE)).document
    none = engine.ask([doc], "zqxv wjkp")
    assert not none.citations
    window.tasks.say_answered(none, 2)
    assert window.status_label.text() == "No passage matched in 2 document(s)."
    window.tasks.say_answered(engine.ask([doc], "What is block diffusion?"), 1)
    assert window.status_label.text() == "Answered from 1 document(s)."
