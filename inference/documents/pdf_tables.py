"""Tables on a PDF page's text layer: ruled tables from their lines, the others by PyMuPDF's layout model.

Table detection's budget is counted in vector paths on the page: PyMuPDF's layout model (which gates
``find_tables``) grows about quadratically with them (500 map-like paths: 7 s; 2,000: 45 s), line-based detection
less steeply (its merging of neighbouring paths is pairwise too: ``MAX_TABLE_PATHS``). Ruled tables are looked for
from their lines first, within the box of the page's paths (kept when every grid found is ``_well_filled`` and no
table-like row is left outside them); the layout model runs only where that finds none, on pages with ruling lines
or text set like a table (``_table_like``). Pages of prose skip table finding: the layout model costs about a
second a page.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from inference.documents.lines import drop_soft_hyphens
from inference.documents.model import Block
from inference.documents.pdf_text import chars_text

MAX_LAYOUT_PATHS = 600  # above this, tables from ruling lines only (no layout model)
# above this, no table detection (a note on the page says so): line-based finding merges neighbouring paths
# pairwise (PyMuPDF's ``clean_graphics``), about 2 s for 4,000 paths and 7 s for 7,700 on one core, while ruled
# tables take a few hundred; pages over it are charts, maps or glyphs drawn as paths
MAX_TABLE_PATHS = 3_000


def page_tables(page: Any, text_blocks: list[dict], paths: int) -> tuple[list[Block], list[str]]:
    """The page's table blocks, and notes for the page where detection was cut short by its vector paths."""
    if paths > MAX_TABLE_PATHS:
        return [], [
            f"table detection skipped: {paths:,} vector paths on the page (budget {MAX_TABLE_PATHS:,}); "
            "tables on it come out as text"
        ]
    if len(text_blocks) < 12 and paths < 4:
        return [], []
    found: list[Block] = []
    if paths >= 4:  # ruled tables from their lines, kept when every one is a well-filled grid
        area = _ruled_area(page)
        found = _tables(page, text_blocks, use_layout=False, clip=area)
        if not all(_well_filled(t) for t in found) or _table_like(text_blocks, area, found):
            found = []  # doubtful grids, or table-like rows the grids leave out: the layout model decides
    if not found and paths <= MAX_LAYOUT_PATHS and (paths >= 4 or _table_like(text_blocks)):
        found = _tables(page, text_blocks, use_layout=True)
    notes = []
    if paths > MAX_LAYOUT_PATHS:
        notes.append(
            f"tables found from ruling lines only: {paths:,} vector paths on the page "
            f"(layout analysis budget {MAX_LAYOUT_PATHS:,})"
        )
    return found, notes


def centre_in(bbox: tuple, outer: tuple, slack: float = 1.0) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return outer[0] - slack <= cx <= outer[2] + slack and outer[1] - slack <= cy <= outer[3] + slack


def _table_like(text_blocks: list[dict], area: Any = None, found: list[Block] | None = None) -> bool:
    """Whether the page may hold a table without ruling lines: three rows (lines sharing a baseline) of two or
    more short pieces of text side by side. PyMuPDF's layout model, which finds such tables, costs about a second
    a page; prose, even in two columns, never has short pieces side by side row after row.

    With ``area`` and ``found`` (tables found from ruling lines there): whether one such row lies in the area
    outside those tables (header rows above a grid, a table whose rules the grid missed)."""
    lines = [ln for b in text_blocks for ln in b["lines"] if ln["text"].strip()]
    if area is not None:
        lines = [
            ln
            for ln in lines
            if centre_in(ln["bbox"], tuple(area)) and not any(centre_in(ln["bbox"], t.bbox) for t in found or ())
        ]
        rows_needed = 1
    else:
        rows_needed = 3
    if len(lines) < 2 * rows_needed:
        return False
    left, right = min(ln["bbox"][0] for ln in lines), max(ln["bbox"][2] for ln in lines)
    narrow = 0.35 * max(right - left, 1.0)
    rows: Counter[int] = Counter()
    for ln in lines:
        if ln["bbox"][2] - ln["bbox"][0] < narrow:
            rows[round(ln["bbox"][3] / 3)] += 1
    return sum(1 for n in rows.values() if n >= 2) >= 3


def _ruled_area(page: Any) -> Any:
    """The box around the page's vector paths (and a little more, for text just outside the rules): the only
    place line-based table finding can find a table, and much less text to read than the page's."""
    import pymupdf

    area = pymupdf.Rect()
    for path in page.get_cdrawings():
        area |= path["rect"]
    return (area + (-20, -20, 20, 20)) & page.rect if not area.is_empty else None


def _well_filled(table: Block) -> bool:
    """A grid found from ruling lines alone that reads as a table: three rows or more, four cells in five hold
    text, no text in two cells (a diagram's boxes cut into a grid give empty cells and text repeated across them),
    and short cells (a page framed in boxes gives a "table" of paragraphs)."""
    rows = table.rows or []
    cells = [c for row in rows for c in row]
    full = [c for c in cells if c]
    return (
        len(rows) >= 3
        and len(full) >= 0.8 * len(cells)
        and len({c for c in full if len(c) > 3}) == sum(1 for c in full if len(c) > 3)
        and sum(map(len, full)) <= 60 * len(full)
    )


def _tables(page: Any, text_blocks: list[dict], use_layout: bool = True, clip: Any = None) -> list[Block]:
    try:
        found = page.find_tables(use_layout=use_layout, clip=clip)
    except Exception:  # noqa: BLE001 - a table finder failure leaves the text blocks in place
        return []
    blocks = []
    for table in found.tables:
        raw = _table_cells(table, text_blocks)
        rows = [[(cell or "").replace("\n", " ").strip() for cell in row] for row in raw]
        if not any(cell is None for row in raw for cell in row):
            rows = join_wrapped_rows(rows)
        if len(rows) < 2 or max((len(r) for r in rows), default=0) < 2:
            continue
        text = "\n".join(" | ".join(r) for r in rows)
        attrs: dict[str, Any] = {"header": list(getattr(table.header, "names", []) or [])}
        if any(cell is None for row in raw for cell in row[1:]):  # merged cells: PyMuPDF gives None for covered
            spans = []
            for row in raw:
                widths = [1] * len(row)
                for c in range(1, len(row)):
                    if row[c] is None:
                        widths[c] = 0
                        owner = max(i for i in range(c) if widths[i] > 0) if any(widths[:c]) else 0
                        widths[owner] += 1
                spans.append(widths)
            attrs["spans"] = spans
        bbox = getattr(table, "attrs_bbox", None) or tuple(table.bbox)
        blocks.append(Block(kind="table", text=text, bbox=bbox, order=0, rows=rows, attrs=attrs))
    return blocks


WRAP_FILL = 0.6  # a cell line this full (of its column's longest) may have wrapped onto the next row
WRAP_COLUMN = 25  # ... in a column whose longest line has at least this many characters


def join_wrapped_rows(rows: list[list[str]]) -> list[list[str]]:
    """Rows that only continue the cells above them joined to those cells. A table finder reading lines of text
    makes each line of a wrapped cell a row of its own (a definition list: the term, then its description over three
    rows with empty term cells), which cuts sentences into fragments. A row is a continuation when its first cell is
    empty and each of its other filled cells continues the one above: that one filled, its text as long as a wrapped
    line is (most of the column's longest), and not ended by a full stop unless this one starts in lower case."""
    if len(rows) < 2:
        return rows
    width = max(len(r) for r in rows)
    longest = [max((len(r[c]) for r in rows if c < len(r)), default=0) for c in range(width)]
    out: list[list[str]] = [list(rows[0])]
    last_line = [len(c) for c in rows[0]]  # the length of each cell's last joined line
    for row in rows[1:]:
        above = out[-1]
        filled = [c for c, text in enumerate(row) if text]
        if row and not row[0] and filled and all(_continues(above, last_line, longest, c, row[c]) for c in filled):
            for c in filled:
                above[c] = f"{above[c]} {row[c]}"
                last_line[c] = len(row[c])
            continue
        out.append(list(row))
        last_line = [len(c) for c in row]
    return out


def _continues(above: list[str], last_line: list[int], longest: list[int], c: int, text: str) -> bool:
    if c >= len(above) or not above[c] or longest[c] < WRAP_COLUMN or last_line[c] < WRAP_FILL * longest[c]:
        return False
    return not above[c].endswith((".", "!", "?", ":", ";")) or text[:1].islower()


def _table_cells(table: Any, text_blocks: list[dict]) -> list[list[str | None]]:
    """Cell texts from the page's characters (in visual order, spaced by gaps); None for a merged-over cell."""
    lines = [ln for b in text_blocks for ln in b["lines"]]
    out: list[list[str | None]] = []
    for row in table.rows:
        cells: list[str | None] = []
        for box in row.cells:
            if box is None:
                cells.append(None)
                continue
            x0, y0, x1, y1 = box
            parts = []
            for ln in lines:
                lx0, ly0, lx1, ly1 = ln["bbox"]
                if lx1 < x0 or lx0 > x1 or ly1 < y0 or ly0 > y1:
                    continue  # the line misses the cell: skip its characters (this loop runs per cell)
                inside = [
                    c
                    for s in ln["spans"]
                    for c in s["chars"]
                    if x0 <= (c["bbox"][0] + c["bbox"][2]) / 2 <= x1 and y0 <= (c["bbox"][1] + c["bbox"][3]) / 2 <= y1
                ]
                if inside:
                    size = ln["spans"][0]["size"] if ln["spans"] else 10.0
                    parts.append((ln["bbox"][1], chars_text([(c, size) for c in inside])))
            cells.append(drop_soft_hyphens(" ".join(t for _, t in sorted(parts, key=lambda p: p[0]) if t)))
        out.append(cells)
    first = out[0] if out else []
    has_header = bool(first) and all(c and not re.fullmatch(r"[\d.,%$€£()\s+-]+", c) for c in first)
    header = None if has_header else _header_above(table, lines)
    if header is not None:
        out.insert(0, header[0])
        table.attrs_bbox = (
            min(table.bbox[0], header[1][0]),
            header[1][1],
            max(table.bbox[2], header[1][2]),
            table.bbox[3],
        )
    # columns that are empty in every row (PyMuPDF splits at every ruling line) carry nothing
    width = max((len(r) for r in out), default=0)
    keep = [c for c in range(width) if any(c < len(r) and r[c] for r in out)]
    return [[r[c] if c < len(r) else "" for c in keep] for r in out]


def _header_above(table: Any, lines: list[dict]) -> tuple[list[str | None], tuple] | None:
    """A header row that the table finder left out: one line just above the table whose words fall into its columns.

    Tables ruled only below their header (booktabs style) lose the header row; it is recovered when at least half
    of the columns get a word and no word falls outside the columns.
    """
    columns: list[tuple[float, float]] = []  # the usual extent of each column (merged cells aside)
    for c in range(table.col_count):
        boxes = [row.cells[c] for row in table.rows if c < len(row.cells) and row.cells[c] is not None]
        if not boxes:
            return None
        columns.append((sorted(b[0] for b in boxes)[len(boxes) // 2], sorted(b[2] for b in boxes)[len(boxes) // 2]))
    tx0, ty0, tx1, _ = table.bbox
    above = [ln for ln in lines if ln["bbox"][3] <= ty0 + 2 and ln["bbox"][0] >= tx0 - 4 and ln["bbox"][2] <= tx1 + 4]
    if not above:
        return None
    nearest = max(ln["bbox"][3] for ln in above)
    row_lines = [ln for ln in above if abs(ln["bbox"][3] - nearest) < 3]
    height = max(ln["bbox"][3] - ln["bbox"][1] for ln in row_lines)
    inside = [ln for ln in lines if ln["bbox"][1] >= ty0 - 1 and ln["bbox"][3] <= table.bbox[3] + 1]
    body = sorted(s["size"] for ln in inside for s in ln["spans"] if s["chars"])
    size = max((s["size"] for ln in row_lines for s in ln["spans"] if s["chars"]), default=0.0)
    if body and size > 1.15 * body[len(body) // 2]:
        return None  # larger type than the table's: a heading or caption above it, not its header row
    if ty0 - nearest > 1.6 * height:
        return None
    cells: list[list[str]] = [[] for _ in columns]
    for ln in row_lines:
        size = ln["spans"][0]["size"] if ln["spans"] else 10.0
        chars = sorted(
            ((c, size) for s in ln["spans"] for c in s["chars"] if not c["c"].isspace()),
            key=lambda cs: cs[0]["bbox"][0],
        )
        words: list[list[tuple[dict, float]]] = []
        for cs in chars:
            if words and cs[0]["bbox"][0] - words[-1][-1][0]["bbox"][2] <= 0.22 * size:
                words[-1].append(cs)
            else:
                words.append([cs])
        for word in words:
            centre = (word[0][0]["bbox"][0] + word[-1][0]["bbox"][2]) / 2
            col = next((i for i, (x0, x1) in enumerate(columns) if x0 - 2 <= centre <= x1 + 2), None)
            if col is None:
                return None
            cells[col].append(chars_text(word))
    if sum(1 for c in cells if c) * 2 < len(columns):
        return None
    box = (
        min(ln["bbox"][0] for ln in row_lines),
        min(ln["bbox"][1] for ln in row_lines),
        max(ln["bbox"][2] for ln in row_lines),
        nearest,
    )
    return [" ".join(c) for c in cells], box
