"""OCR review: a scan parsed with real Tesseract shows its words' boxes coloured by confidence; clicking a word and
correcting it changes the parse, so the Markdown, the exports, the builtin Ask and the reopened session carry the
correction; the document list counts the unsure words per page. Offscreen, real widgets, real mouse clicks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("tesserocr")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.gui.main_window import MainWindow
from app.gui.ocr_review import SURE, UNKNOWN, UNSURE, colour_of
from inference.ocr.review import OcrWord, page_words, unsure_counts
from tests.helpers import needs_shared, shared_path
from tests.qt_helpers import TIMEOUT, delete_now, ingested

SCAN = ("data", "ocrmypdf", "typewriter.png")


def parsed_scan(window, qtbot) -> None:
    window.add_paths([str(shared_path(*SCAN))])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=3 * TIMEOUT)


def test_word_colours_never_call_an_unmeasured_word_confident():
    def word(conf, edited=None):
        return OcrWord(1, 0, 0, "w", (0, 0, 1, 1), conf, edited)

    assert colour_of(word(None)) == UNKNOWN
    assert colour_of(word(20.0)) == UNSURE and word(20.0).unsure
    assert colour_of(word(96.0)) == SURE and not word(96.0).unsure
    assert not word(20.0, edited="x").unsure  # corrected: checked


@needs_shared(*SCAN)
def test_ocr_words_keep_their_boxes_and_tesseract_confidences(window, qtbot):
    parsed_scan(window, qtbot)
    entry = next(iter(window.entries.values()))
    words = page_words(entry.parsed.document.pages[0])
    assert len(words) > 50
    assert all(w.confidence is not None and 0 <= w.confidence <= 100 for w in words)
    assert all(w.box[0] < w.box[2] and w.box[1] < w.box[3] for w in words)
    assert any(w.unsure for w in words) and any(w.confidence >= 90 for w in words)


@needs_shared(*SCAN)
def test_clicking_a_word_and_correcting_it_reaches_markdown_exports_ask_and_the_session(window, qtbot, tmp_path):
    parsed_scan(window, qtbot)
    entry = next(iter(window.entries.values()))
    review = window.ocr_review
    review.toggle_action().trigger()
    assert review.isVisible()
    words = review.words
    unsure = [w for w in words if w.unsure]
    assert f"{len(words)} OCR words, {len(unsure)} unsure" in review.header.text()
    label = window.doc_list.item_for(entry.path).text()
    assert f"unsure words: p. 1: {len(unsure)}" in label
    target = next(w for w in unsure if re.fullmatch(r"[A-Za-z]{4,}\W*", w.text))
    box = review.view.boxes[(target.block, target.index)]
    assert box.pen().color() == UNSURE
    QTest.mouseClick(
        review.view.viewport(), Qt.MouseButton.LeftButton, pos=review.view.centre_of(target.block, target.index)
    )
    assert review.word == target and review.edit.text() == target.text
    review.edit.setText("Zwiebelkuchen")
    QTest.keyClick(review.edit, Qt.Key.Key_Return)
    assert "Zwiebelkuchen" in entry.parsed.markdown and "Zwiebelkuchen" in window.results.raw.toPlainText()
    assert f"{len(unsure) - 1} unsure" in review.header.text() and "1 corrected" in review.header.text()
    assert unsure_counts(entry.parsed.document) == ({1: len(unsure) - 1} if len(unsure) > 1 else {})
    assert review.view.boxes[(target.block, target.index)].pen().color() != UNSURE
    # exports
    window.export_to(tmp_path, "md,json,txt")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    stem = Path(entry.path).stem
    for suffix in ("md", "json", "txt"):
        assert "Zwiebelkuchen" in (tmp_path / f"{stem}.{suffix}").read_text(encoding="utf-8")
    # the builtin Ask reads the corrected blocks
    window.ask("Zwiebelkuchen")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    answer = window.tasks.answer_log[-1][1]
    assert answer.citations and "Zwiebelkuchen" in answer.citations[0].text
    # the session keeps it
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible() and not window.worker.busy, timeout=TIMEOUT)
    again = MainWindow()
    try:
        again.show()
        qtbot.waitUntil(lambda: not again.worker.busy and ingested(again), timeout=TIMEOUT)
        kept = again.entries[entry.path].parsed
        assert "Zwiebelkuchen" in kept.markdown
        assert any(w.edited_from == target.text for w in page_words(kept.document.pages[0]))
    finally:
        again.close()
        qtbot.waitUntil(lambda: not again.isVisible() and not again.worker.thread.isRunning(), timeout=TIMEOUT)
        delete_now(again)
