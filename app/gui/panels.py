"""The window's panels: document list, page viewer, results. They show what they are given; no document logic."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPen, QPixmap, QTextCursor
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QTabWidget,
    QTextBrowser,
)

STATUS_COLOURS = {"queued": "#888888", "ingesting": "#c08a00", "done": "#2e8b57", "partial": "#d2691e",
                  "failed": "#c0392b", "parsing": "#2a7ab8"}


@dataclass
class DocEntry:
    """One dropped file and what the window knows about it."""

    path: str
    status: str = "queued"
    document: Any = None  # inference.documents.Document
    parsed: Any = None  # inference.tasks.ParseResult
    message: str = ""
    thumbnail: Any = None  # PIL image
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        from pathlib import Path

        return Path(self.path).name


def pil_to_qimage(image: Any) -> QImage:
    rgb = image.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    qimg = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return qimg.copy()  # own the pixels: ``data`` goes away


class DocumentList(QListWidget):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(48, 64))
        self.setAcceptDrops(False)  # the window takes drops anywhere
        self.setMinimumWidth(200)

    def add_entry(self, entry: DocEntry) -> QListWidgetItem:
        item = QListWidgetItem(self._label(entry))
        item.setData(Qt.ItemDataRole.UserRole, entry.path)
        self.addItem(item)
        self.refresh(entry)
        return item

    def item_for(self, path: str) -> QListWidgetItem | None:
        for i in range(self.count()):
            if self.item(i).data(Qt.ItemDataRole.UserRole) == path:
                return self.item(i)
        return None

    def refresh(self, entry: DocEntry) -> None:
        item = self.item_for(entry.path)
        if item is None:
            return
        item.setText(self._label(entry))
        item.setToolTip(entry.message or entry.path)
        item.setForeground(QBrush(QColor(STATUS_COLOURS.get(entry.status, "#888888"))))
        if entry.thumbnail is not None:
            item.setIcon(QIcon(QPixmap.fromImage(pil_to_qimage(entry.thumbnail))))

    @staticmethod
    def _label(entry: DocEntry) -> str:
        pages = f", {len(entry.document.pages)} p." if entry.document is not None else ""
        return f"{entry.name}\n{entry.status}{pages}"


class PageView(QGraphicsView):
    """One page at a time; zoom, fit, block outlines. Clicking a block emits ``block_clicked(page, order)``."""

    block_clicked = Signal(int, int)
    page_changed = Signal(int)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.document = None
        self.blocks: list[Any] = []
        self.page = 0
        self.dpi = 96
        self.zoom = 1.0
        self.outline_items: list[QGraphicsRectItem] = []
        self.highlighted: int | None = None
        self.layout_source = None
        hint = self.scene().addText("Drop PDFs, scans, images, videos or folders here,\nor paste an image (Ctrl+V).")
        hint.setDefaultTextColor(QColor(140, 140, 140))

    def show_document(self, document: Any, page: int = 1, blocks_from: Any = None) -> None:
        self.document = document
        self.layout_source = blocks_from or document
        self.show_page(page)

    def page_count(self) -> int:
        return len(self.document.pages) if self.document is not None else 0

    def show_page(self, number: int) -> None:
        scene = self.scene()
        scene.clear()
        self.outline_items = []
        self.highlighted = None
        if self.document is None or not (1 <= number <= self.page_count()):
            return
        self.page = number
        page = self.document.pages[number - 1]
        try:
            image = self.document.render(number, self.dpi)
        except Exception as exc:  # noqa: BLE001 - a page that cannot render shows why, the rest still work
            scene.addText(f"page {number} cannot be shown: {exc}")
            self.page_changed.emit(number)
            return
        scene.addPixmap(QPixmap.fromImage(pil_to_qimage(image)))
        sx = image.width / page.width if page.width else 1.0
        sy = image.height / page.height if page.height else 1.0
        source = self.layout_source.pages[number - 1] if self.layout_source is not None else page
        self.blocks = sorted(source.blocks, key=lambda b: b.order)
        pen = QPen(QColor(42, 122, 184, 160))
        pen.setWidthF(1.0)
        for blk in self.blocks:
            x0, y0, x1, y1 = blk.bbox
            if x1 <= x0 or y1 <= y0:
                continue
            rect = QGraphicsRectItem(QRectF(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy))
            rect.setPen(pen)
            rect.setData(0, blk.order)
            rect.setToolTip(f"{blk.kind}: {blk.text[:120]}")
            scene.addItem(rect)
            self.outline_items.append(rect)
        scene.setSceneRect(QRectF(0, 0, image.width, image.height))
        self.apply_zoom()
        self.page_changed.emit(number)

    def show_image(self, image: Any, note: str = "") -> None:
        """Show an image in place of the page (the cleaned scan), without outlines."""
        scene = self.scene()
        scene.clear()
        self.outline_items = []
        scene.addPixmap(QPixmap.fromImage(pil_to_qimage(image)))
        if note:
            label = scene.addText(note)
            label.setDefaultTextColor(QColor(42, 122, 184))
        scene.setSceneRect(QRectF(0, 0, image.width, image.height))
        self.apply_zoom()

    def highlight(self, order: int | None) -> None:
        self.highlighted = order
        for item in self.outline_items:
            on = item.data(0) == order
            item.setBrush(QBrush(QColor(255, 200, 0, 70)) if on else QBrush(Qt.BrushStyle.NoBrush))
            if on:
                self.ensureVisible(item)

    def apply_zoom(self) -> None:
        self.resetTransform()
        self.scale(self.zoom, self.zoom)

    def zoom_by(self, factor: float) -> None:
        self.zoom = max(0.1, min(8.0, self.zoom * factor))
        self.apply_zoom()

    def fit(self) -> None:
        rect = self.scene().sceneRect()
        if rect.width() and rect.height():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom = self.transform().m11()

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, QGraphicsRectItem):
            self.highlight(item.data(0))
            self.block_clicked.emit(self.page, int(item.data(0)))
        super().mousePressEvent(event)


class Results(QTabWidget):
    """Rendered Markdown, raw Markdown, JSON, the answer (page links), the extraction."""

    page_link = Signal(str, int)  # document path, page
    cursor_block = Signal(int, str)  # page, the line under the cursor in the raw Markdown

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rendered = QTextBrowser()
        self.rendered.setOpenLinks(False)
        self.raw = QPlainTextEdit()
        self.raw.setReadOnly(True)
        self.json = QPlainTextEdit()
        self.json.setReadOnly(True)
        self.answer = QTextBrowser()
        self.answer.setOpenLinks(False)
        self.answer.anchorClicked.connect(self._link)
        self.extract = QPlainTextEdit()
        self.extract.setReadOnly(True)
        for widget, title in ((self.rendered, "Rendered"), (self.raw, "Markdown"), (self.json, "JSON"),
                              (self.answer, "Answer"), (self.extract, "Extract")):
            self.addTab(widget, title)
        self.raw.cursorPositionChanged.connect(self._cursor_moved)
        self.markdown = ""

    def show_parse(self, parsed: Any) -> None:
        self.markdown = parsed.markdown if parsed is not None else ""
        self.rendered.setMarkdown(self.markdown)
        self.raw.setPlainText(self.markdown)
        self.json.setPlainText(json.dumps(parsed.to_json(), ensure_ascii=False, indent=1)[:2_000_000]
                               if parsed is not None else "")

    def show_answer(self, answer: Any) -> None:
        from html import escape
        from pathlib import Path

        links = " ".join(f'<a href="page:{i}">{escape(Path(c.document).name)}, p. {c.page}</a>'
                         for i, c in enumerate(answer.citations))
        note = ("<p><i>Retrieved evidence (builtin engine): passages quoted from the documents, not a generated "
                "answer.</i></p>" if answer.kind == "retrieved" else "")
        body = "".join(f"<p>{escape(line)}</p>" for line in answer.text.splitlines() if line.strip())
        self._citations = answer.citations
        self.answer.setHtml(f"<p><b>{escape(answer.question)}</b></p>{note}{body}<p>Pages: {links or 'none'}</p>")
        self.setCurrentWidget(self.answer)

    def show_extraction(self, extraction: Any) -> None:
        from inference.exports import extraction_json

        self.extract.setPlainText(extraction_json(extraction))
        self.setCurrentWidget(self.extract)

    def select_text(self, text: str) -> bool:
        """Select ``text`` (a block's) in the raw and rendered views; True when found."""
        found = False
        for view in (self.raw, self.rendered):
            doc = view.document()
            probe = text.strip().splitlines()[0][:60] if text.strip() else ""
            cursor = doc.find(probe) if probe else QTextCursor()
            if not cursor.isNull():
                view.setTextCursor(cursor)
                view.ensureCursorVisible()
                found = True
        return found

    def _link(self, url: QUrl) -> None:
        if url.scheme() == "page":
            index = int(url.path() or 0)
            citation = self._citations[index]
            self.page_link.emit(citation.document, citation.page)

    def _cursor_moved(self) -> None:
        cursor = self.raw.textCursor()
        line = cursor.block().text()
        text = self.raw.toPlainText()[: cursor.position()]
        marker = text.rfind("<!-- page ")
        page = 0
        if marker != -1:
            try:
                page = int(text[marker + 10:].split()[0].rstrip("-").strip())
            except (ValueError, IndexError):
                page = 0
        if line.strip() and not line.startswith("<!--"):
            self.cursor_block.emit(page, line)
