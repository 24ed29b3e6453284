"""The window exports a searchable PDF: the Export dialog offers it and the export writes it."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import pymupdf

from app.gui import SAMPLE
from app.gui.export_dialog import ExportChoice, ExportDialog
from tests.qt_helpers import TIMEOUT, ingested


def test_export_dialog_offers_the_searchable_pdf(qtbot):
    dialog = ExportDialog(None, [(str(SAMPLE), "sample.pdf")], "/tmp", "md,pdf", 0, 0)
    qtbot.addWidget(dialog)
    assert dialog.format_boxes["pdf"].text() == "Searchable PDF"
    assert dialog.format_boxes["pdf"].isChecked() and not dialog.format_boxes["json"].isChecked()


@pytest.mark.slow
def test_window_exports_a_searchable_pdf_of_a_parsed_document(window, qtbot, tmp_path):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    out = tmp_path / "out"
    window.export_to(ExportChoice(str(out), [str(SAMPLE.resolve())], ("pdf",), False, False))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    (written,) = list(out.glob("*.pdf"))
    original, exported = pymupdf.open(SAMPLE), pymupdf.open(written)
    assert exported.page_count == original.page_count
    assert exported[0].get_text().split()[:20] == original[0].get_text().split()[:20]
