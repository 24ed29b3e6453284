"""Markdown from the document model: headings, lists, tables (HTML where cells merge), page markers.

A page marker is an HTML comment, ``<!-- page 3 (label iii) -->``, so that renderers hide it and tools can split on
it. Running headers, footers and page numbers (marked by ``layout.analyse``) are left out unless ``furniture=True``.

Text read from a document is escaped where a renderer would take it for markup (``inference.documents.markup``):
``<config>`` in a paragraph, heading, list item or table cell is shown, not swallowed as an HTML tag. A block whose
backend wrote its Markdown itself (a ``.md`` file's source, a fenced code block) is written as it is.

OCR words read with little confidence are set between ``==`` marks (``==0xEO000==``: highlighted where Markdown
has highlights, Obsidian, markdown-it's mark, pandoc's ``+mark``; two visible signs elsewhere), and a page with a
share of them says so in a visible note (a quote), so that the reader sees which text to check.
"""

from __future__ import annotations

import html
import re

from inference.documents.lines import BULLET, MARKED
from inference.documents.markup import escape_heading, escape_markdown
from inference.documents.model import UNSURE_WORD, Block, Page, unsure_words
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
    unsure, total = page.ocr_words
    if unsure and (unsure >= UNSURE_SHARE * total or page.low_confidence):
        out.append(unsure_note(unsure, total))
    for blk in sorted(page.blocks, key=lambda b: b.order):
        if blk.kind in FURNITURE and not furniture:
            continue
        text = block_markdown(blk)
        if text:
            out.append(text)
    return "\n\n".join(out)


UNSURE_SHARE = 0.05  # a page with this share of its OCR words unsure (or read with low confidence) gets a note
MARK = "=="  # around unsure OCR words


def unsure_note(unsure: int, total: int) -> str:
    """The visible note of a page with unsure OCR words: a quote, which every Markdown renderer shows."""
    return (
        f"> **OCR unsure:** {unsure} of {total} words on this page were read with a confidence under"
        f" {UNSURE_WORD:.0f} of 100 (set between {MARK} marks): check them against the page image."
    )


def unsure_spans(blk: Block) -> list[tuple[int, int]]:
    """Where the block's unsure OCR words (``unsure_words``) are in ``blk.text``: each word is looked for as a
    whole token a few tokens on from the one before it (a bullet, a word joined across a line break or changed by
    a later pass is not found, and not marked); a list's mark at a line's start is never marked."""
    words = blk.attrs.get("words") or []
    unsure = set(unsure_words(blk))
    if not unsure:
        return []
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", blk.text)]
    spans, at = [], 0
    for i, word in enumerate(words):
        found = next((j for j in range(at, min(at + 4, len(tokens))) if tokens[j][2] == str(word[0])), None)
        if found is None:
            continue
        at = found + 1
        start, end, token = tokens[found]
        line_start = start == 0 or blk.text[start - 1] == "\n"
        if i in unsure and not (line_start and BULLET.match(token + " ")):
            spans.append((start, end))
    return spans


def marked_text(blk: Block) -> str:
    """``blk.text`` with its unsure OCR words between ``MARK`` signs, a run of them on one line marked once."""
    spans = unsure_spans(blk)
    if not spans:
        return blk.text
    runs: list[list[int]] = []
    for start, end in spans:
        if runs and not blk.text[runs[-1][1] : start].strip(" "):
            runs[-1][1] = end
        else:
            runs.append([start, end])
    out, at = [], 0
    for start, end in runs:
        out += [blk.text[at:start], MARK, blk.text[start:end], MARK]
        at = end
    return "".join([*out, blk.text[at:]])


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
    if blk.kind == "heading" and MARKED.match(blk.text.strip()):  # a bulleted line, however it was set, is a list item
        return _list_item(marked_text(blk).strip())
    text = (blk.text if blk.kind in ("table", "figure", "code", "formula") else marked_text(blk)).strip()
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
