"""Markdown from the document model: headings, lists, tables (HTML where cells merge), page markers.

A page marker is an HTML comment, ``<!-- page 3 (label iii) -->``, so that renderers hide it and tools can split on
it. Running headers, footers and page numbers (marked by ``layout.analyse``) are left out unless ``furniture=True``.

Text read from a document is escaped where a renderer would take it for markup (``inference.documents.markup``):
``<config>`` in a paragraph, heading, list item or table cell is shown, not swallowed as an HTML tag. A block whose
backend wrote its Markdown itself (a ``.md`` file's source, a fenced code block) is written as it is.
"""

from __future__ import annotations

import html
import re

from inference.documents.lines import BULLET, MARKED
from inference.documents.markup import escape_heading, escape_markdown
from inference.documents.model import Block, Page
from inference.documents.text import fenced
from inference.tasks.layout import FURNITURE

ORDERED = re.compile(r"^\s*\(?([0-9]{1,3}|[a-zA-Z])[.)]\s+")


def page_marker(page: Page) -> str:
    label = f" (label {page.label})" if page.label and page.label != str(page.number) else ""
    when = f" at {page.label}" if page.timestamp is not None else ""
    return f"<!-- page {page.number}{label if page.timestamp is None else when} -->"


def page_markdown(page: Page, furniture: bool = False, marker: bool = True) -> str:
    out = [page_marker(page)] if marker else []
    if page.error:
        out.append(f"<!-- error: {html.escape(page.error)} -->")
    if page.low_confidence:
        out.append(f"<!-- low confidence: {_comment(confidence_line(page))} -->")
    out.extend(f"<!-- note: {_comment(n)} -->" for n in page.attrs.get("notes", ()))
    for blk in sorted(page.blocks, key=lambda b: b.order):
        if blk.kind in FURNITURE and not furniture:
            continue
        text = block_markdown(blk)
        if text:
            out.append(text)
    return "\n\n".join(out)


def confidence_line(page: Page) -> str:
    """How the page was read and with what confidence, in words: "OCR (tesseract, eng) at 0.62"."""
    how = page.reading
    detail = ", ".join(str(how[k]) for k in ("engine", "lang") if how.get(k))
    method = "OCR" if how.get("method") == "ocr" else how.get("method", "")
    confidence = f" at {page.confidence:.2f}" if page.confidence is not None else ""
    return f"{method}{f' ({detail})' if detail else ''}{confidence}: check this page against its image"


def without_furniture(text: str, page: Page) -> str:
    """``text``, a transcription of ``page``, without the lines at its start and end that are the page's running
    header, footer or page number as its text layer has them (:func:`layout.analyse` marks them): a model that copies
    them anyway leaves them out as the builtin parse does. Lines inside the text are never dropped, and each furniture
    line only once (a title that repeats the running header above it stays)."""
    from collections import Counter

    marks = Counter(_plain(line) for blk in page.blocks if blk.kind in FURNITURE for line in blk.text.splitlines())
    del marks[""]
    if not marks:
        return text
    lines = text.splitlines()

    def furniture_lines(seq: list[str]) -> int:
        n = 0
        while n < len(seq):
            plain = _plain(seq[n])
            if plain:
                if marks[plain] <= 0:
                    break
                marks[plain] -= 1
            n += 1
        return n

    start = furniture_lines(lines)
    end = len(lines) - furniture_lines(lines[::-1])
    return "\n".join(lines[start:end]) if start < end else ""


def _plain(line: str) -> str:
    """A line's words as a reader compares them: Markdown's heading, quote and emphasis marks out, case folded."""
    return " ".join(re.sub(r"[#>*_`]", " ", line).split()).casefold()


def _comment(text: str) -> str:
    return html.escape(text).replace("--", "–")


def block_markdown(blk: Block) -> str:
    if (source := blk.attrs.get("markdown")) is not None:  # written by its backend: a .md file's own source, code
        return source
    if blk.attrs.get("format") == "markdown":  # a model's transcription is Markdown already: never escaped
        return blk.text.strip()
    text = blk.text.strip()
    if blk.kind == "heading" and MARKED.match(text):  # a bulleted line, however it was set, is a list item
        return _list_item(text)
    if blk.kind == "heading":
        return f"{'#' * max(1, min(6, blk.level or 2))} {escape_heading(_spaces(text))}"
    if blk.kind == "list":
        items = [ln for ln in text.splitlines() if ln.strip()]
        return "\n".join(_list_item(ln) for ln in _merge_continuations(items))
    if blk.kind == "table":
        return table_markdown(blk)
    if blk.kind == "figure":
        return f"<!-- image{': ' + html.escape(text) if text else ''} -->"
    if blk.kind == "code":
        return fenced(blk.text, blk.attrs.get("language") or "")
    if blk.kind == "formula":
        return f"$$\n{text}\n$$"
    return _inline(text)


def table_markdown(blk: Block) -> str:
    rows = blk.rows or []
    if not rows:
        return _inline(blk.text)
    spans = blk.attrs.get("spans")
    if spans or any(len(r) != len(rows[0]) for r in rows):
        return table_html(rows, spans)
    width = len(rows[0])
    lines = ["| " + " | ".join(_cell(c) for c in rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def table_html(rows: list[list[str]], spans: list[list[int]] | None = None) -> str:
    """Rows of cells as an HTML table; ``spans[r][c]`` is the colspan of a cell (0: covered by the cell before)."""
    out = ["<table>"]
    for r, row in enumerate(rows):
        tag = "th" if r == 0 else "td"
        cells = []
        for c, cell in enumerate(row):
            span = spans[r][c] if spans and r < len(spans) and c < len(spans[r]) else 1
            if span == 0:
                continue
            attr = f' colspan="{span}"' if span > 1 else ""
            cells.append(f"<{tag}{attr}>{html.escape(cell)}</{tag}>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _merge_continuations(items: list[str]) -> list[str]:
    merged: list[str] = []
    for item in items:
        if merged and not BULLET.match(item):
            merged[-1] = f"{merged[-1]} {item.strip()}"
        else:
            merged.append(item)
    return merged


def _list_item(line: str) -> str:
    if m := ORDERED.match(line):
        return f"{m.group(1)}. {_inline(line[m.end() :])}"
    return f"- {_inline(BULLET.sub('', line, count=1))}"


def _cell(text: str) -> str:
    return escape_markdown(_spaces(text).replace("\n", " "), block=False).replace("|", "\\|")


def _inline(text: str) -> str:
    """Text read from a document as a Markdown paragraph (or a list item's text): spaces collapsed, markup escaped."""
    return escape_markdown(_spaces(text))


def _spaces(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text).strip()
