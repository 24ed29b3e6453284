"""Selecting text on the page image: Shift+drag a rectangle, and the words inside it are copied.

The words come from the PDF's text layer (PyMuPDF's words with their boxes) or, for scans, images and pages without
a text layer, from the parse's blocks (OCR), a block counting when its centre lies in the rectangle. Reading the
words happens on a background thread; the clipboard is set on the UI thread.
"""

from __future__ import annotations

from typing import Any

Box = tuple[float, float, float, float]


def inside(box: Box, area: Box) -> bool:
    """Whether the centre of ``box`` lies in ``area`` (both x0, y0, x1, y1 in page points)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]


def pdf_words(path: str, number: int) -> list[tuple[Box, str]]:
    """The text layer's words of page ``number`` (1-based) in reading order, each with its box."""
    import pymupdf

    with pymupdf.open(path) as doc:
        words = doc[number - 1].get_text("words", sort=True)
    return [((w[0], w[1], w[2], w[3]), w[4]) for w in words]


def words_in(document: Any, layout: Any, number: int, area: Box) -> str:
    """The text inside ``area`` of page ``number``: the text layer's words for a PDF page that has one, else the
    blocks of ``layout`` (the parse: OCR) or of ``document`` whose centres fall inside."""
    page = document.pages[number - 1]
    if document.kind == "pdf" and page.has_text_layer:
        lines: list[str] = []
        last_y = None
        for box, word in pdf_words(document.source, number):
            if not inside(box, area):
                continue
            if last_y is not None and abs(box[1] - last_y) > (box[3] - box[1]) / 2:
                lines.append("\n")
            elif lines:
                lines.append(" ")
            lines.append(word)
            last_y = box[1]
        return "".join(lines)
    source = (layout or document).pages[number - 1]
    blocks = sorted(source.blocks, key=lambda b: b.order)
    return "\n\n".join(b.text for b in blocks if b.text and inside(b.bbox, area))


class PageSelection:
    """The window's side: a selected area's text read on a background thread, then put on the clipboard."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.text = ""  # the text copied last
        window.page_view.area_selected.connect(self.copy_area)

    def copy_area(self, number: int, area: Box) -> None:
        entry = self.window.entries.get(self.window.current)
        if entry is None or entry.document is None:
            return
        document = entry.document
        layout = entry.parsed.document if entry.parsed is not None else None
        self.window.status_label.setText(f"Reading the words on page {number}\u2026")
        from app.gui.worker import call_detached

        call_detached(self.window, "reading the area", lambda: words_in(document, layout, number, area), self._copied)

    def _copied(self, text: Any, message: str) -> None:
        from PySide6.QtGui import QGuiApplication

        if message:
            self.window.status_label.setText(f"Nothing copied: {message}")
            return
        self.text = text or ""
        if not self.text.strip():
            self.window.status_label.setText("No text in the selected area.")
            return
        QGuiApplication.clipboard().setText(self.text)
        words = len(self.text.split())
        self.window.status_label.setText(f"Copied {words} word(s) from the page (Shift+drag selects).")
