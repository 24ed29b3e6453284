"""OCR review: the page shown, with each OCR word's box coloured by Tesseract's confidence; click a word to correct it.

A dockable panel (View -> OCR review, Ctrl+Shift+O) that follows the document and page of the page viewer. It reads
the words of the parse shown (or of the latest parse that has OCR words: a model parse has none). A correction goes
through ``inference.ocr.review.correct_word`` into the parse itself, so the results tabs, every export, the builtin
Ask and the saved session carry it; the document list's count of unsure words follows.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.runs import runs_of
from app.gui.views import pil_to_qimage

UNSURE, MIDDLING, SURE, UNKNOWN = QColor(220, 50, 40), QColor(230, 150, 0), QColor(40, 160, 80), QColor(128, 128, 128)
EDITED = QColor(40, 90, 220)
LEGEND = (
    '<span style="color:#dc3228">\u25a0</span> under {low:.0f} % '
    '<span style="color:#e69600">\u25a0</span> {low:.0f}\u2013{high:.0f} % '
    '<span style="color:#28a050">\u25a0</span> {high:.0f} % and over '
    '<span style="color:#808080">\u25a0</span> no confidence '
    '<span style="color:#285adc">\u25a1</span> corrected'
)


def colour_of(word: Any) -> QColor:
    from inference.ocr.review import HIGH_CONFIDENCE, LOW_CONFIDENCE

    if word.edited_from is not None:
        return EDITED
    if word.confidence is None:  # never coloured as confident without a measure
        return UNKNOWN
    return UNSURE if word.confidence < LOW_CONFIDENCE else MIDDLING if word.confidence < HIGH_CONFIDENCE else SURE


class WordView(QGraphicsView):
    """The page image and its word boxes; a click on a box emits ``word_clicked(word)``."""

    word_clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.boxes: dict[tuple[int, int], QGraphicsRectItem] = {}  # (block, index) -> box

    def show_words(self, image: Any, page: Any, words: list[Any]) -> None:
        scene = self.scene()
        scene.clear()
        self.boxes = {}
        if image is not None:  # a QPixmap (the page viewer's) or a PIL image
            pixmap = image if isinstance(image, QPixmap) else QPixmap.fromImage(pil_to_qimage(image))
            scene.addPixmap(pixmap)
            width, height = pixmap.width(), pixmap.height()
            sx, sy = width / (page.width or width), height / (page.height or height)
            scene.setSceneRect(QRectF(0, 0, width, height))
        else:
            sx = sy = 1.0
        for word in words:
            x0, y0, x1, y1 = word.box
            rect = QGraphicsRectItem(QRectF(x0 * sx, y0 * sy, max(1.0, (x1 - x0) * sx), max(1.0, (y1 - y0) * sy)))
            colour = colour_of(word)
            fill = QColor(colour)
            fill.setAlpha(70)
            pen = QPen(colour)
            pen.setWidthF(2.0 if word.edited_from is not None else 1.0)
            rect.setPen(pen)
            rect.setBrush(QBrush(fill))
            conf = "no confidence" if word.confidence is None else f"{word.confidence:.0f} %"
            was = f"; OCR read \u201c{word.edited_from}\u201d" if word.edited_from is not None else ""
            rect.setToolTip(f"{word.text} ({conf}{was}): click to correct")
            rect.setData(0, word)
            scene.addItem(rect)
            self.boxes[(word.block, word.index)] = rect
        self.fitInView(scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def centre_of(self, block: int, index: int) -> Any:
        """The viewport point at the middle of a word's box (for a click)."""
        return self.mapFromScene(self.boxes[(block, index)].rect().center())

    def mousePressEvent(self, event: Any) -> None:
        for item in self.items_at(event.position().toPoint()):
            self.word_clicked.emit(item.data(0))
            return
        super().mousePressEvent(event)

    def items_at(self, point: Any) -> list[QGraphicsRectItem]:
        return [i for i in self.items(point) if isinstance(i, QGraphicsRectItem) and i.data(0) is not None]

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)


class OcrReview(QDockWidget):
    """The panel: a header (page, counts, legend), the word view, and the word being corrected."""

    def __init__(self, window: Any) -> None:
        super().__init__("OCR review", window)
        self.setObjectName("ocr_review")
        self.window = window
        self.header = QLabel("")
        self.header.setWordWrap(True)
        self.legend = QLabel("")
        self.view = WordView()
        self.view.word_clicked.connect(self.select)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Click a word on the page to correct it")
        self.edit.setEnabled(False)
        self.edit.returnPressed.connect(self.apply)
        self.apply_button = QPushButton("Correct")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self.apply)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.apply_button)
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.header)
        column.addWidget(self.legend)
        column.addWidget(self.view, 1)
        column.addLayout(row)
        self.setWidget(body)
        self.words: list[Any] = []
        self.word: Any = None  # the word being corrected
        self.parsed: Any = None
        self.page = 0
        window.page_view.page_changed.connect(lambda _n: self.refresh())

    def toggle_action(self) -> Any:
        action = self.toggleViewAction()
        action.setText("&OCR review")
        action.setShortcut("Ctrl+Shift+O")
        return action

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def source(self) -> tuple[Any, Any]:
        """The document entry shown and the parse whose OCR words are reviewed (None when it has none)."""
        from inference.ocr.review import reviewable

        entry = self.window.entries.get(self.window.current)
        if entry is None:
            return None, None
        if reviewable(entry.parsed):
            return entry, entry.parsed
        return entry, next((r.parsed for r in reversed(runs_of(entry)) if reviewable(r.parsed)), None)

    def refresh(self) -> None:
        """Show the words of the page shown; nothing is done while the panel is hidden."""
        from inference.ocr.review import HIGH_CONFIDENCE, LOW_CONFIDENCE, page_words

        if not self.isVisible():
            return
        self.legend.setText(LEGEND.format(low=LOW_CONFIDENCE, high=HIGH_CONFIDENCE))
        entry, parsed = self.source()
        number = self.window.page_view.page
        self.parsed, self.page, self.word = parsed, number, None
        self.edit.setEnabled(False)
        self.apply_button.setEnabled(False)
        if entry is None or parsed is None or not 1 <= number <= len(parsed.document.pages):
            self.words = []
            self.view.show_words(None, None, [])
            self.header.setText(
                "No OCR words to review: parse a scan or an image with the builtin engine (Ctrl+R)."
                if entry is not None
                else "No document shown."
            )
            return
        page = parsed.document.pages[number - 1]
        self.words = page_words(page)
        self.view.show_words(self.page_image(entry, number), page, self.words)
        unsure = sum(w.unsure for w in self.words)
        edited = sum(w.edited_from is not None for w in self.words)
        self.header.setText(
            f"{entry.name}, page {number}: {len(self.words)} OCR words, {unsure} unsure (under "
            f"{LOW_CONFIDENCE:.0f} %), {edited} corrected."
            if self.words
            else f"{entry.name}, page {number}: no OCR words on this page."
        )

    def page_image(self, entry: Any, number: int) -> Any:
        """The page as the page viewer shows it (its pixmap, not rendered twice), else rendered at its resolution;
        None when it cannot be (the boxes still show)."""
        viewer = self.window.page_view
        if viewer.document is entry.document and viewer.page == number and not self.window.cleaned_box.isChecked():
            pixmaps = [i for i in viewer.scene().items() if isinstance(i, QGraphicsPixmapItem)]
            if pixmaps:
                return pixmaps[0].pixmap()
        if entry.document is None or entry.document.renderer is None:
            return None
        try:
            return entry.document.render(number, viewer.dpi)
        except Exception:  # noqa: BLE001 - the boxes still show without the picture
            return None

    def select(self, word: Any) -> None:
        self.word = word
        self.edit.setEnabled(True)
        self.apply_button.setEnabled(True)
        self.edit.setText(word.text)
        self.edit.selectAll()
        self.edit.setFocus(Qt.FocusReason.MouseFocusReason)

    def apply(self) -> None:
        """Correct the selected word to the text in the box; the results, the list and the view follow."""
        from inference.ocr.review import correct_word

        word, new = self.word, self.edit.text().strip()
        if word is None or self.parsed is None or not new or new == word.text:
            return
        correct_word(self.parsed, word.page, word.block, word.index, new)
        w = self.window
        entry = w.entries.get(w.current)
        if entry is not None:
            w.doc_list.refresh(entry)
            if entry.parsed is self.parsed:
                w.results.show_parse(entry.parsed)
        w.status_label.setText(f"Corrected \u201c{word.text}\u201d to \u201c{new}\u201d on page {word.page}.")
        self.refresh()
