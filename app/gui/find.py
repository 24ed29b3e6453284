"""Find (Ctrl+F, F3 / Shift+F3): the current document's text, page by page, with the blocks that match filled on the
page and selected in the results; in the Answer tab, the answers' text.

Matching is case-insensitive on each block's text (the text layer, or the OCR words of a scanned page once it is
parsed). A match is a block: F3 moves to the next matching block, across pages, wrapping at the end.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget


class FindBar(QWidget):
    """The find strip under the results: the text, the match count, previous / next, close."""

    closed = Signal()  # hidden (its close button, Esc): the page's find marks go with it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Find in the document and the results (Ctrl+F)")
        self.edit.setClearButtonEnabled(True)
        self.count = QLabel("")
        self.previous = QPushButton("\u25b2")
        self.previous.setToolTip("Previous match (Shift+F3)")
        self.next = QPushButton("\u25bc")
        self.next.setToolTip("Next match (F3, Enter)")
        self.close_button = QPushButton("\u2715")
        self.close_button.setToolTip("Close the find bar")
        for button in (self.previous, self.next, self.close_button):
            button.setFixedWidth(30)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(QLabel("Find"))
        row.addWidget(self.edit, 1)
        row.addWidget(self.count)
        row.addWidget(self.previous)
        row.addWidget(self.next)
        row.addWidget(self.close_button)
        self.close_button.clicked.connect(self.hide)
        self.hide()

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self.closed.emit()


class Finder:
    """Find over the window's current document and results; ``window`` is the ``MainWindow``."""

    def __init__(self, window: Any, bar: FindBar) -> None:
        self.window = window
        self.bar = bar
        self.matches: list[tuple[int, int]] = []  # (page, block order) of the document shown
        self.index = -1
        self.searched: tuple[int, str] | None = None  # (document, query) the matches belong to
        bar.edit.textChanged.connect(lambda _text: self.search())
        bar.edit.returnPressed.connect(lambda: self.step(1))
        bar.next.clicked.connect(lambda: self.step(1))
        bar.previous.clicked.connect(lambda: self.step(-1))
        bar.closed.connect(self.clear_marks)

    def clear_marks(self) -> None:
        """The page's find marks off (the find bar closed, or a citation's passage marked instead)."""
        if self.matches:
            self.window.page_view.highlight_many([])
        self.matches, self.index, self.searched = [], -1, None

    @property
    def query(self) -> str:
        return self.bar.edit.text().strip()

    def open(self) -> None:
        self.bar.show()
        self.bar.edit.setFocus()
        self.bar.edit.selectAll()
        if self.query:
            self.search()

    def layout_document(self) -> Any:
        """The document whose blocks the page shows: its parse if there is one, else the document as read."""
        entry = self.window.entries.get(self.window.current)
        if entry is None or entry.document is None:
            return None
        return entry.parsed.document if entry.parsed is not None else entry.document

    def search(self) -> None:
        """Find the blocks that contain the text; show the first match at or after the page shown."""
        query = self.query.lower()
        document = self.layout_document()
        self.searched = (id(document), query)
        self.matches = []
        if query and document is not None:
            for page in document.pages:
                for block in sorted(page.blocks, key=lambda b: b.order):
                    if query in block.text.lower():
                        self.matches.append((page.number, block.order))
        here = self.window.page_view.page or 1
        later = [i for i, (page, _order) in enumerate(self.matches) if page >= here]
        self.index = (later[0] if later else 0) - 1
        if self.matches or (query and self.window.results.currentWidget() is self.window.results.answer):
            self.step(1)  # in the Answer tab the answers come first
        else:
            self._say("" if not query else "no match")
            self.window.page_view.highlight_many([])

    def step(self, direction: int) -> None:
        """The next (1) or previous (-1) match, wrapping; in the Answer tab, the next occurrence in the answers, and
        the document's matches on the page when the answers hold none."""
        if not self.bar.isVisible() or not self.query:
            self.open()
            return
        in_answers = self.window.results.currentWidget() is self.window.results.answer
        if in_answers and self._find_in_answers(direction):
            self.window.page_view.highlight_many([])  # the match is in the answers: no older mark on the page
            return
        # not in the answers (or another tab): the document's blocks, on the page
        if self.searched != (id(self.layout_document()), self.query.lower()):  # another document or its parse
            self.search()
            return
        if not self.matches:
            self._say("no match in the answers or the document" if in_answers else "no match")
            return
        self.index = (self.index + direction) % len(self.matches)
        page, order = self.matches[self.index]
        view = self.window.page_view
        if view.page != page:
            view.show_page(page)
        on_page = [o for p, o in self.matches if p == page]
        view.highlight_many([order] + [o for o in on_page if o != order])
        if not in_answers:  # the answers stay in view; the page shows the match
            self.window.results.select_block(page, order)
        where = " in the document" if in_answers else ""
        self._say(f"{self.index + 1} of {len(self.matches)} (p. {page}){where}")

    def _find_in_answers(self, direction: int) -> bool:
        view = self.window.results.answer
        flags = QTextDocument.FindFlag(0) if direction > 0 else QTextDocument.FindFlag.FindBackward
        if not view.find(self.query, flags):  # wrap around once
            cursor = view.textCursor()
            cursor.movePosition(cursor.MoveOperation.Start if direction > 0 else cursor.MoveOperation.End)
            view.setTextCursor(cursor)
            if not view.find(self.query, flags):
                return False
        self._say("in the answers")
        return True

    def _say(self, text: str) -> None:
        self.bar.count.setText(text)
