"""Citations name the document and the page as printed on it (PDF page labels), in the answer, the extraction
table and the exported answers. Offscreen, real widgets, PDFs written with PyMuPDF."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from tests.qt_helpers import TIMEOUT, ingested


def labelled_pdf(path, words: str):
    """Two pages printed as "iv" and "v" (a front matter numbered in roman), each about ``words``."""
    import pymupdf as fitz

    doc = fitz.open()
    for n in range(2):
        page = doc.new_page()
        page.insert_text((72, 100), f"Chapter {n + 1}. {words} are explained on this page in detail.", fontsize=11)
    doc.set_page_labels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 4}])
    doc.save(str(path))
    return path


def test_answers_over_several_documents_name_each_document_and_its_printed_page(window, qtbot, tmp_path):
    from inference.exports import answer_markdown

    first = labelled_pdf(tmp_path / "manual.pdf", "Canvases and denoising steps")
    second = labelled_pdf(tmp_path / "notes.pdf", "Canvases and entropy bounds")
    window.add_paths([str(first), str(second)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.scope_box.setCurrentIndex(1)
    window.engine_box.setCurrentText("builtin")
    window.ask("What are canvases?")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    answer = window.results.thread[-1]
    assert {c.label for c in answer.citations} <= {"iv", "v"} and answer.citations
    shown = window.results.answer.toPlainText()
    for citation in answer.citations:
        place = f"{citation.document.rsplit('/', 1)[-1]}, p. {citation.label} (page {citation.page} of the file)"
        assert citation.where == place and place in shown
    assert "manual.pdf" in shown and "notes.pdf" in shown
    assert "- page " not in shown and "\npage 1:" not in shown  # no passage without its document
    exported = answer_markdown(answer)
    assert all(c.where in exported for c in answer.citations)


def test_a_page_whose_label_is_its_number_is_cited_once(window, qtbot, tmp_path):
    from inference.tasks.base import Citation

    plain = Citation(document=str(tmp_path / "a.pdf"), page=3, label="3", text="x")
    assert plain.where == "a.pdf, p. 3"
    unlabelled = Citation(document=str(tmp_path / "a.pdf"), page=3, label="", text="x")
    assert unlabelled.where == "a.pdf, p. 3"
