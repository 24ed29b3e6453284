"""Defects found by a user trial of the window under Xvfb: nothing lost without asking, the queue and the list say
what is so, new and cancelled answers stay in view, the side panels leave each other room. Offscreen, real widgets
and worker, the builtin engine; each test drives the window's public actions."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QAction

from tests.qt_helpers import TIMEOUT, parsed_sample


def idle(win) -> bool:
    return not win.worker.busy


def menu_action(win, text: str) -> QAction:
    return next(a for a in win.findChildren(QAction) if a.text() == text)


def test_new_session_asks_first_and_cancel_keeps_everything(window, qtbot):
    parsed_sample(window, qtbot)
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert window.entries and window.tasks.answer_log
    new_session = menu_action(window, "&New session")
    new_session.trigger()
    box = window.sessions.new_session_box
    assert box is not None and box.isVisible()
    assert "Close 1 document and 1 answer?" in box.text() and "saved session is replaced" in box.text()
    assert box.defaultButton() is box.button(box.StandardButton.Cancel)
    box.button(box.StandardButton.Cancel).click()
    assert window.entries and window.tasks.answer_log  # nothing closed
    assert "nothing was closed" in window.status_label.text()
    new_session.trigger()
    start = next(b for b in window.sessions.new_session_box.buttons() if b.text() == "New session")
    start.click()
    assert not window.entries and not window.tasks.answer_log
    new_session.trigger()  # nothing left to lose: no question
    assert window.sessions.new_session_box is None


def test_a_task_started_with_nothing_before_it_is_listed_as_running(window, qtbot):
    from app.gui import SAMPLE
    from tests.qt_helpers import ingested

    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window) and idle(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    queue = window.task_queue
    queue.panel.show()
    window.parse_action.trigger()
    assert window.worker.current is not None
    assert [state for _, state in queue.panel.rows()] == ["running"]
    assert queue.button.text() == "1 task"  # never "1 task (1 queued)" for the one running
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)


def test_clicking_a_citation_to_another_document_makes_its_row_current(window, qtbot, tmp_path):
    from PySide6.QtCore import QUrl

    from tests.qt_helpers import ingested
    from tests.test_gui_window_defects import pdf_of_lines

    first = pdf_of_lines(tmp_path / "harbour.pdf", [["The harbour opens at six."]])
    second = pdf_of_lines(tmp_path / "library.pdf", [["The library opens at nine."]])
    window.add_paths([str(first), str(second)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.doc_list.setCurrentItem(window.doc_list.item_for(str(first.resolve())))  # the first shown and selected
    window.scope_box.setCurrentIndex(1)  # All documents
    window.engine_box.setCurrentText("builtin")
    window.ask("When does the library open?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    answer = window.results.thread[-1]
    target = next(c for c in answer.citations if c.document.endswith("library.pdf"))
    window.results.answer.anchorClicked.emit(QUrl(f"cite:{window.results._links.index(target)}"))
    row = window.doc_list.item_for(str(second.resolve()))
    assert window.current == str(second.resolve())
    assert window.doc_list.currentItem() is row
    assert window.doc_list.selected_paths() == [str(second.resolve())]  # the old row is no longer highlighted
    assert window.scope_box.currentIndex() == 1 and len(window.tasks.scope_entries()) == 2  # the scope stays
    assert row.background().style() != row.background().style().NoBrush  # marked as the document shown


def test_a_new_answer_is_scrolled_into_view_from_its_start(window, qtbot):
    from PySide6.QtGui import QTextDocument

    parsed_sample(window, qtbot)
    window.resize(900, 600)
    questions = ["What is block diffusion?", "What does the canvas do?", "How are tokens accepted?", "Why steps?"]
    view = window.results.answer
    for question in questions:
        window.ask(question)
        qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
        assert window.results.currentWidget() is view
        start = view.document().find(question, view.document().characterCount(), QTextDocument.FindFlag.FindBackward)
        assert not start.isNull()
        top = view.cursorRect(start).top()
        assert 0 <= top < view.viewport().height(), (question, top)
    assert view.verticalScrollBar().value() > 0  # the thread is longer than the pane: it did scroll


def test_a_question_cancelled_with_esc_stays_marked_and_the_notice_moves_nothing(window, qtbot):
    from PySide6.QtCore import Qt

    from app.gui import SAMPLE
    from inference.runtime.events import CanvasCommitted, DenoisingStep
    from tests.qt_helpers import ingested, load_tiny

    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window) and idle(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=256)
    window.resize(1200, 800)
    qtbot.wait(50)
    panes = window.split.geometry()
    question = "What is block diffusion?"
    job = window.ask(question)
    committed = []

    def on_event(event):  # on the worker thread: the run is stopped before its next step, never after it ends
        if isinstance(event, CanvasCommitted):
            committed.append(event)
        if isinstance(event, DenoisingStep) and (committed or event.step >= 2):
            job.cancel()  # what Esc (the Cancel action) does to the running job

    job.event.connect(on_event, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    kept = window.results.thread[-1]
    assert kept.question == question and "Cancelled" in kept.text
    if committed and committed[0].texts[0].strip():  # the partial text it had
        assert kept.text.startswith(committed[0].texts[0].strip()[:10])
    assert all(a is not kept for _, a in window.tasks.answer_log)  # shown, but no answer to export or save
    assert "Cancelled" in window.results.answer.toPlainText()
    assert window.banner.isVisible() and "Cancelled" in window.banner.label.text()
    assert window.split.geometry() == panes  # the notice lies over the panes, it does not push them down


def test_the_task_queue_leaves_the_ocr_review_its_height(window, qtbot):
    window.resize(1400, 860)
    window.task_queue.toggle_action().trigger()  # the queue first, as in the trial
    qtbot.waitUntil(lambda: window.task_queue.panel.isVisible(), timeout=TIMEOUT)
    qtbot.wait(50)
    window.ocr_review.toggle_action().trigger()
    qtbot.waitUntil(lambda: window.ocr_review.isVisible() and window.task_queue.panel.isVisible(), timeout=TIMEOUT)
    qtbot.wait(50)
    assert window.ocr_review.view.height() >= 300, window.ocr_review.view.height()
    assert window.task_queue.panel.isVisible() and window.task_queue.panel.height() >= 80
