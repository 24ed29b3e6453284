"""PowerPoint (PPTX) into the document model through python-pptx: one page per slide.

A slide's title is a heading; its body placeholders' paragraphs are list items (PowerPoint bullets them unless told
not to) with their indent level; text boxes are paragraphs; tables and charts' data are tables; pictures are figures
with their alternative text; speaker notes follow the slide's content. The date, footer and slide-number
placeholders are furniture (left out of the Markdown unless kept), so a presentation's repeated footer is read once
per slide in the JSON and never in the text. Shapes are read top to bottom, then left to right, title first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from inference.documents.model import Block, BlockKind, Document, Page, clean_text, file_sha256
from inference.documents.text import list_markdown
from inference.errors import IngestError

EMU_PER_POINT = 12700
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def read_pptx(path: Path, source: IO[bytes] | Path) -> Document:
    import pptx

    deck = pptx.Presentation(source if not isinstance(source, Path) else str(source))
    width = (deck.slide_width or 0) / EMU_PER_POINT
    height = (deck.slide_height or 0) / EMU_PER_POINT
    doc = Document(
        source=str(path),
        sha256=file_sha256(path),
        kind="text",
        metadata={"format": "pptx", "slide_size": [width, height]},
    )
    if title := (deck.core_properties.title or "").strip():
        doc.metadata["title"] = clean_text(title)
    if not len(deck.slides):
        raise IngestError("the presentation has no slides", path=path)
    for number, slide in enumerate(deck.slides, 1):
        blocks = list(_slide_blocks(slide))
        for order, blk in enumerate(blocks):
            blk.order = order
        page = Page(number=number, label=str(number), width=0, height=0, text_layer="visible", blocks=blocks)
        if slide._element.get("show") in ("0", "false"):
            page.note("a hidden slide")
        doc.pages.append(page)
    return doc


def _slide_blocks(slide: Any) -> Iterator[Block]:
    shapes = sorted(_flatten(slide.shapes), key=_reading_key)
    for shape in shapes:
        yield from _shape_blocks(shape)
    try:
        notes = slide.notes_slide.notes_text_frame.text if slide.has_notes_slide else ""
    except AttributeError:  # a notes slide without a body placeholder
        notes = ""
    if notes := " ".join(clean_text(notes).split()):
        yield Block(kind="text", text=f"Speaker notes: {notes}", bbox=(0, 0, 0, 0), order=0, attrs={"role": "notes"})


def _flatten(shapes: Any) -> Iterator[Any]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _flatten(shape.shapes)
        else:
            yield shape


def _placeholder(shape: Any) -> str:
    if not shape.is_placeholder:
        return ""
    try:
        return shape.placeholder_format.type.name or ""
    except (AttributeError, ValueError):
        return ""


def _reading_key(shape: Any) -> tuple[int, int, int]:
    title = _placeholder(shape) in ("TITLE", "CENTER_TITLE", "VERTICAL_TITLE")
    return (0 if title else 1, int(shape.top or 0) // EMU_PER_POINT, int(shape.left or 0) // EMU_PER_POINT)


def _bbox(shape: Any) -> tuple[float, float, float, float]:
    x, y = (shape.left or 0) / EMU_PER_POINT, (shape.top or 0) / EMU_PER_POINT
    return (x, y, x + (shape.width or 0) / EMU_PER_POINT, y + (shape.height or 0) / EMU_PER_POINT)


FURNITURE: dict[str, BlockKind] = {
    "DATE": "footer",
    "FOOTER": "footer",
    "HEADER": "header",
    "SLIDE_NUMBER": "page_number",
}


def _shape_blocks(shape: Any) -> Iterator[Block]:
    kind = _placeholder(shape)
    box = _bbox(shape)
    if getattr(shape, "has_table", False) and shape.has_table:
        yield _table(shape.table, box)
    elif getattr(shape, "has_chart", False) and shape.has_chart:
        yield from _chart(shape, box)
    elif shape.has_text_frame:
        yield from _text_frame(shape, kind, box)
    if shape.shape_type is not None and shape.shape_type.name in ("PICTURE", "LINKED_PICTURE") or kind == "PICTURE":
        alt = shape._element.xpath("./*[1]/p:cNvPr/@descr") if hasattr(shape._element, "xpath") else []
        yield Block(kind="figure", text=clean_text(alt[0]).strip() if alt else "", bbox=box, order=0)


def _table(table: Any, box: tuple[float, float, float, float]) -> Block:
    """A slide's table; a merged cell spans its columns (``attrs.spans``: 0 for a cell it covers)."""
    rows: list[list[str]] = []
    spans: list[list[int]] = []
    for row in table.rows:
        rows.append([" ".join(clean_text(cell.text).split()) for cell in row.cells])
        spans.append([1] * len(rows[-1]))
        covered = 0
        for c, cell in enumerate(row.cells):
            if covered:
                spans[-1][c], covered = 0, covered - 1
            elif cell.is_merge_origin and cell.span_width > 1:
                spans[-1][c], covered = cell.span_width, cell.span_width - 1
    attrs = {"spans": spans} if any(s != 1 for r in spans for s in r) else {}
    return Block(kind="table", text="\n".join(" | ".join(r) for r in rows), bbox=box, order=0, rows=rows, attrs=attrs)


def _text_frame(shape: Any, kind: str, box: tuple[float, float, float, float]) -> Iterator[Block]:
    paragraphs = [(p, " ".join(clean_text(_paragraph_text(p)).split())) for p in shape.text_frame.paragraphs]
    paragraphs = [(p, t) for p, t in paragraphs if t]
    if not paragraphs:
        return
    if kind in ("TITLE", "CENTER_TITLE", "VERTICAL_TITLE"):
        yield Block(kind="heading", text=" ".join(t for _, t in paragraphs), bbox=box, order=0, level=2)
    elif kind in FURNITURE:
        yield Block(kind=FURNITURE[kind], text=" ".join(t for _, t in paragraphs), bbox=box, order=0)
    elif kind in ("BODY", "OBJECT", "VERTICAL_BODY", "VERTICAL_OBJECT") or any(_bulleted(p) for p, _ in paragraphs):
        if kind:  # a body placeholder: bulleted unless a paragraph says not
            marked = [not _unbulleted(p) or _bulleted(p) for p, _ in paragraphs]
        else:
            marked = [_bulleted(p) for p, _ in paragraphs]
        if not any(marked):
            yield Block(kind="text", text="\n".join(t for _, t in paragraphs), bbox=box, order=0)
            return
        for marks, run in itertools.groupby(zip(marked, paragraphs, strict=True), key=lambda m: m[0]):
            run = [p for _, p in run]
            if marks:
                items = [(p.level or 0, p._p.find(f"{A}pPr/{A}buAutoNum") is not None, t) for p, t in run]
                text, markdown = list_markdown(items), list_markdown(items, escape=True)
                yield Block(kind="list", text=text, bbox=box, order=0, attrs={"markdown": markdown})
            else:
                yield Block(kind="text", text="\n".join(t for _, t in run), bbox=box, order=0)
    else:
        yield Block(kind="text", text="\n".join(t for _, t in paragraphs), bbox=box, order=0)


def _paragraph_text(p: Any) -> str:
    """A paragraph's runs, fields and line breaks (python-pptx's ``text`` writes a line break as a vertical tab)."""
    return p.text.replace("\v", " ").replace("\u00ad", "")


def _bulleted(p: Any) -> bool:
    ppr = p._p.find(f"{A}pPr")
    return ppr is not None and (ppr.find(f"{A}buChar") is not None or ppr.find(f"{A}buAutoNum") is not None)


def _unbulleted(p: Any) -> bool:
    ppr = p._p.find(f"{A}pPr")
    return ppr is not None and ppr.find(f"{A}buNone") is not None


def _chart(shape: Any, box: tuple[float, float, float, float]) -> Iterator[Block]:
    """A chart's title as a caption and its data as a table: categories down, one column per series."""
    chart = shape.chart
    try:
        title = chart.chart_title.text_frame.text if chart.has_title else ""
        plot = chart.plots[0]
        categories = [str(c) for c in plot.categories]
        series = list(plot.series)
    except (IndexError, AttributeError, KeyError, ValueError):
        yield Block(kind="figure", text="chart", bbox=box, order=0)
        return
    if title := " ".join(clean_text(title).split()):
        yield Block(kind="caption", text=title, bbox=box, order=0)
    rows = [["", *(s.name or "" for s in series)]]
    values = [list(s.values) for s in series]
    for i, category in enumerate(categories):
        rows.append([category, *(_number(v[i]) if i < len(v) else "" for v in values)])
    yield Block(kind="table", text="\n".join(" | ".join(r) for r in rows), bbox=box, order=0, rows=rows)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
