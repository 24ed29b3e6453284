"""Shift+drag a rectangle on the page: the words inside it are copied (the PDF's text layer, or the parse's OCR
blocks). Offscreen, real widgets, real mouse events, the sample PDF and a scanned image."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, ingested


def drag_over(view, box, shift=True) -> None:
    """Press at the top-left of ``box`` (page points), release at its bottom-right, as a user drags."""
    kx, ky = view.scale_to_page
    a = view.mapFromScene(box[0] / kx, box[1] / ky)
    b = view.mapFromScene(box[2] / kx, box[3] / ky)
    modifiers = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, modifiers, a)
    QTest.mouseMove(view.viewport(), QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(view.viewport(), b)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, modifiers, b)


def test_shift_drag_copies_the_words_of_the_text_layer_inside(window, qtbot):
    window.resize(1200, 800)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    view = window.page_view
    heading = next(b for b in view.blocks if b.text == "How block diffusion writes")
    x0, y0, x1, y1 = heading.bbox
    QGuiApplication.clipboard().setText("")
    drag_over(view, (x0 - 2, y0 - 2, (x0 + x1) / 2, y1 + 2))  # the left half of the heading
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() != "", timeout=TIMEOUT)
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("How block") and "writes" not in copied  # the words inside, not the whole block
    assert "Copied" in window.status_label.text()


def test_a_plain_drag_still_pans_and_copies_nothing(window, qtbot):
    window.resize(1200, 800)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    seen = []
    window.page_view.area_selected.connect(lambda *a: seen.append(a))
    drag_over(window.page_view, (100, 100, 300, 200), shift=False)
    assert seen == []


def test_words_in_falls_back_to_the_parse_blocks(tmp_path):
    from app.gui.selection import words_in
    from inference.documents import open_document

    document = open_document(SAMPLE)
    document.pages[0].text_layer = "none"  # as a scan: only the (parse's) blocks hold text
    heading = next(b for b in document.pages[0].blocks if b.text == "How block diffusion writes")
    x0, y0, x1, y1 = heading.bbox
    assert words_in(document, None, 1, (x0 - 1, y0 - 1, x1 + 1, y1 + 1)) == "How block diffusion writes"
    assert words_in(document, None, 1, (0, 0, 1, 1)) == ""


def _skewed_scan(path) -> None:
    """A scanned page: three lines of text, turned 4 degrees and set on a wider margin (cleaning crops and levels)."""
    import io

    import pymupdf
    from PIL import Image

    drawn = pymupdf.open()
    page = drawn.new_page(width=400, height=300)
    for n, line in enumerate(("Canvases are denoised", "step by step until", "every token is stable")):
        page.insert_text((60, 110 + 40 * n), line, fontsize=20)
    pix = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples).rotate(4, expand=True, fillcolor=255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    scan = pymupdf.open()
    scan.new_page(width=400, height=300).insert_image(pymupdf.Rect(0, 0, 400, 300), stream=buffer.getvalue())
    scan.save(path)


def test_the_cleaned_page_outlines_the_blocks_where_they_sit_on_it(window, qtbot, tmp_path):
    import numpy as np
    from PySide6.QtWidgets import QApplication, QGraphicsPixmapItem

    _skewed_scan(tmp_path / "skewed.pdf")
    window.add_paths([str(tmp_path / "skewed.pdf")])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    view = window.page_view
    blocks = [b for b in view.blocks if b.bbox[2] > b.bbox[0]]
    assert blocks and len(view.outline_items) == len(blocks)
    window.cleaned_box.setChecked(True)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    QApplication.processEvents()
    assert len(view.outline_items) == len(blocks)  # outlined as on the page, clickable the same way
    pixmap = next(i for i in view.scene().items() if isinstance(i, QGraphicsPixmapItem))
    image = pixmap.pixmap().toImage().convertToFormat(pixmap.pixmap().toImage().Format.Format_Grayscale8)
    ink = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[:, : image.width()]
    ys, xs = np.nonzero(ink < 100)
    scale = pixmap.scale()
    inside = np.zeros(len(xs), bool)
    for item in view.outline_items:
        r = item.rect()
        in_x = (xs * scale >= r.left() - 2) & (xs * scale <= r.right() + 2)
        inside |= in_x & (ys * scale >= r.top() - 2) & (ys * scale <= r.bottom() + 2)
    assert inside.mean() > 0.9, inside.mean()  # the text of the cleaned page lies in the outlines
