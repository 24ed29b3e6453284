"""The window takes Office files and web pages like any other document: dropped, listed, parsed, offered by Open."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("docx")

import docx
from PySide6.QtWidgets import QFileDialog

from tests.qt_helpers import TIMEOUT, drop, ingested


def test_dropped_word_and_html_files_are_listed_and_parsed(window, qtbot, tmp_path):
    word = tmp_path / "letter.docx"
    d = docx.Document()
    d.add_heading("Dear reader", 1)
    d.add_paragraph("The invoice total is 4.65 EUR.")
    d.save(word)
    page = tmp_path / "page.html"
    page.write_bytes('<html><meta charset="windows-1252"><h1>Caf\xe9</h1><p>Open daily.</p></html>'.encode("cp1252"))
    drop(window, [word, page])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert [window.entries[str(p.resolve())].status for p in (word, page)] == ["ready", "ready"]
    window.doc_list.setCurrentRow(0)
    window.engine_box.setCurrentText("builtin")
    assert window.parse() is not None
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    text = window.results.raw.toPlainText()
    assert "# Dear reader" in text and "4.65 EUR" in text


def test_the_open_dialog_offers_office_web_and_photo_files(window, monkeypatch):
    offered = []

    def ask(_parent, _title, _folder, filters):
        offered.append(filters)
        return [], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(ask))
    window.open_dialog()
    documents = offered[0].split(";;")[0]
    for pattern in ("*.pdf", "*.docx", "*.pptx", "*.xlsx", "*.html", "*.epub", "*.heic", "*.avif", "*.md", "*.png"):
        assert pattern in documents
