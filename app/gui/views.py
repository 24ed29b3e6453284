"""The window's panels: document list, page viewer, results. They show what they are given; no document logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QIcon,
    QImage,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import (
    QListWidget,
    QListWidgetItem,
    QStyle,
)

from app.gui.denoise_views import fixed_font

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

    def mark_shown(self, path: str) -> None:
        """Tint the row of the document shown, so that it stands out even when it is not selected (a citation shows
        a document without selecting it, to keep the scope)."""
        tint = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        tint.setAlpha(60)
        for i in range(self.count()):
            shown = self.item(i).data(Qt.ItemDataRole.UserRole) == path
            self.item(i).setBackground(QBrush(tint) if shown else QBrush())

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


def names_of(entries: list[DocEntry]) -> str:
    """The documents of a task as the task queue lists them: two names, then how many more."""
    names = ", ".join(e.name for e in entries[:2])
    return names + (f" +{len(entries) - 2}" if len(entries) > 2 else "")


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


def monospace(widget: Any) -> None:
    widget.setFont(fixed_font())


def ask_first(parent: Any, title: str, text: str, action: str, role: Any, go: Any, cancelled: Any) -> Any:
    """A question box opened without blocking the UI thread, Cancel its default: ``go()`` runs on ``action``,
    ``cancelled()`` on Cancel. Returns the box (tests click its buttons)."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    yes = box.addButton(action, role)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.buttonClicked.connect(lambda button: go() if button is yes else cancelled())
    box.open()
    return box
