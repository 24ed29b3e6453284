"""The window at small sizes (800 x 600 and the 760 x 480 minimum): every control reachable, nothing cut. Offscreen,
real widgets, the sample document."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRect
from PySide6.QtWidgets import QLabel

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, ingested


def inside(widget, container) -> bool:
    top_left = widget.mapTo(container, widget.rect().topLeft())
    return container.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("size", [(800, 600), (760, 480)])
def test_small_windows_keep_every_control_reachable(window, qtbot, size):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    window.scope_label.setText("sample.pdf \u00b7 12,345 prompt tokens (follow-up: new tokens) ")
    qtbot.wait(50)
    bar = window.toolbar
    for action in bar.actions():
        if action.isSeparator():
            continue
        widget = bar.widgetForAction(action)
        assert widget is not None and widget.isVisible() and inside(widget, bar), action.text()  # not in "»"
    cleaned = window.cleaned_box
    assert cleaned.width() >= cleaned.sizeHint().width()  # "Cleaned", not "Clean"
    header = next(w for w in window.panel.findChildren(QLabel) if w.text() == "<b>Denoising</b>")
    assert header.isVisible() and inside(header, window.panel) and header.height() >= header.sizeHint().height()
    tabs = window.results.tabBar()
    assert all(tabs.tabRect(i).width() >= tabs.fontMetrics().horizontalAdvance(tabs.tabText(i)) for i in range(5))


def test_a_text_document_has_a_thumbnail_of_its_first_lines(window, qtbot, tmp_path):
    import numpy as np

    text = tmp_path / "notes.txt"
    text.write_text("Some notes.\nA second line of them.\n", encoding="utf-8")
    window.add_paths([str(text)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    entry = next(iter(window.entries.values()))
    assert entry.thumbnail is not None and entry.thumbnail.size == (96, 128)  # the size of a page's thumbnail
    sheet = np.asarray(entry.thumbnail.convert("L"))[3:-3, 3:-3]
    assert (sheet < 128).sum() > 50  # its lines drawn on the sheet, not a blank
    assert not window.doc_list.item(0).icon().isNull()


def cell_fits(table, row: int, column: int) -> bool:
    """The cell's text fits on one line in the room the style leaves for it (its margins taken off), with a few
    pixels to spare; a cell that only just fits wraps on another font or scale."""
    from PySide6.QtWidgets import QStyle

    margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1
    text = table.item(row, column).text()
    return table.columnWidth(column) - 2 * margin >= table.fontMetrics().horizontalAdvance(text) + 4


def test_the_extraction_page_and_field_columns_fit_their_text(window, qtbot):
    from inference.tasks.base import Citation, Extraction

    window.resize(800, 600)
    where = Citation("/tmp/invoice.pdf", 1, "1", "Invoice 1234")
    extraction = Extraction(
        value={"invoice_number": "1234", "total": "12.00"},
        sources={"/invoice_number": where, "/total": where},
        valid=True,
        errors=[],
        kind="pinned",
        engine="model",
    )
    window.results.show_extraction(extraction)
    table = window.results.table
    assert table.item(0, 2).text() == "invoice.pdf, p. 1" and not table.wordWrap()
    assert all(cell_fits(table, row, column) for row in range(2) for column in (0, 2))


def test_the_schema_field_column_fits_field_names(qtbot):
    from app.gui.schema_editor import NAME, SchemaEditor

    editor = SchemaEditor()
    qtbot.addWidget(editor)
    editor.set_schema({"type": "object", "properties": {"invoice_number": {"type": "string"}}})
    assert cell_fits(editor.table, 0, NAME)
    editor.table.item(0, NAME).setText("customer_billing_address_line")  # typed in: the column follows
    assert cell_fits(editor.table, 0, NAME)


def test_a_new_window_fits_the_screen(qtbot):
    from PySide6.QtGui import QGuiApplication

    from app.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    room = QGuiApplication.primaryScreen().availableGeometry()
    assert room.width() < 1400 or room.height() < 860  # the offscreen screen is smaller than the default size
    assert window.width() <= max(room.width(), 760) and window.height() <= max(room.height(), 480)
    window.worker.finish()
