"""The window's panels: document list, page viewer, results. They show what they are given; no document logic."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QIcon,
    QImage,
    QPainter,
    QPen,
    QPixmap,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHeaderView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
)

from app.gui.denoise_panel import fixed_font, is_dark
from app.gui.highlight import JsonHighlighter, MarkdownHighlighter, show_text

STATUS_COLOURS = {
    "queued": "#888888",
    "ingesting": "#c08a00",
    "ready": "#5f7f6f",
    "parsed": "#2e8b57",
    "partial": "#d2691e",
    "failed": "#c0392b",
    "parsing": "#2a7ab8",
}


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
        return Path(self.path).name


def pil_to_qimage(image: Any) -> QImage:
    rgb = image.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    qimg = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return qimg.copy()  # own the pixels: ``data`` goes away


def fit_columns(table: Any, columns: tuple[int, ...], at_least: str = "") -> None:
    """Widen ``columns`` of a table to their longest cell (and ``at_least``, a typical entry) with room to spare, so
    that a short cell such as "invoice.pdf, p. 1" is never wrapped onto a second line by a pixel of rounding; the
    table does not wrap (a cell that does not fit is elided, its whole text in the tooltip or the JSON below)."""
    table.setWordWrap(False)
    metrics = table.fontMetrics()
    spare = 2 * (table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1) + 12
    for column in columns:
        texts = [at_least, table.horizontalHeaderItem(column).text() if table.horizontalHeaderItem(column) else ""]
        texts += [table.item(r, column).text() for r in range(table.rowCount()) if table.item(r, column) is not None]
        table.setColumnWidth(column, max(metrics.horizontalAdvance(t) for t in texts) + spare)


def text_thumbnail(document: Any, size: tuple[int, int] = (96, 128)) -> Any:
    """A small picture of a text document's first page (it has no page image): a white sheet with its first lines,
    so a text file's row has a thumbnail like the others. PIL only: built on the worker thread."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(160, 160, 160))
    try:
        font = ImageFont.load_default(size=9)
    except TypeError:  # Pillow before 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    text = "\n".join(b.text for b in document.pages[0].blocks) if document.pages else ""
    y = 5
    for line in (ln for ln in text.splitlines() if ln.strip()):
        if y > height - 12:
            break
        draw.text((5, y), line.strip()[:24], fill=(40, 40, 40), font=font)
        y += 11
    return image


class DocumentList(QListWidget):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(40, 54))
        self.setAcceptDrops(False)  # the window takes drops anywhere
        self.setTextElideMode(Qt.TextElideMode.ElideRight)  # "partial · 12 pages" is never cut in its middle
        # wide enough for an icon and "partial · 88 pages" whatever the panes beside it ask for
        status = self.fontMetrics().horizontalAdvance("partial \u00b7 88 pages")
        self.setMinimumWidth(self.iconSize().width() + status + 16)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)

    def selected_paths(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count()) if self.item(i).isSelected()]

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
        elif entry.status in ("failed", "locked"):  # no page to show: a sign in its place, aligned with the others
            icon = (
                QStyle.StandardPixmap.SP_MessageBoxCritical
                if entry.status == "failed"
                else QStyle.StandardPixmap.SP_MessageBoxQuestion
            )
            item.setIcon(self.style().standardIcon(icon))
        elif entry.document is not None:  # read but with no picture of its own (a text file): the file sign
            item.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon))

    @staticmethod
    def _label(entry: DocEntry) -> str:
        count = len(entry.document.pages) if entry.document is not None else None
        pages = "" if count is None else f" \u00b7 {count} page{'s' if count != 1 else ''}"
        unsure = unsure_words(entry)
        return f"{entry.name}\n{entry.status}{pages}" + (f"\n{unsure}" if unsure else "")


def unsure_words(entry: DocEntry) -> str:
    """The document list's count of unsure OCR words per page, from the parse shown or the latest with OCR words."""
    from inference.ocr.review import describe_counts, reviewable, unsure_counts

    parses = [entry.parsed, *(r.parsed for r in reversed(entry.extra.get("runs", [])))]
    parsed = next((p for p in parses if reviewable(p)), None)
    return describe_counts(unsure_counts(parsed.document)) if parsed is not None else ""


def accept_drag(event: Any) -> bool:
    """Accept a drag of files or an image as a copy (or a link): never Move, which lets a file manager delete the
    source once the drop is done."""
    mime = event.mimeData()
    if not (mime.hasUrls() or mime.hasImage()):
        event.ignore()
        return False
    allowed = event.possibleActions()
    for action in (Qt.DropAction.CopyAction, Qt.DropAction.LinkAction):
        if allowed & action:
            event.setDropAction(action)
            event.accept()
            return True
    event.ignore()
    return False


class DropTarget:
    """Drag-and-drop handlers for a widget that takes files: copy or link only; the drop goes to ``take_drop``."""

    def dragEnterEvent(self, event: Any) -> None:
        accept_drag(event)

    def dragMoveEvent(self, event: Any) -> None:
        accept_drag(event)

    def dropEvent(self, event: Any) -> None:
        if accept_drag(event):
            self.take_drop(event.mimeData())


class PageView(DropTarget, QGraphicsView):
    """One page at a time; zoom, fit, block outlines. Clicking a block emits ``block_clicked(page, order)``.

    Drops of files are taken here too (the biggest target) and handed on as ``dropped(mime)``. In fit mode the
    page is refitted whenever it changes or the view is resized; a zoom leaves fit mode."""

    block_clicked = Signal(int, int)
    area_selected = Signal(int, object)  # page, (x0, y0, x1, y1) in page points: Shift+drag
    page_changed = Signal(int)
    dropped = Signal(object)  # QMimeData

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
        self.fit_mode = True
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.show_hint()

    HINT = "Drop PDFs, scans, images, videos or folders here,\nor paste an image (Ctrl+V)."

    def show_hint(self, text: str = HINT) -> None:
        self.scene().clear()
        self.outline_items = []
        hint = self.scene().addText(text)
        hint.setDefaultTextColor(QColor(140, 140, 140))
        hint.setTextWidth(max(240, self.viewport().width() - 40))

    def take_drop(self, mime: Any) -> None:
        self.dropped.emit(mime)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.fit_mode:
            self.fit()

    def show_document(self, document: Any, page: int = 1, blocks_from: Any = None) -> None:
        self.document = document
        self.layout_source = blocks_from or document
        self.show_page(page)

    def page_count(self) -> int:
        return len(self.document.pages) if self.document is not None else 0

    def show_page(self, number: int) -> None:
        if self.document is None:
            self.show_hint()
            return
        if not (1 <= number <= self.page_count()):
            return
        scene = self.scene()
        scene.clear()
        self.outline_items = []
        self.highlighted = None
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
        self.scale_to_page = (1 / sx, 1 / sy)  # scene pixels -> page points (a selected area)
        source = self.layout_source.pages[number - 1] if self.layout_source is not None else page
        self.blocks = sorted(source.blocks, key=lambda b: b.order)
        self._outline(lambda x, y: (x * sx, y * sy))
        scene.setSceneRect(QRectF(0, 0, image.width, image.height))
        self.fit() if self.fit_mode else self.apply_zoom()
        self.page_changed.emit(number)

    def _outline(self, to_scene: Any) -> None:
        """Outline the page's blocks; ``to_scene(x, y)`` maps a point of the page (points) into the scene. A box
        that the mapping turns (a deskewed scan) is outlined by the rectangle around its corners."""
        pen = QPen(QColor(42, 122, 184, 160))
        pen.setWidthF(1.0)
        for blk in self.blocks:
            x0, y0, x1, y1 = blk.bbox
            if x1 <= x0 or y1 <= y0:
                continue
            corners = [to_scene(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
            xs, ys = [c[0] for c in corners], [c[1] for c in corners]
            rect = QGraphicsRectItem(QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
            rect.setPen(pen)
            rect.setData(0, blk.order)
            rect.setToolTip(f"{blk.kind}: {blk.text[:120]}")
            self.scene().addItem(rect)
            self.outline_items.append(rect)

    def show_image(
        self, image: Any, note: str = "", dpi: int | None = None, matrix: Any = None, source_size: Any = None
    ) -> None:
        """Show an image in place of the page (the cleaned scan). An image rendered at ``dpi`` is drawn at the
        page's scale, so switching between the two keeps the zoom. With ``matrix`` (3x3, from the page rendered at
        ``source_size`` pixels to the image's pixels, as ``clean_scan`` gives it) the page's blocks are outlined
        where they sit on the image, as on the page itself."""
        scene = self.scene()
        scene.clear()
        self.outline_items = []
        item = scene.addPixmap(QPixmap.fromImage(pil_to_qimage(image)))
        scale = self.dpi / dpi if dpi else 1.0
        item.setScale(scale)
        if matrix is not None and source_size is not None and self.document is not None and self.page:
            page = self.document.pages[self.page - 1]
            kx = source_size[0] / page.width if page.width else 1.0
            ky = source_size[1] / page.height if page.height else 1.0

            def to_scene(x: float, y: float) -> tuple[float, float]:
                u, v, w = matrix @ (x * kx, y * ky, 1.0)
                return u / w * scale, v / w * scale

            self._outline(to_scene)
        if note:
            label = scene.addText(note)
            label.setDefaultTextColor(QColor(42, 122, 184))
        scene.setSceneRect(QRectF(0, 0, image.width * scale, image.height * scale))
        self.fit() if self.fit_mode else self.apply_zoom()

    def highlight(self, order: int | None) -> None:
        self.highlight_many([] if order is None else [order])
        self.highlighted = order

    def highlight_many(self, orders: list[int]) -> None:
        """Fill the outlines of these blocks (a cited passage can span several) and scroll to the first."""
        wanted = set(orders)
        self.highlighted = orders[0] if orders else None
        first = None
        for item in self.outline_items:
            on = item.data(0) in wanted
            item.setBrush(QBrush(QColor(255, 200, 0, 70)) if on else QBrush(Qt.BrushStyle.NoBrush))
            if on and first is None:
                first = item
        if first is not None:
            self.ensureVisible(first)

    def apply_zoom(self) -> None:
        self.resetTransform()
        self.scale(self.zoom, self.zoom)

    def zoom_by(self, factor: float, anchor: Any = None) -> None:
        """Zoom by ``factor`` keeping the scene point under ``anchor`` (a viewport point: the mouse for Ctrl+wheel)
        where it is; by default the point at the view's centre stays, so the part being read stays in view."""
        viewport_point = anchor if anchor is not None else self.viewport().rect().center()
        before = self.mapToScene(viewport_point)
        self.fit_mode = False
        self.zoom = max(0.1, min(8.0, self.zoom * factor))
        self.apply_zoom()
        moved = self.mapFromScene(before) - viewport_point
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    def wheelEvent(self, event: Any) -> None:
        """Ctrl+wheel zooms at the mouse (as in every viewer); the wheel alone scrolls."""
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            if steps:
                self.zoom_by(1.25**steps, event.position().toPoint())
            event.accept()
            return
        super().wheelEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        start = getattr(self, "selecting_from", None)
        super().mouseReleaseEvent(event)
        if start is None:
            return
        self.selecting_from = None
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        end = self.mapToScene(event.position().toPoint())
        kx, ky = getattr(self, "scale_to_page", (1.0, 1.0))
        x0, x1 = sorted((start.x() * kx, end.x() * kx))
        y0, y1 = sorted((start.y() * ky, end.y() * ky))
        if x1 - x0 > 2 and y1 - y0 > 2:
            self.area_selected.emit(self.page, (x0, y0, x1, y1))

    def fit(self) -> None:
        self.fit_mode = True
        rect = self.scene().sceneRect()
        if self.document is not None and rect.width() and rect.height():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom = self.transform().m11()

    def mousePressEvent(self, event: Any) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and self.document is not None:
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)  # Shift+drag selects; a plain drag pans
            self.selecting_from = self.mapToScene(event.position().toPoint())
            super().mousePressEvent(event)
            return
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, QGraphicsRectItem):
            self.highlight(item.data(0))
            self.block_clicked.emit(self.page, int(item.data(0)))
        super().mousePressEvent(event)


def block_spans(parsed: Any) -> dict[tuple[int, int], tuple[int, int]]:
    """Where each block of a parse sits in its Markdown: (page, order) -> (start, end), found in writing order.

    The Markdown is written page by page, block by block, from ``block_markdown``; walking the same order with a
    cursor that only moves forward finds each block at its own place, never at an earlier lookalike."""
    from inference.tasks.layout import FURNITURE
    from inference.tasks.markdown import block_markdown, page_marker

    markdown = parsed.markdown
    spans: dict[tuple[int, int], tuple[int, int]] = {}
    cursor = 0
    for page in parsed.document.pages:
        at = markdown.find(page_marker(page), cursor)
        if at != -1:
            cursor = at + len(page_marker(page))
        for blk in sorted(page.blocks, key=lambda b: b.order):
            if blk.kind in FURNITURE:
                continue
            text = block_markdown(blk) if blk.attrs.get("source") != "model" else blk.text.strip()
            if not text:
                continue
            start = markdown.find(text, cursor)
            if start == -1:
                continue
            spans[(page.number, blk.order)] = (start, start + len(text))
            cursor = start + len(text)
    return spans


def monospace(widget: Any) -> None:
    widget.setFont(fixed_font())


class Results(QTabWidget):
    """Rendered Markdown, raw Markdown, JSON, the answers (a thread, page links), the extraction (a table)."""

    citation_clicked = Signal(object)  # an inference.tasks.Citation
    cursor_block = Signal(int, int)  # page, block order under the cursor in the raw Markdown (0: none)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rendered = QTextBrowser()
        self.rendered.setOpenLinks(False)
        self.raw = QPlainTextEdit()
        self.raw.setReadOnly(True)
        self.json = QPlainTextEdit()
        self.json.setReadOnly(True)
        for view in (self.raw, self.json):
            monospace(view)
        self.raw_highlighter = MarkdownHighlighter(self.raw.document(), is_dark(self))
        self.json_highlighter = JsonHighlighter(self.json.document(), is_dark(self))
        self.answer = QTextBrowser()
        self.answer.setOpenLinks(False)
        self.answer.anchorClicked.connect(self._link)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Field", "Value", "Page"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.cellClicked.connect(self._row_clicked)
        self.extract = QPlainTextEdit()
        self.extract.setReadOnly(True)
        monospace(self.extract)
        self.extract_highlighter = JsonHighlighter(self.extract.document(), is_dark(self))
        extract_box = QSplitter(Qt.Orientation.Vertical)
        extract_box.addWidget(self.table)
        extract_box.addWidget(self.extract)
        for widget, title in (
            (self.rendered, "Rendered"),
            (self.raw, "Markdown"),
            (self.json, "JSON"),
            (self.answer, "Answer"),
            (extract_box, "Extract"),
        ):
            self.addTab(widget, title)
        self.extract_tab = extract_box
        self.raw.cursorPositionChanged.connect(self._cursor_moved)
        self.markdown = ""
        self.spans: dict[tuple[int, int], tuple[int, int]] = {}
        self._rendered_spans: dict[tuple[int, int], tuple[int, int]] | None = {}
        self.thread: list[Any] = []  # every answer asked, oldest first, whatever its scope
        self.about: dict[int, list[str]] = {}  # id(answer) -> the documents it answers from
        self._links: list[Any] = []  # citations by link number
        self._rows: list[Any] = []  # citations by table row
        self.streaming: str | None = None  # the tab a running task streams its committed text into
        self.stream_title = ""
        self.streamed = ""
        self._extract_before = ""

    # parse --------------------------------------------------------------------------------------------------
    def show_parse(self, parsed: Any) -> None:
        self.markdown = parsed.markdown if parsed is not None else ""
        self.spans = block_spans(parsed) if parsed is not None else {}
        self.rendered.setMarkdown(self.markdown)
        self._rendered_spans: dict[tuple[int, int], tuple[int, int]] | None = None
        if self.streaming != "markdown":  # a parse streaming into the tab keeps it; its end shows this
            self._set_quietly(self.raw, self.markdown, self.raw_highlighter)
        show_text(
            self.json,
            json.dumps(_rounded(parsed.to_json()), ensure_ascii=False, indent=1)[:2_000_000]
            if parsed is not None
            else "",
            self.json_highlighter,
        )

    def changeEvent(self, event: Any) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # the scheme changed: colours that read on it
            for highlighter in (self.raw_highlighter, self.json_highlighter, self.extract_highlighter):
                highlighter.set_dark(is_dark(self))
            self._render_thread()  # the answers' links take the new scheme's link colour
        super().changeEvent(event)

    def select_block(self, page: int, order: int) -> bool:
        """Select the block's own text in the raw Markdown (its span) and the same occurrence in the rendered view."""
        span = self.spans.get((page, order))
        if span is None:
            return False
        start, end = span
        cursor = self.raw.textCursor()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.raw.blockSignals(True)
        self.raw.setTextCursor(cursor)
        self.raw.blockSignals(False)
        self.raw.ensureCursorVisible()
        rendered = self.rendered_spans().get((page, order))
        if rendered is not None:
            found = QTextCursor(self.rendered.document())
            found.setPosition(rendered[0])
            found.setPosition(rendered[1], QTextCursor.MoveMode.KeepAnchor)
            self.rendered.setTextCursor(found)
            self.rendered.ensureCursorVisible()
        return True

    def scroll_to_page(self, page: int) -> None:
        """Turning pages scrolls the Markdown to the page's marker (without moving the block highlight)."""
        at = self.markdown.find(f"<!-- page {page} ")
        if at == -1:
            at = self.markdown.find(f"<!-- page {page}-->")
        if at == -1:
            return
        cursor = self.raw.textCursor()
        cursor.setPosition(at)
        self.raw.blockSignals(True)
        self.raw.setTextCursor(cursor)
        self.raw.blockSignals(False)
        # the page's first line at the top of the view, whichever way the pages turn (a plain text view scrolls
        # by lines: its first visible line is the scroll bar's value)
        self.raw.verticalScrollBar().setValue(cursor.blockNumber())
        # the Rendered view follows too: to the first block of the page that has text there
        first = min((span for (p, _o), span in self.rendered_spans().items() if p == page), default=None)
        if first is not None:
            found = QTextCursor(self.rendered.document())
            found.setPosition(first[0])
            self.rendered.setTextCursor(found)
            bar = self.rendered.verticalScrollBar()
            bar.setValue(bar.value() + self.rendered.cursorRect(found).top())

    def rendered_spans(self) -> dict[tuple[int, int], tuple[int, int]]:
        """Where each block sits in the Rendered view, worked out once per parse shown (see ``rendered_spans``)."""
        if self._rendered_spans is None:
            self._rendered_spans = rendered_spans(self.rendered.document(), self.markdown, self.spans)
        return self._rendered_spans

    def _cursor_moved(self) -> None:
        position = self.raw.textCursor().position()
        for (page, order), (start, end) in self.spans.items():
            if start <= position <= end:
                self.cursor_block.emit(page, order)
                return

    # answers ------------------------------------------------------------------------------------------------
    def show_answer(self, answer: Any, about: list[str] | None = None) -> None:
        """Add an answer under the earlier ones (whatever their scope); ``about``: the documents it answers from."""
        self.thread.append(answer)
        if about:
            self.about[id(answer)] = about
        self._render_thread()
        self.setCurrentWidget(self.answer)

    def show_thread(self, answers: list[Any]) -> None:
        """The answers kept (after a conversation is cleared): the others' labels stay."""
        self.thread = list(answers)
        self.about = {k: v for k, v in self.about.items() if k in {id(a) for a in answers}}
        self._render_thread()

    def clear_thread(self) -> None:
        self.show_thread([])

    def _render_thread(self) -> None:
        from html import escape

        self._links = []
        parts = [self._answer_html(a) for a in self.thread]
        if self.streaming == "answer":  # the answer so far, as its canvases commit
            parts.append(
                f"<p><b>{escape(self.stream_title)}</b></p>"
                f'<p style="white-space: pre-wrap">{escape(self.streamed)}\u2026</p>'
            )
        self.answer.setHtml("<hr/>".join(parts) if parts else "<p><i>No question asked yet.</i></p>")
        bar = self.answer.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _link_for(self, citation: Any, text: str) -> str:
        from html import escape

        self._links.append(citation)
        return f'<a href="cite:{len(self._links) - 1}">{escape(text)}</a>'

    def _answer_html(self, answer: Any) -> str:
        from html import escape

        from inference.tasks.conversation import CITATION, mark_target

        lines = [ln for ln in answer.text.splitlines() if ln.strip()]
        retrieved = answer.kind == "retrieved"
        if retrieved and lines and lines[0].startswith("Retrieved evidence"):
            lines = lines[1:]  # the note below says it once
        body = []
        cited = iter(answer.citations)
        for line in lines:
            if retrieved and line.startswith("- "):
                citation = next(cited, None)
                head, _, rest = line[2:].partition(":")
                link = self._link_for(citation, citation.where) if citation is not None else escape(head)
                body.append(f"<li>{link}:{escape(rest)}</li>")
                continue
            out, last = [], 0
            for m in CITATION.finditer(line):
                out.append(escape(line[last : m.start()]))
                target = mark_target(m, line[last : m.start()], answer.citations)
                out.append(self._link_for(target, m.group(0)) if target is not None else escape(m.group(0)))
                last = m.end()
            out.append(escape(line[last:]))
            body.append(f"<p>{''.join(out)}</p>")
        if retrieved:
            body = [
                "<p><i>Retrieved evidence (builtin engine): passages quoted from the documents, not a generated "
                "answer.</i></p><ul>",
                *[b for b in body if b.startswith("<li>")],
                "</ul>",
                *[b for b in body if not b.startswith("<li>")],
            ]
        seen, sources = set(), []
        for c in answer.citations:
            key = (c.document, c.page)
            if key not in seen:
                seen.add(key)
                sources.append(self._link_for(c, c.where))
        pages = " \u00b7 ".join(sources) or "none"
        names = self.about.get(id(answer), [])
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        about = f' <span style="color: gray">({escape(answer.engine)}, about {escape(shown)})</span>' if names else ""
        return f"<p><b>{escape(answer.question)}</b>{about}</p>{''.join(body)}<p>Pages: {pages}</p>"

    def _link(self, url: QUrl) -> None:
        if url.scheme() == "cite":
            index = int(url.path() or 0)
            if 0 <= index < len(self._links):
                self.citation_clicked.emit(self._links[index])

    # committed text, streamed -----------------------------------------------------------------------------------
    def begin_stream(self, kind: str, title: str = "") -> None:
        """A running task's text arrives canvas by canvas into its own tab: ``answer`` (under ``title``, the
        question), ``markdown`` (a parse) or ``extract``. The task's result replaces it; ``end_stream`` restores
        the tab when there is none."""
        self.streaming, self.stream_title, self.streamed = kind, title, ""
        if kind == "markdown":
            self._set_quietly(self.raw, "")
            self.setCurrentWidget(self.raw)
        elif kind == "extract":
            self._extract_before = self.extract.toPlainText()
            self.extract.setPlainText("")
            self.setCurrentWidget(self.extract_tab)
        else:
            self._render_thread()
            self.setCurrentWidget(self.answer)

    def stream_text(self, text: str) -> None:
        if self.streaming is None or not text:
            return
        self.streamed += text
        if self.streaming == "answer":
            self._render_thread()
            return
        view = self.raw if self.streaming == "markdown" else self.extract
        view.blockSignals(True)
        cursor = QTextCursor(view.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        view.blockSignals(False)
        view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())

    def stream_break(self) -> None:
        """The next page's run starts: a blank line between the pages' texts."""
        if self.streamed and not self.streamed.endswith("\n\n"):
            self.stream_text("\n" if self.streamed.endswith("\n") else "\n\n")

    def end_stream(self) -> None:
        kind, self.streaming = self.streaming, None
        if kind == "markdown":
            self._set_quietly(self.raw, self.markdown, self.raw_highlighter)
        elif kind == "extract":
            show_text(self.extract, self._extract_before, self.extract_highlighter)
        elif kind == "answer":
            self._render_thread()

    @staticmethod
    def _set_quietly(view: Any, text: str, highlighter: Any = None) -> None:
        view.blockSignals(True)
        show_text(view, text, highlighter) if highlighter is not None else view.setPlainText(text)
        view.blockSignals(False)

    # extraction ---------------------------------------------------------------------------------------------
    def clear_extraction(self, note: str) -> None:
        """No extraction shown (the last one is about other documents): an empty table and ``note``."""
        self.table.setRowCount(0)
        self._rows = []
        show_text(self.extract, note, None)

    def show_extraction(self, extraction: Any) -> None:
        from inference.exports import extraction_json

        show_text(self.extract, extraction_json(extraction), self.extract_highlighter)
        rows = _flatten(extraction.value)
        self.table.setRowCount(len(rows))
        self._rows = []
        for r, (pointer, value) in enumerate(rows):
            source = extraction.sources.get(pointer)
            self._rows.append(source)
            cells = (
                pointer.lstrip("/"),
                "" if value is None else str(value),
                "" if source is None else source.where,
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if source is not None:
                    item.setToolTip("Click to show it on its page")
                self.table.setItem(r, c, item)
        fit_columns(self.table, (0, 2))  # "invoice.pdf, p. 1" on one line
        self.setCurrentWidget(self.extract_tab)

    def extraction_sources(self) -> list[Any]:
        """The citation of each row of the extraction table (None where a value has no source), in row order."""
        return list(self._rows)

    def _row_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._rows) and self._rows[row] is not None:
            self.citation_clicked.emit(self._rows[row])


def rendered_spans(
    document: QTextDocument, markdown: str, spans: dict[tuple[int, int], tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, int]]:
    """Where each block's Markdown span sits in ``document`` (the whole Markdown rendered): (start, end) positions.

    The rendered text has no markup, so each block's Markdown is rendered alone and its lines (a paragraph is one
    line, a table one line per cell) are found in order with a cursor that only moves forward: the block's first
    line to its last, never an earlier lookalike, and a table from its first cell to its last."""
    scratch = QTextDocument()
    flags = QTextDocument.FindFlag.FindCaseSensitively
    out: dict[tuple[int, int], tuple[int, int]] = {}
    cursor = 0
    for key, (start, end) in sorted(spans.items(), key=lambda item: item[1]):
        scratch.setMarkdown(markdown[start:end])
        lines = [line.strip() for line in scratch.toPlainText().splitlines() if line.strip()]
        first = last = None
        at = cursor
        for line in lines:
            found = document.find(line, at, flags)
            if found.isNull():
                break
            first = found if first is None else first
            last, at = found, found.selectionEnd()
        if first is not None and last is not None and at > cursor:
            out[key] = (first.selectionStart(), last.selectionEnd())
            cursor = at
    return out


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """JSON pointer and scalar value for each leaf of an extracted object (lists of scalars joined)."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}/{key}")
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = []
        for i, item in enumerate(value):
            out += _flatten(item, f"{prefix}/{i}")
        return out
    if isinstance(value, list):
        return [(prefix, ", ".join(str(v) for v in value))]
    return [(prefix, value)]


def _rounded(obj: Any) -> Any:
    """Boxes and scores in the JSON view rounded to 0.1 pt / 3 places: the view is for reading."""
    if isinstance(obj, float):
        return round(obj, 1) if abs(obj) >= 1 else round(obj, 3)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj
