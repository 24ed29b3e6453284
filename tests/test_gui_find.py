"""Find (Ctrl+F, F3, Shift+F3): the document's blocks that match, across pages, filled on the page and selected in
the results; the Answer tab's text. Offscreen, real widgets, the sample document."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QKeySequence
from PySide6.QtTest import QTest

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, ingested, parsed_sample


def filled(view) -> list[int]:
    return [i.data(0) for i in view.outline_items if i.brush() != QBrush()]


def test_find_goes_through_the_matching_blocks_across_pages(window, qtbot):
    parsed_sample(window, qtbot)
    window.activateWindow()
    QTest.keySequence(window, QKeySequence("Ctrl+F"))
    assert window.find_bar.isVisible()
    QTest.keyClicks(window.find_bar.edit, "workbench")
    document = window.entries[str(SAMPLE.resolve())].parsed.document
    expected = [
        (p.number, b.order)
        for p in document.pages
        for b in sorted(p.blocks, key=lambda b: b.order)
        if "workbench" in b.text.lower()
    ]
    assert len({page for page, _ in expected}) == 2  # the word is on both pages
    assert any(match in window.results.spans for match in expected)
    assert window.finder.matches == expected
    seen = []
    for _ in range(len(expected)):
        page, order = expected[len(seen)]
        assert window.page_view.page == page and window.page_view.highlighted == order
        assert order in filled(window.page_view)
        if (page, order) in window.results.spans:  # the block in the results (running headers are left out there)
            assert "workbench" in window.results.raw.textCursor().selectedText().lower()
        assert window.find_bar.count.text().startswith(f"{len(seen) + 1} of {len(expected)}")
        seen.append((page, order))
        QTest.keyClick(window, Qt.Key.Key_F3)
    assert (window.page_view.page, window.page_view.highlighted) == expected[0]  # wrapped around
    QTest.keySequence(window, QKeySequence("Shift+F3"))
    assert (window.page_view.page, window.page_view.highlighted) == expected[-1]


def test_find_says_when_nothing_matches_and_follows_the_document_shown(window, qtbot, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("A page of notes about canvases.\n\nNothing else.", encoding="utf-8")
    window.add_paths([str(SAMPLE), str(other)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.show_entry(str(SAMPLE.resolve()))
    window.finder.open()
    window.find_bar.edit.setText("zebra")
    assert window.finder.matches == [] and window.find_bar.count.text() == "no match"
    window.find_bar.edit.setText("notes")
    assert window.finder.matches == []
    window.show_entry(str(other.resolve()))
    window.finder.step(1)  # another document: searched again
    assert window.finder.matches and window.finder.matches[0][0] == 1


def answered(window, qtbot, question: str) -> None:
    """The sample asked ``question`` with the builtin engine, the Answer tab shown."""
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    window.ask(question)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    window.results.setCurrentWidget(window.results.answer)


def test_find_in_the_answers(window, qtbot):
    answered(window, qtbot, "What is block diffusion?")
    assert "**" not in window.results.answer.toPlainText()  # the quote's matched terms are shown bold, not marked
    window.finder.open()
    window.find_bar.edit.setText("diffusion")
    window.finder.step(1)
    assert window.results.answer.textCursor().selectedText().lower() == "diffusion"


def test_a_word_the_answers_lack_is_found_in_the_document(window, qtbot):
    """With the Answer tab shown, a word that no answer holds is still found: on the page, the answers staying."""
    answered(window, qtbot, "What does the builtin engine do without weights?")
    assert "canvases" not in window.results.answer.toPlainText().lower()
    window.finder.open()
    window.find_bar.edit.setText("canvases")
    window.finder.step(1)
    assert window.finder.matches and "in the document" in window.find_bar.count.text()
    assert window.results.currentWidget() is window.results.answer
    assert window.page_view.page == window.finder.matches[window.finder.index][0]
    window.find_bar.edit.setText("zzqqxx")
    window.finder.search()
    assert window.find_bar.count.text() == "no match in the answers or the document"
