"""PDF backend (PyMuPDF): text layer as blocks with boxes, tables, figures, scanned-page detection, damage.

Pages are never rendered at open; ``Document.render`` renders one on demand at the requested DPI. Text is
extracted page by page, and one bad page only marks that page.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.documents.model import Block, Document, Page, clean_text, file_sha256, require_file
from inference.errors import CancelledError, IngestError, PasswordRequiredError

if TYPE_CHECKING:
    from inference.batch.kept import PageStore

PasswordCallback = Callable[[str], "str | None"]
# a list item's mark; U+FFFD: a bullet glyph of a symbol font with no Unicode map
BULLET = re.compile(r"^\s*(?:[-•▪‣◦●*·–®¢]|\ufffd+|\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)])\s+")
SCAN_COVERAGE = 0.6  # a page whose images cover this much of it is a scan candidate
# rawdict without MEDIABOX_CLIP (text running past the page edge is kept), without CID_FOR_UNKNOWN_UNICODE (glyph
# codes of a font with no Unicode map come out as U+FFFD and the layer is found garbled) and without image payloads
TEXT_FLAGS = 1 | 2  # TEXT_PRESERVE_LIGATURES | TEXT_PRESERVE_WHITESPACE
# Table detection's budget, in vector paths on the page: PyMuPDF's layout model (which gates find_tables) grows
# about quadratically with them (500 map-like paths: 7 s; 2,000: 45 s), line-based detection about linearly.
MAX_LAYOUT_PATHS = 600  # above this, tables from ruling lines only (no layout model)
MAX_TABLE_PATHS = 20_000  # above this, no table detection: a note on the page says so
NOT_TEXT = 0.3  # garbled layer: this share of U+FFFD, control or private-use characters ...
MIN_WORDLIKE = 0.45  # ... or fewer word-like tokens than this


def open_pdf(
    path: str | Path,
    password: PasswordCallback | None = None,
    tables: bool = True,
    pages: PageStore | None = None,
    cancel: Any = None,
) -> Document:
    """Open ``path`` and extract every page's blocks. Raises ``IngestError`` only when no page can be read.

    With ``pages``, a page kept by an earlier run is taken from it and every page read is kept as it finishes;
    ``cancel`` (a cancel token) is checked before each page."""
    import pymupdf

    path = Path(path)
    require_file(path)
    try:
        pdf = pymupdf.open(path, filetype="pdf")
    except (pymupdf.FileDataError, RuntimeError, ValueError) as exc:
        raise IngestError(f"not a readable PDF ({exc})", path=path) from exc
    if pdf.needs_pass:
        secret = password(str(path)) if password else None
        if not secret:
            raise PasswordRequiredError("the PDF is encrypted and no password was given", wrong=False, path=path)
        if not pdf.authenticate(secret):
            raise PasswordRequiredError("the PDF is encrypted and the password is wrong", wrong=True, path=path)
    if pdf.page_count == 0:
        raise IngestError("the PDF has no pages", path=path)

    doc = Document(
        source=str(path),
        sha256=file_sha256(path),
        kind="pdf",
        metadata={k: clean_text(v) for k, v in (pdf.metadata or {}).items() if v},
    )
    doc.metadata["repaired"] = bool(pdf.is_repaired)
    turns: dict[int, int] = {}
    doc.renderer = _renderer(path, password, turns)
    for index in range(pdf.page_count):
        number = index + 1
        if cancel is not None and cancel.cancelled:
            raise CancelledError(f"{path.name}: stopped while reading page {number}")
        if pages is not None and (kept := pages.page("read", number)) is not None:
            doc.pages.append(kept)
            if kept.attrs.get("turned"):  # read turned in the earlier run: rendered turned now too
                turns[number] = kept.attrs["turned"]
            continue
        try:
            page = pdf.load_page(index)
            doc.pages.append(_read_page(page, number, tables, turns))
        except Exception as exc:  # noqa: BLE001 - one bad page never loses the others
            doc.pages.append(Page(number=number, label=str(number), width=0, height=0))
            doc.add_error(number, f"page could not be read: {str(exc) or type(exc).__name__}")
            continue
        if pdf.is_repaired and _is_blank(page, doc.pages[-1]):
            doc.add_error(
                number,
                "the page is empty after PyMuPDF repaired the file: the PDF is probably "
                "truncated or damaged, and this page's content is missing",
            )
        if pages is not None:
            pages.keep_page("read", doc.pages[-1])
    return doc


def _renderer(path: Path, password: PasswordCallback | None, turns: dict[int, int]) -> Callable[[int, float], Any]:
    """Pages rendered as read: ``/Rotate`` applied, and a page read turned (sideways text) shown turned."""

    def render(number: int, dpi: float = 144) -> Any:
        import pymupdf
        from PIL import Image

        with pymupdf.open(path, filetype="pdf") as pdf:
            if pdf.needs_pass:
                pdf.authenticate((password(str(path)) if password else None) or "")
            page = pdf.load_page(number - 1)
            if turns.get(number):
                page.set_rotation((page.rotation + turns[number]) % 360)
            # cap the pixel count so that a huge page (e.g. 200 x 200 inches) cannot exhaust memory
            area_in2 = (page.rect.width / 72) * (page.rect.height / 72)
            dpi = min(dpi, (40_000_000 / max(area_in2, 1e-6)) ** 0.5)
            pix = page.get_pixmap(dpi=max(int(round(dpi)), 1), alpha=False)
            return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)

    return render


def _is_blank(page: Any, ours: Page) -> bool:
    return not ours.blocks and not page.get_images() and not ours.attrs.get("paths")


def _display_text(page: Any) -> dict:
    import pymupdf

    data = page.get_text("rawdict", sort=True, flags=TEXT_FLAGS, clip=pymupdf.INFINITE_RECT())
    if page.rotation:
        _to_display(data, page.rotation_matrix)
    return data


SIDEWAYS_SHARE = 0.6  # a page is turned when this share of its characters runs the same other way


def sideways_turn(data: dict) -> int:
    """Degrees clockwise (90, 180, 270) that make most of the page's text run left to right, as a reader turns a
    landscape table printed sideways on a portrait page; 0 when most text already does, or there is too little.

    Judged from each line's writing direction (``line["dir"]`` as displayed), weighted by its characters, before
    any table finding: a table found on the page as drawn would come out transposed, its rows in reverse.
    """
    counts: Counter[int] = Counter()
    for b in data["blocks"]:
        for ln in b.get("lines", ()):
            dx, dy = ln["dir"]
            n = sum(len(s["chars"]) for s in ln["spans"])
            if abs(dx) > 0.9:
                counts[0 if dx > 0 else 180] += n
            elif abs(dy) > 0.9:
                counts[90 if dy < 0 else 270] += n  # up the page (y grows downwards): a quarter turn clockwise
    total = sum(counts.values())
    if total < 20:
        return 0
    turn, n = counts.most_common(1)[0]
    return turn if turn and n >= SIDEWAYS_SHARE * total else 0


def _read_page(page: Any, number: int, tables: bool, turns: dict[int, int] | None = None) -> Page:
    """One page as displayed (``/Rotate`` applied), its text layer classified, its blocks in page coordinates.

    A page whose text mostly runs sideways is read turned (``attrs["turned"]``, also recorded in ``turns`` so that
    the renderer shows it the same way).
    """
    import pymupdf

    label = clean_text(page.get_label() or str(number))
    rotation = page.rotation
    data = _display_text(page)
    turn = sideways_turn(data)
    if turn:  # text running up or down the page: read the page turned the way a reader turns it
        try:
            page.set_rotation((rotation + turn) % 360)  # in memory only: the file is never written
        except (RuntimeError, ValueError):  # a page PyMuPDF cannot change: read as drawn
            turn = 0
        else:
            data = _display_text(page)
            if turns is not None:
                turns[number] = turn
    rect = page.rect
    text_blocks = [b for b in data["blocks"] if b.get("type") == 0]
    for b in text_blocks:
        b["lines"] = [ln for ln in b["lines"] if _meets(ln["bbox"], rect)]  # drop text wholly off the page
        for ln in b["lines"]:
            ln["text"] = _line_text(ln)
    text_blocks = [b for b in text_blocks if b["lines"]]
    image_infos = page.get_image_info()
    if page.rotation:
        for info in image_infos:
            info["bbox"] = tuple(pymupdf.Rect(info["bbox"]) * page.rotation_matrix)
    coverage = _coverage(image_infos, rect)
    paths = len(page.get_cdrawings())
    text_layer = _classify_layer(page, text_blocks, coverage)
    scanned = text_layer != "visible" and coverage >= SCAN_COVERAGE
    out = Page(
        number=number,
        label=label,
        width=rect.width,
        height=rect.height,
        text_layer=text_layer,
        scanned=scanned,
        attrs={"image_coverage": round(coverage, 3), "rotation": rotation, "paths": paths},
    )
    if turn:
        out.attrs["turned"] = turn
    if text_layer != "visible":
        out.blocks = _figures(image_infos, rect, start=0)
        return out
    table_blocks: list[Block] = []
    if tables and paths > MAX_TABLE_PATHS:
        out.note(
            f"table detection skipped: {paths:,} vector paths on the page (budget {MAX_TABLE_PATHS:,}); "
            "tables on it come out as text"
        )
    elif tables and (len(text_blocks) >= 12 or paths >= 4):
        table_blocks = _tables(page, text_blocks, use_layout=paths <= MAX_LAYOUT_PATHS)
        if paths > MAX_LAYOUT_PATHS:
            out.note(
                f"tables found from ruling lines only: {paths:,} vector paths on the page "
                f"(layout analysis budget {MAX_LAYOUT_PATHS:,})"
            )
    body = _body_size(text_blocks)
    text_blocks = [part for b in text_blocks for part in _split_at_size_changes(b, body)]
    blocks: list[Block] = []
    for b in text_blocks:
        # lines inside a table are the table's: a block the finder cut through keeps only its other lines
        lines = [
            ln for ln in b["lines"] if ln["text"] and not any(_centre_in(ln["bbox"], t.bbox) for t in table_blocks)
        ]
        if not lines:
            continue
        bbox = _union(ln["bbox"] for ln in lines)
        spans = [s for ln in lines for s in ln["spans"] if s["text"].strip()]
        size = max((s["size"] for s in spans), default=body)
        bold = all(s["flags"] & 16 for s in spans)
        texts = attach_lone_bullets([ln["text"] for ln in lines])
        text = join_lines(texts)
        kind, level = "text", 0
        if len(texts) <= 3 and len(text) < 200 and (size >= body * 1.18 or (bold and len(text) < 80)):
            kind, level = "heading", (1 if size >= body * 1.6 else 2 if size >= body * 1.18 else 3)
        elif BULLET.match(texts[0]):
            kind = "list"
            text = "\n".join(texts)
        blocks.append(Block(kind=kind, text=text, bbox=bbox, order=0, level=level, attrs={"size": round(size, 2)}))
    blocks = _join_drop_caps(blocks, body)
    blocks.extend(table_blocks)
    blocks.extend(_figures(image_infos, rect, start=0))
    blocks.sort(key=lambda blk: (round(blk.bbox[1], 0), blk.bbox[0]))
    for i, blk in enumerate(blocks):
        blk.order = i
    out.blocks = blocks
    return out


def _split_at_size_changes(block: dict, body: float) -> list[dict]:
    """A block cut where its lines change between heading type and body type.

    PyMuPDF groups lines by distance, so a heading set close above or below a paragraph (a column's section heading
    with little space around it) can land in the paragraph's block and be lost as a heading. A line's type is the
    size most of its characters have (a drop cap or a superscript does not change it).
    """
    if len(block["lines"]) < 2:
        return [block]

    def large(line: dict) -> bool:
        sizes: Counter[float] = Counter()
        for s in line["spans"]:
            sizes[round(s["size"], 1)] += len(s["text"].strip())
        return bool(sizes) and sizes.most_common(1)[0][0] >= body * 1.18

    parts: list[list[dict]] = [[block["lines"][0]]]
    for prev, line in zip(block["lines"], block["lines"][1:], strict=False):
        if large(prev) != large(line):
            parts.append([])
        parts[-1].append(line)
    if len(parts) == 1:
        return [block]
    return [dict(block, lines=lines, bbox=_union(ln["bbox"] for ln in lines)) for lines in parts]


def _join_drop_caps(blocks: list[Block], body: float) -> list[Block]:
    """A drop cap (one large letter beside the top of a paragraph) goes back to the start of its paragraph."""
    out = []
    for cap in blocks:
        text = cap.text.strip()
        if len(text) == 1 and text.isalpha() and cap.attrs.get("size", 0) >= 2 * body:
            x0, y0, x1, y1 = cap.bbox
            para = next(
                (
                    b
                    for b in blocks
                    if b is not cap
                    and b.kind == "text"
                    and abs(b.bbox[1] - y0) < (y1 - y0) / 2
                    and b.bbox[0] - 2 <= x1
                    and b.bbox[2] > x1
                ),
                None,
            )
            if para is not None:
                para.text = text + para.text
                para.bbox = _union([para.bbox, cap.bbox])
                continue
        out.append(cap)
    return out


def _to_display(data: dict, m: Any) -> None:
    """Text extracted from a page with ``/Rotate`` is in the stored orientation: turn every box as displayed."""
    import pymupdf

    def box(b: Any) -> tuple:
        return tuple(pymupdf.Rect(b) * m)

    def point(p: Any) -> tuple:
        return tuple(pymupdf.Point(p) * m)

    for b in data["blocks"]:
        b["bbox"] = box(b["bbox"])
        for ln in b.get("lines", ()):
            ln["bbox"] = box(ln["bbox"])
            dx, dy = ln["dir"]
            ln["dir"] = (dx * m.a + dy * m.c, dx * m.b + dy * m.d)
            for s in ln["spans"]:
                s["bbox"], s["origin"] = box(s["bbox"]), point(s["origin"])
                for c in s["chars"]:
                    c["bbox"], c["origin"] = box(c["bbox"]), point(c["origin"])
        if b.get("lines"):
            b["lines"].sort(key=lambda ln: (round(ln["bbox"][1], 1), ln["bbox"][0]))


def _meets(bbox: tuple, rect: Any) -> bool:
    return bbox[2] > rect.x0 and bbox[0] < rect.x1 and bbox[3] > rect.y0 and bbox[1] < rect.y1


def _centre_in(bbox: tuple, outer: tuple, slack: float = 1.0) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return outer[0] - slack <= cx <= outer[2] + slack and outer[1] - slack <= cy <= outer[3] + slack


def _union(boxes: Any) -> tuple[float, float, float, float]:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _line_text(line: dict) -> str:
    """A line's text from its characters in visual order, with a space wherever the gap between glyphs is wide.

    Some PDFs position every glyph with kerning and no space characters (``Table1 Compositionofthe``), and some
    draw glyphs out of order (``371T .`` for ``3.71T``); reading the characters by position fixes both.
    """
    chars = []
    for span in line["spans"]:
        for c in span["chars"]:  # where PDF text enters the model: no lone surrogate or control character passes
            if not c["c"].isprintable() and not c["c"].isspace() or "\ufb50" <= c["c"][:1] <= "\ufefc":
                c["c"] = clean_text(c["c"]) if len(c["c"]) == 1 else "\ufffd"  # presentation forms: letters
        span["text"] = "".join(c["c"] for c in span["chars"])
        chars.extend((c, span["size"]) for c in span["chars"])
    if not chars:
        return ""
    dx, dy = line.get("dir", (1, 0))
    return _chars_text(chars, ordered=abs(dy) < 1e-3 and dx > 0)


# spacing accents that PDFs (TeX above all) draw as glyphs of their own over a letter, and their combining forms
ACCENTS = {
    "\u00b4": "\u0301",
    "`": "\u0300",
    "\u02c7": "\u030c",
    "\u00a8": "\u0308",
    "\u02c6": "\u0302",
    "\u02dc": "\u0303",
    "\u00b8": "\u0327",
    "\u02da": "\u030a",
    "\u02d8": "\u0306",
    "\u00af": "\u0304",
    "\u02d9": "\u0307",
    "\u02dd": "\u030b",
}


def _chars_text(chars: list[tuple[dict, float]], ordered: bool = True) -> str:
    rtl = any("\u0590" <= c["c"] <= "\u08ff" or "\ufb1d" <= c["c"] <= "\ufefc" for c, _ in chars)
    if ordered and not rtl:  # plain left-to-right line: order by position (stable for ties)
        chars = sorted(chars, key=lambda cs: cs[0]["origin"][0])
    out: list[str] = []
    prev_x1 = None
    accent: tuple[str, float] | None = None  # an accent drawn before the letter it sits on
    space = _space_gap(chars)
    for c, size in chars:
        ch = c["c"]
        x0, _, x1, _ = c["bbox"]
        if ch in ACCENTS and not rtl:
            if out and out[-1].isalpha() and prev_x1 is not None and x0 < prev_x1 - 0.05 * size:
                out[-1] = unicodedata.normalize("NFC", out[-1] + ACCENTS[ch])  # over the letter before it
                continue
            accent = (ACCENTS[ch], x1)
            continue
        if accent is not None:
            if ch.isalpha() and x0 < accent[1] - 0.05 * size:
                ch = unicodedata.normalize("NFC", ch + accent[0])
            else:
                out.append(next(k for k, v in ACCENTS.items() if v == accent[0]))  # a lone accent stays as it was
            accent = None
        if prev_x1 is not None and not ch.isspace() and out and not out[-1].isspace() and x0 - prev_x1 > space * size:
            out.append(" ")
        out.append(ch)
        prev_x1 = x1
    if accent is not None:
        out.append(next(k for k, v in ACCENTS.items() if v == accent[0]))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _space_gap(chars: list[tuple[dict, float]]) -> float:
    """The gap (in ems) between glyphs that reads as a space: 0.22, or less where the letters touch (tight bold type
    drawn without space characters has word gaps of 0.13 em): a gap clearly above the usual one is a space."""
    gaps = sorted(
        (b["bbox"][0] - a["bbox"][2]) / max(size, 1.0)
        for (a, size), (b, _) in zip(chars, chars[1:], strict=False)
        if not a["c"].isspace() and not b["c"].isspace()
    )
    if len(gaps) < 8:
        return 0.22
    return min(0.22, max(gaps[len(gaps) // 2], 0.0) + 0.1)


LONE_BULLET = re.compile(r"\s*[•▪‣◦●·]\s*")


def attach_lone_bullets(lines: list[str]) -> list[str]:
    """A bullet glyph set as a line of its own (its item's text starts a little to the right: a separate line to
    PyMuPDF) goes back to the front of the line after it, so that the block reads as a list, item by item."""
    out: list[str] = []
    for line in lines:
        if out and LONE_BULLET.fullmatch(out[-1]):
            out[-1] = f"{out[-1].strip()} {line.strip()}"
        else:
            out.append(line)
    return out


def join_lines(lines: list[str]) -> str:
    """Lines of one paragraph as one string; a word hyphenated across a line break is joined again."""
    text = lines[0]
    for line in lines[1:]:
        text = text[:-1] + line if text.endswith("-") and text[-2:-1].isalpha() else f"{text} {line}"
    return text


def _coverage(infos: list[dict], rect: Any) -> float:
    import pymupdf

    area = abs(rect) or 1.0
    return min(1.0, sum(abs(pymupdf.Rect(i["bbox"]) & rect) for i in infos) / area)


def _classify_layer(page: Any, text_blocks: list[dict], coverage: float) -> str:
    """``none``, ``visible``, ``invisible`` (mostly render mode 3 or transparent: an OCR layer over a scan) or
    ``garbage`` (a layer that does not read as text: glyph codes of a font with no Unicode map, junk OCR)."""
    text = "".join(s["text"] for b in text_blocks for ln in b["lines"] for s in ln["spans"])
    if not text.strip():
        return "none"
    if coverage >= 0.25:  # invisible text only matters over an image that shows the page
        try:
            trace = page.get_texttrace()
        except Exception:  # noqa: BLE001 - old PyMuPDF: fall back to the garbage test
            trace = []
        total = sum(len(s["chars"]) for s in trace)
        invisible = sum(len(s["chars"]) for s in trace if s.get("type") == 3 or s.get("opacity", 1) == 0)
        if total and invisible / total > 0.5:
            return "invisible"
    words = " ".join(ln["text"] for b in text_blocks for ln in b["lines"])
    if _garbage_ratio(text) > NOT_TEXT or wordlike_ratio(words) < MIN_WORDLIKE:
        return "garbage"
    return "visible"


def _garbage_ratio(text: str) -> float:
    text = "".join(ch for ch in text if not ch.isspace())
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ch == "\ufffd" or not ch.isprintable() or 0xE000 <= ord(ch) <= 0xF8FF)
    return bad / len(text)


EDGE_PUNCT = "\"'“”‘’«»()[]{}<>.,;:!?*†‡§¶•·–—-_/\\|"
VOWELS = set("aeiouyAEIOUY")
SPLIT_WORD = re.compile(r"[-'’./&+]")


def wordlike_ratio(text: str, min_tokens: int = 12) -> float:
    """The share of lettered tokens that look like words (1.0 when there are too few to tell).

    A word: letters (non-Latin scripts always pass), in lower, Title or UPPER case, with a vowel when it is
    longer than three letters, parts joined by hyphens, apostrophes or dots, digits only as whole parts. Junk text
    layers (glyph codes read as ASCII, broken OCR) fail on mixed case, letters glued to digits or symbols, and
    vowel-less runs.
    """
    n = good = 0
    for token in text.split():
        core = token.strip(EDGE_PUNCT)
        if any(ord(ch) > 0x24F for ch in core):  # other scripts: their own punctuation (full-width 。，「」) splits
            core = "".join(" " if unicodedata.category(ch)[0] in "PZ" else ch for ch in core).strip()
        if not any(ch.isalpha() for ch in core) or (core.isalnum() and not core.isalpha()):
            continue  # numbers, symbols and codes (row4, H2O, A4) say nothing either way
        n += 1
        parts = [p for p in SPLIT_WORD.split(core.replace(" ", "-")) if p]
        good += all(p.isdigit() or _word(p) for p in parts)
    return good / n if n >= min_tokens else 1.0


def _word(part: str) -> bool:
    if any(ord(ch) > 0x24F for ch in part):  # Greek, Cyrillic, Hebrew, Arabic, Devanagari, CJK ...: letters and the
        return all(ch.isalpha() or unicodedata.category(ch)[0] == "M" or ch.isdigit() for ch in part)  # vowel signs
    if not part.isalpha():
        return False
    if not (part.islower() or part.isupper() or part.istitle() or part[:1].islower() and part[1:2].isupper()):
        return sum(1 for a, b in zip(part, part[1:], strict=False) if a.islower() and b.isupper()) <= 1  # McDonald
    return len(part) <= 3 or any(ch in VOWELS or ord(ch) > 0x7F for ch in part)


def _body_size(text_blocks: list[dict]) -> float:
    sizes: Counter[float] = Counter()
    for b in text_blocks:
        for ln in b["lines"]:
            for s in ln["spans"]:
                sizes[round(s["size"], 1)] += len(s["text"].strip())
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _tables(page: Any, text_blocks: list[dict], use_layout: bool = True) -> list[Block]:
    try:
        found = page.find_tables(use_layout=use_layout)
    except Exception:  # noqa: BLE001 - a table finder failure leaves the text blocks in place
        return []
    blocks = []
    for table in found.tables:
        raw = _table_cells(table, text_blocks)
        rows = [[(cell or "").replace("\n", " ").strip() for cell in row] for row in raw]
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
                    parts.append((ln["bbox"][1], _chars_text([(c, size) for c in inside])))
            cells.append(" ".join(t for _, t in sorted(parts, key=lambda p: p[0]) if t))
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
            cells[col].append(_chars_text(word))
    if sum(1 for c in cells if c) * 2 < len(columns):
        return None
    box = (
        min(ln["bbox"][0] for ln in row_lines),
        min(ln["bbox"][1] for ln in row_lines),
        max(ln["bbox"][2] for ln in row_lines),
        nearest,
    )
    return [" ".join(c) for c in cells], box


def _figures(infos: list[dict], rect: Any, start: int) -> list[Block]:
    blocks = []
    for i, info in enumerate(infos):
        x0, y0, x1, y1 = info["bbox"]
        if (x1 - x0) * (y1 - y0) < 0.01 * abs(rect):
            continue  # icons, rules and specks are not figures
        blocks.append(
            Block(
                kind="figure",
                text="",
                bbox=(x0, y0, x1, y1),
                order=start + i,
                attrs={"xref": info.get("xref", 0), "width": info.get("width"), "height": info.get("height")},
            )
        )
    return blocks
