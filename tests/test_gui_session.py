"""Sessions: closing the window and opening it again brings back the documents, every parse of each (per engine and
run), the answers and the extractions; File -> New session starts afresh; a session file that cannot be read is set
aside with a notice and never stops the window from opening. Offscreen, real widgets, the real worker, the builtin
engine and the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication

from app.gui import SAMPLE
from app.gui.main_window import MainWindow
from app.gui.runs import runs_of
from app.gui.session import SESSION_FILE
from inference.session_file import from_json
from tests.qt_helpers import TIMEOUT, delete_now, ingested, load_tiny


def close(window, qtbot) -> None:
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible() and not window.worker.thread.isRunning(), timeout=TIMEOUT)
    delete_now(window)


def reopen(qtbot) -> MainWindow:
    window = MainWindow()
    window.show()
    qtbot.waitUntil(lambda: not window.worker.busy and ingested(window), timeout=TIMEOUT)
    return window


def session_path(window) -> Path:
    return Path(window.settings.fileName()).with_name(SESSION_FILE)


def test_reopening_the_window_brings_back_documents_runs_answers_and_extractions(qtbot, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("Invoice number: 4711\nTotal: 99.50 EUR\n\nThe canvas settles step by step.\n", encoding="utf-8")
    first = MainWindow()
    first.show()
    first.add_paths([str(SAMPLE), str(text)])
    qtbot.waitUntil(lambda: ingested(first), timeout=TIMEOUT)
    first.scope_box.setCurrentIndex(1)  # all documents
    first.parse()
    qtbot.waitUntil(lambda: not first.worker.busy, timeout=TIMEOUT)
    load_tiny(first, qtbot, max_new_tokens=64, max_denoising_steps=2)
    sample = str(Path(SAMPLE).resolve())
    first.parse([sample])  # a second run of the sample, with the model
    qtbot.waitUntil(lambda: not first.worker.busy, timeout=TIMEOUT)
    first.engine_box.setCurrentText("builtin")
    first.ask("What does the canvas do?")
    qtbot.waitUntil(lambda: not first.worker.busy, timeout=TIMEOUT)
    first.extract({"type": "object", "properties": {"total": {"type": "string"}}})
    qtbot.waitUntil(lambda: not first.worker.busy, timeout=TIMEOUT)
    before = {p: [(r.engine, r.parsed.markdown) for r in runs_of(e)] for p, e in first.entries.items()}
    answers = [(docs, a.question, a.text) for docs, a in first.tasks.answer_log]
    values = [x.value for x in first.tasks.extractions]
    assert len(before[sample]) == 2 and answers and values
    close(first, qtbot)
    assert session_path(first).is_file()

    second = reopen(qtbot)
    try:
        assert list(second.entries) == list(before)
        assert {p: [(r.engine, r.parsed.markdown) for r in runs_of(e)] for p, e in second.entries.items()} == before
        assert all(e.status == "parsed" and e.document is not None for e in second.entries.values())
        assert [(docs, a.question, a.text) for docs, a in second.tasks.answer_log] == answers
        assert [x.value for x in second.tasks.extractions] == values
        assert "What does the canvas do?" in second.results.answer.toPlainText()  # the conversation, shown
        assert "Reopened the saved session: 2 document(s), 1 answer(s), 1 extraction(s)" in second.status_label.text()
        second.sessions.new_session()
        assert not second.entries and not second.tasks.answer_log and not second.tasks.extractions
    finally:
        close(second, qtbot)
    third = MainWindow()  # the new session, empty, is what was saved
    try:
        third.show()
        qtbot.waitUntil(lambda: not third.worker.busy, timeout=TIMEOUT)
        assert not third.entries and not third.tasks.answer_log
    finally:
        close(third, qtbot)


def test_closing_before_the_last_session_is_back_keeps_it(qtbot, tmp_path):
    text = tmp_path / "kept.txt"
    text.write_text("A line to keep.\n", encoding="utf-8")
    first = MainWindow()
    first.show()
    first.add_paths([str(text)])
    qtbot.waitUntil(lambda: ingested(first), timeout=TIMEOUT)
    close(first, qtbot)
    saved = session_path(first).read_text(encoding="utf-8")
    quick = MainWindow()  # closed at once: the session is still being read
    quick.show()
    close(quick, qtbot)
    assert session_path(quick).read_text(encoding="utf-8") == saved
    again = reopen(qtbot)
    try:
        assert list(again.entries) == [str(text.resolve())]
    finally:
        close(again, qtbot)


def test_a_corrupt_session_file_is_set_aside_and_the_window_opens(qtbot):
    probe = MainWindow(session=False)
    path = session_path(probe)
    delete_now(probe)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": "diffusion-workbench-session", "version": 1, "documents": [{"pa', encoding="utf-8")
    window = MainWindow()
    try:
        window.show()
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
        assert window.isVisible() and not window.entries
        assert window.banner.isVisible() and "could not be read" in window.banner.label.text()
        aside = list(path.parent.glob(f"{SESSION_FILE}.unreadable-*"))
        assert len(aside) == 1 and not path.exists()
        assert "set aside as " + aside[0].name in window.banner.label.text()
    finally:
        close(window, qtbot)
    QApplication.processEvents()


def test_a_session_round_trips_through_json(qtbot, tmp_path):
    window = MainWindow(session=False)
    try:
        window.show()
        window.add_paths([str(SAMPLE)])
        qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
        window.parse()
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
        state = window.sessions.state()
        from inference.session_file import to_json

        again = from_json(to_json(state))
        assert json.loads(to_json(again)) | {"saved_at": 0} == json.loads(to_json(state)) | {"saved_at": 0}
    finally:
        close(window, qtbot)
