"""The results tabs: Markdown, JSON, the rendered view, answers and extractions, with the spans that tie them to
the page's blocks."""

from __future__ import annotations

import json
import re
from typing import Any

from PySide6.QtCore import QEvent, Qt, QUrl, Signal
from PySide6.QtGui import (
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QHeaderView,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
)

from app.gui.denoise_views import is_dark
from app.gui.highlight import JsonHighlighter, MarkdownHighlighter, show_text
from app.gui.views import fit_columns, monospace

BOLD = re.compile(r"\*\*(.+?)\*\*")  # a quoted passage marks the terms it matched as **term**


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
        # the new answer's start in view, not the thread's end (a long answer's question would be above it);
        # a hidden pane scrolls when it is shown
        self.answer.scrollToAnchor(f"answer-{len(self.thread) - 1}")

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
        parts = [f'<a name="answer-{i}"></a>{self._answer_html(a)}' for i, a in enumerate(self.thread)]
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
                quote = BOLD.sub(r"<b>\1</b>", escape(rest))  # the question's terms, marked in the quote
                body.append(f"<li>{link}:{quote}</li>")
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
