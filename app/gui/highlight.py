"""Syntax highlighting for the raw views: Markdown (headings, emphasis, code, table pipes, page markers) and JSON
(keys, strings, numbers, literals). Colours follow the light or dark scheme of the view.

Highlighting runs on the UI thread. A text up to ``MAX_CHARS`` is highlighted whole when it is set; a longer one
(the JSON of a 40-page document) only on the lines on screen, again as it scrolls (extra selections), so that
setting or scrolling a long text never costs the UI thread the time of formatting all of it. A line longer than
``MAX_LINE_CHARS`` (minified JSON, a page without line breaks) stays plain: one line is formatted whole or not at all.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat

MAX_CHARS = 80_000
MAX_LINE_CHARS = 5_000
CODE_FENCE = 1  # block state: inside a fenced code block

LIGHT = {
    "heading": "#1a4f8b",
    "emphasis": "#6a3d9a",
    "code": "#a3341f",
    "code_bg": "#f1f1f1",
    "pipe": "#b07000",
    "comment": "#808080",
    "link": "#1f6fb2",
    "key": "#1a4f8b",
    "string": "#2e7d32",
    "number": "#b35900",
    "literal": "#8e24aa",
}
DARK = {
    "heading": "#8ab4f8",
    "emphasis": "#d7aefb",
    "code": "#f28b82",
    "code_bg": "#2b2d30",
    "pipe": "#fdd663",
    "comment": "#9aa0a6",
    "link": "#8ab4f8",
    "key": "#8ab4f8",
    "string": "#81c995",
    "number": "#fcad70",
    "literal": "#d7aefb",
}


def char_format(
    colour: str, bold: bool = False, italic: bool = False, background: str | None = None, fixed: bool = False
) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(colour))
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    if italic:
        fmt.setFontItalic(True)
    if background:
        fmt.setBackground(QColor(background))
    if fixed:
        fmt.setFontFixedPitch(True)
    return fmt


class _Highlighter(QSyntaxHighlighter):
    """Formats chosen for the scheme of the document's view; ``set_dark`` switches and highlights again."""

    def __init__(self, document: Any, dark: bool = False) -> None:
        super().__init__(document)
        self.formats: dict[str, QTextCharFormat] = {}
        self.dark = not dark
        self.set_dark(dark)

    def set_dark(self, dark: bool) -> None:
        if dark == self.dark:
            return
        self.dark = dark
        self.formats = self.make_formats(DARK if dark else LIGHT)
        self.rehighlight()

    def make_formats(self, colours: dict[str, str]) -> dict[str, QTextCharFormat]:
        raise NotImplementedError

    def setFormat(self, start: int, count: int, fmt: Any) -> None:
        captured = getattr(self, "captured", None)
        if captured is not None:
            captured.append((start, count, fmt))
        else:
            super().setFormat(start, count, fmt)

    def formats_of(self, text: str) -> list[tuple[int, int, Any]]:
        """The formats ``highlightBlock`` gives one line, without a document (for the lines on screen)."""
        self.captured: list[tuple[int, int, Any]] | None = []
        try:
            self.highlightBlock(text)
            return self.captured
        finally:
            self.captured = None


class MarkdownHighlighter(_Highlighter):
    HEADING = re.compile(r"^#{1,6}\s.*$")
    INLINE = re.compile(
        r"(?P<code>`[^`]+`)|(?P<strong>(\*\*|__)(?=\S)(.+?)(?<=\S)\3)"
        r"|(?P<em>(?<![*\w])[*_](?=[^\s*_])(.+?)(?<=[^\s*_])[*_](?![*\w]))"
        r"|(?P<link>\[[^\]]+\]\([^)]+\))|(?P<comment><!--.*?-->)|(?P<pipe>\|)"
    )
    FENCE = re.compile(r"^\s*(```|~~~)")
    RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")  # a table's header separator

    def make_formats(self, c: dict[str, str]) -> dict[str, QTextCharFormat]:
        return {
            "heading": char_format(c["heading"], bold=True),
            "strong": char_format(c["emphasis"], bold=True),
            "em": char_format(c["emphasis"], italic=True),
            "link": char_format(c["link"]),
            "code": char_format(c["code"], background=c["code_bg"], fixed=True),
            "comment": char_format(c["comment"], italic=True),
            "pipe": char_format(c["pipe"], bold=True),
        }

    def highlightBlock(self, text: str) -> None:
        inside = self.previousBlockState() == CODE_FENCE
        if self.FENCE.match(text):
            self.setFormat(0, len(text), self.formats["code"])
            self.setCurrentBlockState(0 if inside else CODE_FENCE)
            return
        self.setCurrentBlockState(CODE_FENCE if inside else 0)
        if inside:
            self.setFormat(0, len(text), self.formats["code"])
            return
        if self.HEADING.match(text):
            self.setFormat(0, len(text), self.formats["heading"])
            return
        if self.RULE.match(text) and "|" in text:
            self.setFormat(0, len(text), self.formats["pipe"])
            return
        for m in self.INLINE.finditer(text):  # lastgroup: the named alternative (it closes after its inner groups)
            self.setFormat(m.start(), m.end() - m.start(), self.formats[m.lastgroup])


class JsonHighlighter(_Highlighter):
    TOKEN = re.compile(
        r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))|(?P<string>"(?:[^"\\]|\\.)*"?)'
        r"|(?P<number>-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|(?P<literal>\b(?:true|false|null)\b)"
    )

    def make_formats(self, c: dict[str, str]) -> dict[str, QTextCharFormat]:
        return {
            "key": char_format(c["key"], bold=True),
            "string": char_format(c["string"]),
            "number": char_format(c["number"]),
            "literal": char_format(c["literal"], bold=True),
        }

    def highlightBlock(self, text: str) -> None:
        for m in self.TOKEN.finditer(text):
            self.setFormat(m.start(), m.end() - m.start(), self.formats[m.lastgroup])


def show_text(view: Any, text: str, highlighter: _Highlighter | None) -> None:
    """Put ``text`` in a plain-text view, highlighted: whole, or on the lines on screen when it is long."""
    long = len(text) > MAX_CHARS
    if highlighter is not None:
        highlighter.setDocument(None if long else view.document())
    view.setExtraSelections([])  # they point into the text being replaced
    view.setPlainText(text)
    watcher = getattr(view, "visible_highlight", None)
    if watcher is None and highlighter is not None:
        watcher = view.visible_highlight = VisibleHighlight(view, highlighter)
    if watcher is not None:
        watcher.active = long and highlighter is not None
        watcher.refresh()


class VisibleHighlight:
    """Highlights only the lines a long text shows on screen, as extra selections, again on each scroll."""

    def __init__(self, view: Any, highlighter: _Highlighter) -> None:
        self.view = view
        self.highlighter = highlighter
        self.active = False
        self.busy = False
        view.verticalScrollBar().valueChanged.connect(lambda _value: self.refresh())

    def refresh(self) -> None:
        view = self.view
        if self.busy:  # setting the selections may scroll, which asks again
            return
        if not self.active:
            if view.extraSelections():
                view.setExtraSelections([])
            return
        self.busy = True
        try:
            view.setExtraSelections(self._visible(view))
        finally:
            self.busy = False

    def _visible(self, view: Any) -> list[Any]:
        from PySide6.QtGui import QTextCursor
        from PySide6.QtWidgets import QTextEdit

        selections = []
        block = view.firstVisibleBlock()
        bottom = view.viewport().height()
        offset = view.contentOffset()
        while block.isValid() and view.blockBoundingGeometry(block).translated(offset).top() <= bottom:
            if block.length() > MAX_LINE_CHARS:
                block = block.next()
                continue
            for start, count, fmt in self.highlighter.formats_of(block.text()):
                selection = QTextEdit.ExtraSelection()
                cursor = QTextCursor(block)
                cursor.setPosition(block.position() + start)
                cursor.setPosition(block.position() + start + count, QTextCursor.MoveMode.KeepAnchor)
                selection.cursor, selection.format = cursor, fmt
                selections.append(selection)
            block = block.next()
        return selections
