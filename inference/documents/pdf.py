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

from inference.documents.lines import BULLET, MARKED, attach_lone_bullets, joined_lines
from inference.documents.model import Block, Document, Page, clean_text, file_sha256, require_file
from inference.documents.pdf_code import find_listings, listing_block, without_listings
from inference.documents.pdf_tables import centre_in, page_tables
from inference.documents.pdf_text import clean_chars, line_text, read_unmapped
from inference.errors import CancelledError, IngestError, PasswordRequiredError

if TYPE_CHECKING:
    from inference.batch.kept import PageStore

PasswordCallback = Callable[[str], "str | None"]
NUMBERED = re.compile(r"^\s*\(?(?:[0-9]{1,3}|[a-zA-Z])[.)]\s")  # "2. Methods": a numbered heading or an item
SCAN_COVERAGE = 0.6  # a page whose images cover this much of it is a scan candidate
# rawdict without MEDIABOX_CLIP (text running past the page edge is kept), without CID_FOR_UNKNOWN_UNICODE (glyph
# codes of a font with no Unicode map come out as U+FFFD and the layer is found garbled) and without image payloads
TEXT_FLAGS = 1 | 2  # TEXT_PRESERVE_LIGATURES | TEXT_PRESERVE_WHITESPACE
NOT_TEXT = 0.3  # garbled layer: this share of U+FFFD, control or private-use characters ...
MIN_WORDLIKE = 0.45  # ... or fewer word-like tokens than this


def open_pdf(
    path: str | Path,
    password: PasswordCallback | None = None,
    tables: bool = True,
    pages: PageStore | None = None,
    cancel: Any = None,
    on_page: Callable[[Page, int, bool], None] | None = None,
) -> Document:
    """Open ``path`` and extract every page's blocks. Raises ``IngestError`` only when no page can be read.

    With ``pages``, a page kept by an earlier run is taken from it and every page read is kept as it finishes;
    ``cancel`` (a cancel token) is checked before each page; ``on_page(page, total, kept)`` hears of each page
    done (``kept``: taken from ``pages``, not read)."""
    path = Path(path)
    require_file(path)
    pdf = _open_unlocked(path, password)
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
        kept = pages.page("read", number) if pages is not None else None
        if kept is not None:
            doc.pages.append(kept)
            if kept.attrs.get("turned"):  # read turned in the earlier run: rendered turned now too
                turns[number] = kept.attrs["turned"]
        elif not _add_page(doc, pdf, index, tables, turns):
            continue  # the page's error is in the document: neither kept nor reported done
        elif pages is not None:
            pages.keep_page("read", doc.pages[-1])
        if on_page is not None:
            on_page(doc.pages[-1], pdf.page_count, kept is not None)
    return doc


def _open_unlocked(path: Path, password: PasswordCallback | None) -> Any:
    """The PDF opened, and unlocked with the password asked for when it is encrypted: ``IngestError`` when it is no
    readable PDF or has no pages, ``PasswordRequiredError`` when the password is missing or wrong."""
    import pymupdf

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
        if getattr(pdf, "is_repaired", False):  # its cross-reference table was broken: pages lost in the repair
            raise IngestError("the PDF is damaged: no page could be recovered from it", path=path)
        raise IngestError("the PDF has no pages", path=path)
    return pdf


def _add_page(doc: Document, pdf: Any, index: int, tables: bool, turns: dict[int, int]) -> bool:
    """Page ``index`` read into ``doc``; False when it could not be read (an empty page with its error). A page left
    empty by PyMuPDF's repair of a damaged file is read, with an error that says so."""
    number = index + 1
    try:
        page = pdf.load_page(index)
        doc.pages.append(_read_page(page, number, tables, turns))
    except Exception as exc:  # noqa: BLE001 - one bad page never loses the others
        doc.pages.append(Page(number=number, label=str(number), width=0, height=0))
        doc.add_error(number, f"page could not be read: {str(exc) or type(exc).__name__}")
        return False
    if pdf.is_repaired and _is_blank(page, doc.pages[-1]):
        doc.add_error(
            number,
            "the page is empty after PyMuPDF repaired the file: the PDF is probably "
            "truncated or damaged, and this page's content is missing",
        )
    return True


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
    """One page as displayed (``/Rotate`` applied), its text layer classified, its blocks in page coordinates and
    reading order: the layer's text and tables where the layer is visible, and the figures."""
    label = clean_text(pdf_label(page.get_label()) or str(number))
    rotation = page.rotation
    data, turn = _upright_text(page, number, turns)
    rect = page.rect
    text_blocks, unmapped = _layer_blocks(page, data)
    image_infos = _image_infos(page)
    coverage = _coverage(image_infos, rect)
    paths = len(page.get_cdrawings())
    text_layer = _classify_layer(page, text_blocks, coverage)
    out = Page(
        number=number,
        label=label,
        width=rect.width,
        height=rect.height,
        text_layer=text_layer,
        scanned=text_layer != "visible" and coverage >= SCAN_COVERAGE,
        attrs={"image_coverage": round(coverage, 3), "rotation": rotation, "paths": paths},
    )
    if turn:
        out.attrs["turned"] = turn
    if text_layer != "visible":
        out.blocks = _figures(image_infos, rect, start=0)
        return out
    blocks = _visible_layer_blocks(page, out, text_blocks, unmapped, tables, paths)
    blocks.extend(_figures(image_infos, rect, start=0))
    blocks.sort(key=lambda blk: (round(blk.bbox[1], 0), blk.bbox[0]))
    for i, blk in enumerate(blocks):
        blk.order = i
    out.blocks = blocks
    return out


def _upright_text(page: Any, number: int, turns: dict[int, int] | None) -> tuple[dict, int]:
    """The page's text as displayed, and the degrees it was turned: a page whose text mostly runs sideways is read
    turned the way a reader turns it (in memory only; the turn also goes in ``turns``, so that the renderer shows
    it the same way)."""
    data = _display_text(page)
    turn = sideways_turn(data)
    if not turn:
        return data, 0
    try:
        page.set_rotation((page.rotation + turn) % 360)  # in memory only: the file is never written
    except (RuntimeError, ValueError):  # a page PyMuPDF cannot change: read as drawn
        return data, 0
    if turns is not None:
        turns[number] = turn
    return _display_text(page), turn


def _image_infos(page: Any) -> list[dict]:
    """The page's images with their boxes as displayed."""
    import pymupdf

    infos = page.get_image_info()
    if page.rotation:
        for info in infos:
            info["bbox"] = tuple(pymupdf.Rect(info["bbox"]) * page.rotation_matrix)
    return infos


def _visible_layer_blocks(
    page: Any, out: Page, text_blocks: list[dict], unmapped: float, tables: bool, paths: int
) -> list[Block]:
    """A visible layer's blocks: glyphs it cannot name read by OCR, tables found, listings in a monospaced font as
    code, and the text split where its size changes into headings, lists and text (drop caps joined to their
    words). What could not be read is noted on ``out``."""
    if unmapped and _unmapped_share(text_blocks):  # a readable layer with glyphs it cannot name: OCR those only
        unread = read_unmapped(page, text_blocks, ocr=True)
        _set_line_texts(text_blocks)
        if unread:
            out.note(f"{unread} glyph(s) with no Unicode mapping could not be read by OCR and are left out")
    body = _body_size(text_blocks)
    listings = find_listings(text_blocks, body)
    table_blocks: list[Block] = []
    if tables:
        table_blocks, notes = page_tables(page, text_blocks, paths)
        for note in notes:
            out.note(note)
    # code set out in columns is no table; a monospaced line inside a table (a command in a cell) is the table's
    table_blocks = [
        t for t in table_blocks if not any(lst.rows > 1 and centre_in(t.bbox, lst.bbox) for lst in listings)
    ]
    listings = [lst for lst in listings if not any(centre_in(lst.bbox, t.bbox) for t in table_blocks)]
    text_blocks = without_listings(text_blocks, listings)
    text_blocks = [part for b in text_blocks for part in _split_at_size_changes(b, body)]
    blocks = [blk for b in text_blocks if (blk := _text_block(b, table_blocks, body)) is not None]
    return [*_join_drop_caps(_contents_entries(blocks), body), *table_blocks, *map(listing_block, listings)]


# a contents entry: a title, leaders and its page number ("Methods ..... 7"), or a numbered section's title and its
# page number ("2.1 Sampling 4"); "Step 3" or "Part 2" alone is a heading
CONTENTS_ENTRY = re.compile(r"^(?:\S.*?\S\s*[.·…]{2,}\s*|\d+(?:\.\d+)*\.?\s+\S.*?\s+)\d{1,4}$")


def _contents_entries(blocks: list[Block]) -> list[Block]:
    """A contents page's entries set in bold ("1 Introduction 2", "Methods ..... 7") are text, not headings: where
    three or more of a page's headings are such entries (leaders before a page number, or a section number, a title
    and a page number), those are made paragraphs again; headings such as "Step 1", "Step 2", "Step 3" stay."""
    entries = [b for b in blocks if b.kind == "heading" and "\n" not in b.text and CONTENTS_ENTRY.match(b.text)]
    if len(entries) < 3:
        return blocks
    for b in entries:
        b.kind, b.level = "text", 0
        b.attrs["contents_entry"] = True
    return blocks


def _layer_blocks(page: Any, data: dict) -> tuple[list[dict], float]:
    """The text layer's blocks on the page, their characters cleaned and their lines' text set, and the share of
    glyphs with no Unicode mapping (leaders and bullets among them are told by their shape here)."""
    rect = page.rect
    text_blocks = [b for b in data["blocks"] if b.get("type") == 0]
    for b in text_blocks:
        b["lines"] = [ln for ln in b["lines"] if _meets(ln["bbox"], rect)]  # drop text wholly off the page
        for ln in b["lines"]:
            clean_chars(ln)
    text_blocks = [b for b in text_blocks if b["lines"]]
    unmapped = _unmapped_share(text_blocks)
    if unmapped:
        read_unmapped(page, text_blocks, ocr=False)
    _set_line_texts(text_blocks)
    return text_blocks, unmapped


def _text_block(b: dict, table_blocks: list[Block], body: float) -> Block | None:
    """One text block of the layer as a heading, a list or text; None when all its lines belong to a table (lines
    inside a table are the table's: a block the finder cut through keeps only its other lines)."""
    lines = [ln for ln in b["lines"] if ln["text"] and not any(centre_in(ln["bbox"], t.bbox) for t in table_blocks)]
    if not lines:
        return None
    bbox = _union(ln["bbox"] for ln in lines)
    spans = [s for ln in lines for s in ln["spans"] if s["text"].strip()]
    size = max((s["size"] for s in spans), default=body)
    bold = all(s["flags"] & 16 for s in spans)
    texts = attach_lone_bullets([ln["text"] for ln in lines])
    rows = _new_rows(lines) if len(texts) == len(lines) else None  # a lone bullet joined: no rows kept
    text, starts = joined_lines(texts, rows)
    kind, level = "text", 0
    if BULLET.match(texts[0]) and not NUMBERED.match(texts[0]) or MARKED.match(texts[0]):
        kind = "list"  # a marked item, however large or bold its type (slides), is never a heading
        text = "\n".join(texts)
    elif len(texts) <= 3 and len(text) < 200 and (size >= body * 1.18 or (bold and len(text) < 80)):
        kind, level = "heading", (1 if size >= body * 1.6 else 2 if size >= body * 1.18 else 3)
    elif BULLET.match(texts[0]):
        kind = "list"
        text = "\n".join(texts)
    attrs: dict[str, Any] = {"size": round(size, 2)}
    if kind == "text" and starts:
        attrs["line_starts"] = starts  # the printed lines, for quotes (``lines.joined_lines``)
    return Block(kind=kind, text=text, bbox=bbox, order=0, level=level, attrs=attrs)


def _new_rows(lines: list[dict]) -> list[bool]:
    """Whether each of a block's lines starts a printed line: PyMuPDF gives the cells of a row set apart on one
    baseline (an invoice's item, quantity and price) as lines of their own; a line that overlaps the one before by
    half its height continues it."""
    out = [True]
    for before, line in zip(lines, lines[1:], strict=False):
        top, bottom = line["bbox"][1], line["bbox"][3]
        overlap = min(bottom, before["bbox"][3]) - max(top, before["bbox"][1])
        out.append(overlap < 0.5 * max(bottom - top, 1e-6))
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


def _union(boxes: Any) -> tuple[float, float, float, float]:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _unmapped_share(text_blocks: list[dict]) -> float:
    """The share of the page's non-space characters that are glyphs with no Unicode mapping (U+FFFD)."""
    total = bad = 0
    for b in text_blocks:
        for ln in b["lines"]:
            for s in ln["spans"]:
                total += len(s["text"]) - s["text"].count(" ")
                bad += s["text"].count("\ufffd")
    return bad / total if total else 0.0


def _set_line_texts(text_blocks: list[dict]) -> None:
    for b in text_blocks:
        for ln in b["lines"]:
            ln["text"] = line_text(ln)


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
    lines = [ln["text"] for b in text_blocks for ln in b["lines"]]
    step = max(1, len(lines) // 60)  # about 60 lines spread over the page say as much as all of them
    if _garbage_ratio(text) > NOT_TEXT or wordlike_ratio(" ".join(lines[::step])) < MIN_WORDLIKE:
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


HEX_STRING = re.compile(r"<((?:[0-9A-Fa-f]{2}\s*)+)>")


def pdf_label(label: str) -> str:
    """A page label as text: PyMuPDF passes a label written as a hex string through as it stands
    (``<FEFF0031>``); that is UTF-16 with its byte order mark (or UTF-8 with its own), else PDFDocEncoding."""

    def decode(match: re.Match[str]) -> str:
        raw = bytes.fromhex(re.sub(r"\s", "", match.group(1)))
        for bom, codec in ((b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"), (b"\xef\xbb\xbf", "utf-8")):
            if raw.startswith(bom):
                return raw[len(bom) :].decode(codec, "replace")
        return raw.decode("latin-1")

    return HEX_STRING.sub(decode, label) if label and "<" in label else label
