"""Tables and numbers on scanned pages: ruled grids read cell by cell, unruled tables read row by row, dot leaders
taken out before reading, and a digits-only second reading of every number that looks doubtful.

Tesseract's page layout reads a ruled table's columns as paragraphs of their own and drops what it takes for noise:
a cell holding one digit ("7") is often read as nothing or as "IN", a decimal point next to a rule as ":". Read on
its own, as one line, the same cell reads right. An unruled table (a receipt, a price list) comes out of the page
pass as one paragraph of joined lines, or as one paragraph per column: its lines are put back as rows. A table of
contents' dot leaders make Tesseract's line model read the whole line as junk ("ackground and IMOTIVATION ... et r
et e e"): the dots are whitened first, and the entry and its page number come out as a row with a gap.

Every number (a word with digits) read with little confidence, or with a character no number has between its
digits ("4!65", "5:35", "2.9%"), is read a second time from its own crop with digits, separators and currency
signs only. When the two readings differ, the more confident is kept and both are recorded (``digit_checks`` in
the block's attrs, a note on the page), so that a number that may be wrong is never silent.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.documents.lines import join_lines

Box = tuple[float, float, float, float]
WordBox = tuple[str, Box]
DIGITS_ONLY = "0123456789.,-+()$€£"  # no letters, "%", ":" or "¥": what a misread point or 7 becomes
NUMBERLIKE = re.compile(r"^[\d.,:;!|%$€£¥()+\-/'’]+$")
ODD_IN_NUMBER = re.compile(r"\d[^\d\s.,/\-]\d|\d[.,]\d[%!|:;]$|[!|:;']\d{2}$")  # "4!65", "2.9%", "5:35"
TRAILING_MARK = re.compile(r"^[$€£¥]?\d[\d.,]*[.,]$")
DOUBTFUL = 85.0  # Tesseract's word confidence (0-100) under which a number is read again
CELL_MARGIN = 4  # pixels kept clear of a cell's rules
MAX_CELLS = 400  # larger grids keep the page pass's words (each cell read costs about 20 ms)
MAX_CHECKS = 200  # numbers read again on one page at most
MIN_CELL_CONFIDENCE = 50.0  # a cell the page pass left empty takes its own reading only above this


@dataclass
class OcrTable:
    rows: list[list[str]]
    box: Box  # the outer rules (or the rows' extent), in pixels
    words: list[WordBox]  # in pixels
    checks: list[dict[str, Any]] = field(default_factory=list)  # numbers the second reading disagreed on
    ruled: bool = True


class CellReader:
    """One-line and digits-only Tesseract readers for crops of the page (cells, words), started when first needed
    and closed with the page."""

    def __init__(self, path: str, lang: str) -> None:
        self.path, self.lang = path, lang
        self._apis: dict[str, Any] = {}
        self.checks = 0

    def __enter__(self) -> CellReader:
        return self

    def __exit__(self, *exc: object) -> None:
        for api in self._apis.values():
            api.End()
        self._apis.clear()

    def _api(self, kind: str) -> Any:
        import tesserocr

        if kind not in self._apis:
            psm = {"line": tesserocr.PSM.SINGLE_LINE, "block": tesserocr.PSM.SINGLE_BLOCK}.get(
                kind, tesserocr.PSM.SINGLE_LINE
            )
            api = tesserocr.PyTessBaseAPI(path=self.path, lang=self.lang, psm=psm)
            if kind == "digits":
                api.SetVariable("tessedit_char_whitelist", DIGITS_ONLY)
            self._apis[kind] = api
        return self._apis[kind]

    def read(self, gray: np.ndarray, kind: str = "line") -> tuple[str, float]:
        """The text of a grey crop (ink dark on white) and Tesseract's mean confidence (0-100)."""
        from PIL import Image

        if gray.size == 0 or gray.min() > 128:
            return "", 0.0
        pad = max(10, gray.shape[0] // 2)
        image = Image.new("L", (gray.shape[1] + 2 * pad, gray.shape[0] + 2 * pad), 255)
        image.paste(Image.fromarray(np.ascontiguousarray(gray)), (pad, pad))
        api = self._api(kind)
        api.SetImage(image)
        text = (api.GetUTF8Text() or "").strip()
        lines = [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]
        return "\n".join(lines), float(api.MeanTextConf())

    def check_number(self, text: str, confidence: float, gray: np.ndarray) -> tuple[str, dict[str, Any] | None]:
        """``text`` (a number read with ``confidence``) read again from ``gray`` with digits only: the reading to
        keep, and a record of the disagreement (None when the two agree or the number is not doubtful)."""
        if not doubtful_number(text, confidence) or self.checks >= MAX_CHECKS:
            return text, None
        self.checks += 1
        prefix = text[0] if text[0] in "$€£¥" else ""
        suffix = "%" if text.endswith("%") and not ODD_IN_NUMBER.search(text) else ""
        digits, conf = self.read(gray, "digits")
        digits = digits.replace(" ", "")
        if not digits or not any(ch.isdigit() for ch in digits):
            return text, None
        if prefix and not digits.startswith(prefix):
            digits = prefix + digits.lstrip("$€£¥")
        digits += suffix if not digits.endswith(suffix) else ""
        if digits == text:
            return text, None
        better = conf > confidence or (ODD_IN_NUMBER.search(text) is not None and conf >= MIN_CELL_CONFIDENCE)
        kept, other = (digits, text) if better else (text, digits)
        return kept, {"text": kept, "other": other, "confidence": round(max(conf, confidence), 1)}


def doubtful_number(text: str, confidence: float) -> bool:
    """A word that is a number (digits with separators, signs and currency) read with little confidence or with a
    character between its digits that no number has."""
    if not text or not any(ch.isdigit() for ch in text) or not NUMBERLIKE.match(text):
        return False
    return confidence < DOUBTFUL or ODD_IN_NUMBER.search(text) is not None


def crop(gray: np.ndarray, box: Box, margin: int = 0) -> np.ndarray:
    h, w = gray.shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return gray[max(0, y0 - margin) : min(h, y1 + margin), max(0, x0 - margin) : min(w, x1 + margin)]


def cut_tables(paragraphs: list, grids: list, gray: np.ndarray | None = None, reader: CellReader | None = None) -> list:
    """Paragraphs with each ruled grid's lines taken out and put, as a table, where the first of them was. Each cell
    is read on its own from ``gray`` (the page without its rules) when a reader is given: the page pass's words only
    say where the table's text is. Without a reader the page pass's words are put in the grid's cells."""
    out: list = list(paragraphs)
    for xs, ys in grids:
        box = (float(xs[0]), float(ys[0]), float(xs[-1]), float(ys[-1]))
        cells: dict[tuple[int, int], list] = {}
        words, first, kept = [], None, []
        for item in out:
            if isinstance(item, OcrTable):  # cut out for another grid
                kept.append(item)
                continue
            inside = [ln for ln in item[2] if _centre_in(ln.bbox, box)]
            if not inside:
                kept.append(item)
                continue
            first = len(kept) if first is None else first
            rest = [ln for ln in item[2] if ln not in inside]
            if rest:
                kept.append(_paragraph(rest))
            for ln in inside:
                for word in ln.words:
                    x, y = (word[1][0] + word[1][2]) / 2, (word[1][1] + word[1][3]) / 2
                    cells.setdefault((_band(ys, y), _band(xs, x)), []).append(word)
                    words.append(word)
        if first is None:
            continue
        table = _grid_table(xs, ys, cells, words, gray, reader)
        if table is None:
            continue  # not a table of words: the paragraphs stay as Tesseract read them
        kept.insert(first, table)
        out = kept
    return out


def _grid_table(xs, ys, cells, words, gray, reader) -> OcrTable | None:
    box = (float(xs[0]), float(ys[0]), float(xs[-1]), float(ys[-1]))
    checks: list[dict[str, Any]] = []
    count = (len(xs) - 1) * (len(ys) - 1)
    rows = []
    for r in range(len(ys) - 1):
        row = []
        for c in range(len(xs) - 1):
            found = cells.get((r, c), [])
            text = _cell_text(found)
            if reader is not None and gray is not None and count <= MAX_CELLS:
                cell = (xs[c] + CELL_MARGIN, ys[r] + CELL_MARGIN, xs[c + 1] - CELL_MARGIN, ys[r + 1] - CELL_MARGIN)
                text = _read_cell(crop(gray, cell), text, bool(found), reader, checks, (r, c))
            row.append(text)
        rows.append(row)
    rows = [row for row in rows if any(row)]
    filled = [c for c in range(len(xs) - 1) if any(row[c] for row in rows)]
    if len(rows) < 2 or len(filled) < 2:
        return None
    return OcrTable([[row[c] for c in filled] for row in rows], box, words, checks)


def _read_cell(
    gray: np.ndarray, text: str, seen: bool, reader: CellReader, checks: list, where: tuple, numeric: bool = False
) -> str:
    """A cell's own reading: one line (or a block when its ink has several lines), a number checked digits-only;
    the page pass's text where the cell's reading is empty, and nothing where neither pass saw text. In a column of
    numbers a cell the line reading finds nothing in is read digits-only (a lone "7" reads as nothing or "/")."""
    kind = "block" if _ink_lines(gray) > 1 else "line"
    read, conf = reader.read(gray, kind)
    if numeric and kind == "line" and not seen and (conf < MIN_CELL_CONFIDENCE or not any(c.isdigit() for c in read)):
        read, conf = reader.read(gray, "digits")
    if not read or (not seen and (conf < MIN_CELL_CONFIDENCE or not any(ch.isalnum() for ch in read))):
        return text
    if kind == "line" and " " not in read:
        if TRAILING_MARK.match(read):  # a speck beside a cell's number read as "7," or "12.": no number ends so
            read = read[:-1]
        read, check = reader.check_number(read, conf, gray)
        if check is not None:
            checks.append({**check, "cell": list(where)})
    return read.replace("\n", " ")


def _ink_lines(gray: np.ndarray) -> int:
    """How many lines of ink a crop holds: runs of rows with ink parted by at least three blank rows."""
    runs, gap = 0, 3
    for ink in np.any(gray < 128, axis=1):
        if ink:
            runs += gap >= 3
            gap = 0
        else:
            gap += 1
    return runs


def _centre_in(bbox: Box, box: Box) -> bool:
    x, y = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _band(rules: list[int], v: float) -> int:
    """The index of the band between two rules that ``v`` lies in (clamped to the first and last)."""
    return min(len(rules) - 2, max(0, sum(1 for r in rules if r <= v) - 1))


def _cell_text(words: list) -> str:
    """A cell's words line by line (a word is on the line above when its centre is above the other's top)."""
    lines: list[list] = []
    for word in sorted(words, key=lambda w: (w[1][1] + w[1][3]) / 2):
        if lines and (word[1][1] + word[1][3]) / 2 <= lines[-1][0][1][3]:
            lines[-1].append(word)
        else:
            lines.append([word])
    return " ".join(w[0] for line in lines for w in sorted(line, key=lambda w: w[1][0]))


def _paragraph(lines: list) -> tuple[str, Box, list]:
    box = (
        float(min(ln.bbox[0] for ln in lines)),
        float(min(ln.bbox[1] for ln in lines)),
        float(max(ln.bbox[2] for ln in lines)),
        float(max(ln.bbox[3] for ln in lines)),
    )
    return join_lines([ln.text for ln in lines]), box, lines


# unruled tables ----------------------------------------------------------------------------------------------------
GAP = 2.0  # a gap between two words of a line wider than this many line heights parts two cells
MIN_ROWS = 2


def row_tables(items: list, gray: np.ndarray | None = None, reader: CellReader | None = None) -> list:
    """Paragraphs that are unruled tables turned into tables read row by row: paragraphs side by side whose lines
    sit on the same rows, one of them a column of numbers (Tesseract read a receipt's or a contents page's columns
    one after the other), and a paragraph whose lines each part into the same number of cells at wide gaps. The
    cells of a column of numbers, and cells left empty, are read again from ``gray`` each on its own."""
    items = _column_tables(items, gray, reader)
    out: list = []
    for item in items:
        if isinstance(item, OcrTable):
            out.append(item)
            continue
        last = out[-1] if out else None
        split = [_cells_of(ln) for ln in item[2]]
        if isinstance(last, OcrTable) and not last.ruled and all(len(c) == len(last.rows[0]) for c in split):
            last.rows.extend([" ".join(w[0] for w in cell) for cell in cells] for cells in split)  # a total below
            last.words.extend(w for ln in item[2] for w in ln.words)
            last.box = (min(last.box[0], item[1][0]), last.box[1], max(last.box[2], item[1][2]), item[1][3])
            continue
        out.append(_gap_table(item) or item)
    return out


def _column_tables(items: list, gray: np.ndarray | None, reader: CellReader | None) -> list:
    paragraphs = [i for i, item in enumerate(items) if not isinstance(item, OcrTable)]
    columns = _columns([items[i] for i in paragraphs])
    if len(columns) < 2:
        return items
    numeric = [c for c, col in enumerate(columns) if _numeric(col)]
    if not numeric:
        return items
    # the columns that share rows with a column of numbers: the table
    first = numeric[0]
    top, bottom = _span(columns[first])
    members = [c for c, col in enumerate(columns) if _overlap((top, bottom), _span(col)) > 0.5 * (bottom - top)]
    if len(members) < 2:
        return items
    members.sort(key=lambda c: min(p[1][0] for p in columns[c]))
    # a title above the table or a paragraph below it in the same column is no part of it
    inside = [[p for p in columns[c] if _overlap((top, bottom), (p[1][1], p[1][3])) > 0] for c in members]
    inside = _grown(inside, [columns[c] for c in members])
    table = _rows_table(inside, [c in numeric for c in members], gray, reader)
    if table is None:
        return items
    used = {id(p) for col in inside for p in col}
    at = min(i for i in paragraphs if id(items[i]) in used)
    out = [item for i, item in enumerate(items) if i == at or id(item) not in used]
    out[out.index(items[at])] = table
    return out


def _grown(inside: list[list], columns: list[list]) -> list[list]:
    """The table's paragraphs with those just above or below it in its columns added (a line within a quarter more
    than the table's row pitch of its first or last row, as tall as its own): the rows whose number the page pass
    lost ("1", "3" and "7" of a contents page read as nothing) are rows of the table all the same; a title, taller
    or further above, is not."""
    lines = [ln for col in inside for p in col for ln in p[2]]
    centres = sorted((ln.bbox[1] + ln.bbox[3]) / 2 for ln in lines)
    steps = [b - a for a, b in zip(centres, centres[1:], strict=False) if b - a > 0.5 * lines[0].height]
    pitch = statistics.median(steps) if steps else 2 * lines[0].height
    height = statistics.median(ln.height for ln in lines)
    top, bottom = centres[0], centres[-1]
    grown = True
    while grown:
        grown = False
        for col, every in zip(inside, columns, strict=True):
            for p in every:
                if p in col or statistics.median(ln.height for ln in p[2]) > 1.3 * height:
                    continue
                first = (p[2][0].bbox[1] + p[2][0].bbox[3]) / 2
                last = (p[2][-1].bbox[1] + p[2][-1].bbox[3]) / 2
                if first - bottom <= 1.25 * pitch and top - last <= 1.25 * pitch:
                    col.append(p)
                    top, bottom, grown = min(top, first), max(bottom, last), True
    return inside


def _columns(paragraphs: list) -> list[list]:
    """Paragraphs grouped into columns: x-ranges that overlap or lie within a line height of each other."""
    columns: list[list] = []
    for p in sorted(paragraphs, key=lambda p: p[1][0]):
        height = statistics.median(ln.height for ln in p[2])
        for col in columns:
            x0, x1 = min(q[1][0] for q in col), max(q[1][2] for q in col)
            if p[1][0] <= x1 + height and p[1][2] >= x0 - height:
                col.append(p)
                break
        else:
            columns.append([p])
    return columns


def _numeric(column: list) -> bool:
    lines = [ln for p in column for ln in p[2]]
    numbers = [ln for ln in lines if len(ln.words) <= 2 and any(ch.isdigit() for ch in ln.text)]
    return len(lines) >= MIN_ROWS and len(numbers) >= 0.6 * len(lines)


def _span(column: list) -> tuple[float, float]:
    return min(p[1][1] for p in column), max(p[1][3] for p in column)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _rows_table(columns: list[list], numeric: list[bool], gray, reader) -> OcrTable | None:
    every = [(c, ln) for c, col in enumerate(columns) for p in col for ln in p[2]]
    height = statistics.median(ln.height for _, ln in every)
    lines = [(c, ln) for c, ln in every if ln.height <= 1.8 * height]  # a "line" across rows: its cells read again
    rows: list[list] = []
    for c, ln in sorted(lines, key=lambda e: (e[1].bbox[1] + e[1].bbox[3]) / 2):
        centre = (ln.bbox[1] + ln.bbox[3]) / 2
        if rows and abs(centre - rows[-1][0]) <= 0.5 * height:
            rows[-1][1].append((c, ln))
        else:
            rows.append([centre, [(c, ln)]])
    if sum(1 for _, row in rows if len({c for c, _ in row}) >= 2) < MIN_ROWS:
        return None
    xs = [(min(p[1][0] for p in col), max(p[1][2] for p in col)) for col in columns]
    out, checks = [], []
    for r, (_, row) in enumerate(rows):
        y0, y1 = min(ln.bbox[1] for _, ln in row), max(ln.bbox[3] for _, ln in row)
        cells = []
        for c in range(len(columns)):
            found = sorted((ln for k, ln in row if k == c), key=lambda ln: ln.bbox[0])
            text = " ".join(ln.text for ln in found)
            if reader is not None and gray is not None and (numeric[c] or not text):
                box = (xs[c][0] - 0.3 * height, y0 - 0.15 * height, xs[c][1] + 0.3 * height, y1 + 0.15 * height)
                text = _read_cell(crop(gray, box), text, bool(found), reader, checks, (r, c), numeric[c])
            cells.append(text)
        out.append(cells)
    box = (
        min(x for x, _ in xs),
        min(ln.bbox[1] for _, ln in lines),
        max(x for _, x in xs),
        max(ln.bbox[3] for _, ln in lines),
    )
    words = [w for _, ln in lines for w in ln.words]
    return OcrTable(out, box, words, checks, ruled=False)


def _cells_of(line: Any) -> list[list[WordBox]]:
    words = sorted(line.words, key=lambda w: w[1][0])
    cells: list[list[WordBox]] = []
    for word in words:
        if cells and word[1][0] - cells[-1][-1][1][2] < GAP * line.height:
            cells[-1].append(word)
        else:
            cells.append([word])
    return cells


def _gap_table(item: tuple) -> OcrTable | None:
    text, box, lines = item
    if len(lines) < MIN_ROWS or text.startswith("• "):
        return None
    split = [_cells_of(ln) for ln in lines]
    widths = {len(cells) for cells in split}
    if len(widths) != 1 or min(widths) < 2:
        return None
    # the cells line up: each column's right or left edges within two line heights from row to row
    height = statistics.median(ln.height for ln in lines)
    for c in range(len(split[0])):
        lefts = [cells[c][0][1][0] for cells in split]
        rights = [cells[c][-1][1][2] for cells in split]
        if max(lefts) - min(lefts) > 2 * height and max(rights) - min(rights) > 2 * height:
            return None
    rows = [[" ".join(w[0] for w in cell) for cell in cells] for cells in split]
    words = [w for ln in lines for w in ln.words]
    return OcrTable(rows, box, words, ruled=False)


# dot leaders -------------------------------------------------------------------------------------------------------
MIN_DOTS = 5


def remove_leaders(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """The page with its dot leaders whitened, and how many were: runs of at least ``MIN_DOTS`` small, solid, round
    marks of one size on one baseline at an even pitch (a row of full stops between a table of contents' entry and
    its page number). Full stops in text never come five in a row at an even pitch."""
    import cv2

    ink = (gray < 128).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    st = stats[1:count]
    if not len(st):
        return gray, 0
    w, h, area = st[:, 2], st[:, 3], st[:, 4]
    # the letters' height: components well above the common size (leaders outnumber letters on a contents page)
    common = float(np.median(h[h >= 3])) if (h >= 3).any() else 0.0
    tall = h[h > 1.5 * common]
    letter = float(np.median(tall)) if len(tall) else 0.0
    if letter <= 0:
        return gray, 0
    dot = (h <= 0.35 * letter) & (w <= 0.45 * letter) & (h >= 2) & (w <= 2 * h) & (h <= 2 * w)
    dot &= area >= 0.5 * w * h
    dots = sorted((int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in st[dot])
    runs = _dot_runs(dots)
    if not runs:
        return gray, 0
    out = gray.copy()
    for run in runs:
        for x, y, dw, dh in run:
            out[max(0, y - 1) : y + dh + 1, max(0, x - 1) : x + dw + 1] = 255
    return out, len(runs)


def _dot_runs(dots: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """Dots grouped by baseline (bottoms within two pixels or half a dot), then split left to right into runs at an
    even pitch; the runs of ``MIN_DOTS`` or more."""
    found: list[list[tuple[int, int, int, int]]] = []
    by_bottom = sorted(dots, key=lambda d: d[1] + d[3])
    start = 0
    for end in range(1, len(by_bottom) + 1):
        if end < len(by_bottom):
            a, b = by_bottom[end - 1], by_bottom[end]
            if (b[1] + b[3]) - (a[1] + a[3]) <= max(2, a[3] // 2):
                continue
        line = sorted(by_bottom[start:end])
        start = end
        run: list[tuple[int, int, int, int]] = []
        for d in line:
            if run:
                gap = d[0] - run[-1][0]
                pitch = run[-1][0] - run[-2][0] if len(run) > 1 else None
                near = gap <= 6 * max(run[-1][2], 3) if pitch is None else abs(gap - pitch) <= 0.3 * pitch
                if not (gap > 0 and near):
                    found.append(run)
                    run = []
            run.append(d)
        found.append(run)
    return [run for run in found if len(run) >= MIN_DOTS]
