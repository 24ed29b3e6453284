"""Layout analysis for the builtin engine: reading order across columns, running headers/footers, page numbers.

Reading order: the page's column gutters are found from the x-coverage of its text lines (a gutter is a band in the
middle of the page that almost no block crosses); blocks that cross a gutter (titles, wide figures, full-width
paragraphs) cut the page into bands; within a band, columns are read left to right, each top to bottom.

Furniture: a block in the top or bottom margin band is a running header/footer when its text (digits masked)
repeats on other pages of the document, when it is a page number, a running head with its folio or a
download/licence stamp, and, on a page of a longer document, a short line set apart from the body. A page's only
text is never furniture unless it is a page number, and a one-page document has no other running heads. Furniture
keeps its text and gets the kind ``header`` / ``footer`` / ``page_number``, so that Markdown can leave it out by
default and keep it with a switch.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from inference.documents.lines import MARKED
from inference.documents.model import Block, Document, Page

MARGIN_BAND = 0.085  # top / bottom fraction of the page where running headers and footers live
PAGE_NUMBER = re.compile(
    r"^\s*(?:page\s+|p\.\s*|-\s*)?(?:(?:\d{1,2}|[A-Z])\s?[-–]\s?)?"  # chapter-page: 7-45
    r"(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?\s*-?\s*$",
    re.I,
)
STAMP = re.compile(
    r"(downloaded\s+(from|by)|download\s+date|all rights reserved|©|copyright|licen[cs]ed under|"
    r"https?://|www\.|doi:|\bissn\b|published by|freely available online)",
    re.I,
)
FURNITURE = ("header", "footer", "page_number")


def analyse(doc: Document) -> Document:
    """Order every page's blocks and mark its furniture, in place; returns ``doc``."""
    repeats = _repeated_margin_texts(doc.pages)
    fixtures = _repeated_body_texts(doc.pages)
    seen: set[tuple[str, int, int]] = set()
    for page in doc.pages:
        if page.width and page.height and page.blocks:
            join_wrapped_items(page)
            mark_furniture(page, repeats, lone=len(doc.pages) == 1)
            mark_fixtures(page, fixtures, seen)
            if page.attrs.get("ocr") != "tesseract":  # Tesseract orders OCR pages itself, and well
                order_blocks(page)
    return doc


def join_wrapped_items(page: Page) -> None:
    """A list item's wrapped line that came out as a block of its own (set large on a slide, it reads as a
    heading: ``## per disk!``) goes back to its item: a block just below a list, indented past the list's
    marks, in type no larger than the list's, that starts in lower case or continues an unfinished item."""
    blocks = sorted(page.blocks, key=lambda b: (b.bbox[1], b.bbox[0]))
    gone: set[int] = set()
    for above, blk in zip(blocks, blocks[1:], strict=False):
        if id(above) in gone:
            continue
        if above.kind != "list" or MARKED.match(blk.text) or not blk.text:
            continue
        if not (blk.kind == "heading" or blk.kind == "text" and blk.text[:1].islower()):
            continue
        lines = max(1, len(above.text.splitlines()))
        line_height = (above.bbox[3] - above.bbox[1]) / lines
        size, list_size = blk.attrs.get("size"), above.attrs.get("size")
        unfinished = not above.text.rstrip().endswith((".", "!", "?", ":", ";"))
        if (
            -0.3 * line_height <= blk.bbox[1] - above.bbox[3] <= 0.8 * line_height
            and above.bbox[0] + 2 <= blk.bbox[0] <= above.bbox[2]
            and (not size or not list_size or size <= 1.1 * list_size)
            and (blk.text[:1].islower() or unfinished)
            and len(blk.text) < 200
        ):
            above.text = f"{above.text.rstrip()} {blk.text.strip()}"
            above.bbox = (
                min(above.bbox[0], blk.bbox[0]),
                min(above.bbox[1], blk.bbox[1]),
                max(above.bbox[2], blk.bbox[2]),
                max(above.bbox[3], blk.bbox[3]),
            )
            gone.add(id(blk))
    if gone:
        page.blocks = [b for b in page.blocks if id(b) not in gone]


def mark_fixtures(page: Page, fixtures: set[tuple[str, int, int]], seen: set[tuple[str, int, int]]) -> None:
    """Text repeated at the same place on most pages (a slide deck's sidebar, a logo's words) is kept where it
    first appears and marked ``header`` on every later page, so that it comes out once."""
    if not fixtures:
        return
    for blk in page.blocks:
        if blk.kind in FURNITURE or blk.kind in ("figure", "table"):
            continue
        key = _fixture_key(blk, page)
        if key in fixtures:
            if key in seen:
                blk.kind = "header"
            seen.add(key)


def _fixture_key(blk: Block, page: Page) -> tuple[str, int, int]:
    return (" ".join(blk.text.split()), round(20 * blk.bbox[0] / page.width), round(20 * blk.bbox[1] / page.height))


def _at_edge(blk: Block, page: Page) -> bool:
    """In a strip along the page's edge: the outer quarter of its width or the outer sixth of its height."""
    x0, y0, x1, y1 = blk.bbox
    return x1 <= 0.25 * page.width or x0 >= 0.75 * page.width or y1 <= page.height / 6 or y0 >= 5 * page.height / 6


def _repeated_body_texts(pages: list[Page]) -> set[tuple[str, int, int]]:
    """Texts along the page's edges (with where they sit, to a twentieth of the page) that repeat word for word
    on at least half the pages of a document of three or more pages."""
    if len(pages) < 3:
        return set()
    counts: Counter[tuple[str, int, int]] = Counter()
    for page in pages:
        if page.width and page.height:
            counts.update(
                {
                    _fixture_key(b, page)
                    for b in page.blocks
                    if b.kind not in ("figure", "table") and 0 < len(b.text.strip()) < 300 and _at_edge(b, page)
                }
            )
    need = max(3, (len(pages) + 1) // 2)
    return {key for key, n in counts.items() if n >= need and key[0].strip("# ")}


def order_blocks(page: Page) -> None:
    body = [b for b in page.blocks if b.kind not in FURNITURE]
    furniture = [b for b in page.blocks if b.kind in FURNITURE]
    ordered = reading_order(body, page.width)
    top = sorted((b for b in furniture if _centre_y(b) < page.height / 2), key=lambda b: (b.bbox[1], b.bbox[0]))
    bottom = sorted((b for b in furniture if _centre_y(b) >= page.height / 2), key=lambda b: (b.bbox[1], b.bbox[0]))
    for i, blk in enumerate(top + ordered + bottom):
        blk.order = i
    page.blocks = top + ordered + bottom


def reading_order(blocks: list[Block], page_width: float) -> list[Block]:
    if len(blocks) < 2:
        return list(blocks)
    gutters = find_gutters(blocks, page_width)
    if not gutters:
        return sorted(blocks, key=lambda b: (round(b.bbox[1], 0), b.bbox[0]))
    bounds = [0.0] + [(g0 + g1) / 2 for g0, g1 in gutters] + [float("inf")]

    def column(b: Block) -> int | None:
        for i in range(len(bounds) - 1):
            if b.bbox[0] >= bounds[i] - 2 and b.bbox[2] <= bounds[i + 1] + 2:
                return i
        return None  # crosses a gutter: spans columns

    def key(b: Block) -> tuple[int, float, float]:
        col = column(b)
        return (col if col is not None else -1, b.bbox[1], b.bbox[0])

    out: list[Block] = []
    band: list[Block] = []
    for blk in sorted(blocks, key=lambda b: (b.bbox[1], b.bbox[0])):
        if column(blk) is None and not any(
            _overlap_y(blk, other) for other in band if column(other) is not None and other.bbox[3] > blk.bbox[1] + 1
        ):
            out.extend(sorted(band, key=key))
            out.append(blk)
            band = []
        else:
            band.append(blk)
    out.extend(sorted(band, key=key))
    return out


def find_gutters(blocks: list[Block], page_width: float, min_gap: float | None = None) -> list[tuple[float, float]]:
    """Vertical bands in the middle of the page that (almost) no text crosses, weighted by block height.

    Coverage is counted on a half-point grid, so that a narrow gutter (8 points between justified columns of 9-point
    type) is not lost to rounding. A gap counts from ``min_gap`` points (default: half the body type size, at least
    4.5 points), which a paragraph's word spaces never make because a block's box covers them. Each side of a gutter
    must hold real text (a fifth of the column text's height, two blocks or one long one), so that a lone column of
    one tall block (a four-column page's last column) counts and a stray label does not.
    """
    import numpy as np

    if not page_width:
        return []
    text = [b for b in blocks if b.kind not in ("figure",) and b.text.strip()]
    if len(text) < 4:
        return []
    left = min(b.bbox[0] for b in text)
    right = max(b.bbox[2] for b in text)
    span = right - left
    if span < page_width * 0.3:
        return []
    if min_gap is None:
        sizes = sorted(b.attrs["size"] for b in text if b.attrs.get("size"))
        min_gap = max(4.5, 0.5 * sizes[len(sizes) // 2]) if sizes else 8.0
    step = 0.5
    cover = np.zeros(int(max(page_width, right) / step) + 2)
    narrow = [b for b in text if b.bbox[2] - b.bbox[0] <= 0.6 * span]  # full-width blocks say nothing about gutters
    total_height = 0.0
    for b in narrow:
        h = max(1.0, b.bbox[3] - b.bbox[1])
        total_height += h
        cover[max(0, int(b.bbox[0] / step)) : int(b.bbox[2] / step) + 1] += h
    lo, hi = int((left + 0.15 * span) / step), int((right - 0.15 * span) / step)
    free = cover[lo : hi + 1] <= 0.12 * total_height
    gutters = []
    x = 0
    while x < len(free):
        if free[x]:
            start = x
            while x < len(free) and free[x]:
                x += 1
            if (x - start) * step >= min_gap:
                gutters.append(((lo + start) * step, (lo + x) * step))
        x += 1

    def holds_text(side: list[Block]) -> bool:
        height = sum(b.bbox[3] - b.bbox[1] for b in side)
        return len(side) >= 2 or (len(side) == 1 and height >= 0.2 * total_height)

    return [
        g
        for g in gutters
        if holds_text([b for b in narrow if b.bbox[2] <= g[0] + 2])
        and holds_text([b for b in narrow if b.bbox[0] >= g[1] - 2])
    ]


def mark_furniture(page: Page, repeats: set[str], lone: bool = False) -> None:
    band = MARGIN_BAND * page.height
    texts = [b for b in page.blocks if b.kind not in ("figure", "table") and b.text.strip()]
    if not texts:
        return
    top_band = [b for b in texts if b.bbox[3] <= band * 1.4 and b.bbox[1] <= band]
    bottom_band = [b for b in texts if b.bbox[1] >= page.height - band * 1.4 and b.bbox[3] >= page.height - band]
    body = [b for b in texts if b not in top_band and b not in bottom_band]
    body_top = min((b.bbox[1] for b in body), default=page.height)
    body_bottom = max((b.bbox[3] for b in body), default=0.0)
    sizes = sorted(b.attrs["size"] for b in body if b.attrs.get("size"))
    body_size = sizes[len(sizes) // 2] if sizes else 0.0
    for blk in top_band + bottom_band:
        top = blk in top_band
        text = blk.text.strip()
        if PAGE_NUMBER.match(text):
            blk.kind = "page_number"
        elif body and (
            _mask(text) in repeats
            or _lone_furniture(blk, top, body_top, body_bottom, body_size, lone, page.attrs.get("ocr") is not None)
        ):
            # a page whose text is all in its margins keeps it: a line that repeats on every page of a document
            # with nothing else on its pages (a generated report, a label sheet) is its content, not a running head
            blk.kind = "header" if top else "footer"
    # a lone page number below (or above) everything else, wherever the page's content ends
    ordered = sorted(texts, key=lambda b: b.bbox[1])
    for blk, rest in ((ordered[-1], ordered[:-1]), (ordered[0], ordered[1:])):
        if blk.kind == "page_number" or not rest or not PAGE_NUMBER.match(blk.text.strip()):
            continue
        height = max(1.0, blk.bbox[3] - blk.bbox[1])
        below = blk is ordered[-1]
        gap = blk.bbox[1] - max(b.bbox[3] for b in rest) if below else min(b.bbox[1] for b in rest) - blk.bbox[3]
        if gap >= 1.5 * height:
            blk.kind = "page_number"


def _lone_furniture(
    blk: Block, top: bool, body_top: float, body_bottom: float, body_size: float, lone: bool, ocr: bool = False
) -> bool:
    """Margin text that does not repeat: a running head with its folio or a download/licence stamp; on a longer
    document's page also a short line above the body, set apart from it (a running head of its own), unless the
    page was read by OCR (its first lines are often its title). Text at the bottom that does not repeat is kept
    (a note, a signature, a closing line), unless it carries a folio."""
    text = blk.text.strip()
    if len(text) < 200 and STAMP.search(text):
        return True
    if lone:
        return bool(FOLIO.search(text)) and len(text.split()) <= 15 and not (blk.kind == "heading" and blk.level == 1)
    if not top or ocr:  # kept unless it carries a folio, or (at the bottom) is set small and apart
        size = blk.attrs.get("size")
        small = not top and bool(size and body_size and size < 0.92 * body_size)
        return (bool(FOLIO.search(text)) or small and _running_line(blk, top, body_top, body_bottom, body_size)) and (
            len(text.split()) <= 15 and blk.kind != "heading"
        )
    return _running_line(blk, top, body_top, body_bottom, body_size)


FOLIO = re.compile(r"^\s*(\d{2,4}|[ivxlc]{2,6})\s+\S|\S\s+(\d{2,4}|[ivxlc]{2,6})\s*$", re.I)


def _running_line(blk: Block, top: bool, body_top: float, body_bottom: float, body_size: float) -> bool:
    """A short line in the margin band, set apart from the body: a running head or foot of its own."""
    size = blk.attrs.get("size")
    if (
        len(blk.text.split()) > 15
        or (blk.kind == "heading" and blk.level == 1)
        or (size and body_size and size > 1.05 * body_size)
    ):
        return False  # long, or set larger than the body: a title or a sentence, not a running head
    if FOLIO.search(blk.text):
        return True
    if size and body_size and size < 0.92 * body_size:
        return True
    gap = body_top - blk.bbox[3] if top else blk.bbox[1] - body_bottom
    return gap >= 1.5 * max(1.0, blk.bbox[3] - blk.bbox[1])


def _repeated_margin_texts(pages: Iterable[Page]) -> set[str]:
    counts: Counter[str] = Counter()
    pages = list(pages)
    for page in pages:
        seen = set()
        band = MARGIN_BAND * page.height
        for blk in page.blocks:
            if blk.text.strip() and (blk.bbox[3] <= band * 1.4 or blk.bbox[1] >= page.height - band * 1.4):
                seen.add(_mask(blk.text))
        counts.update(seen)
    need = 2 if len(pages) <= 4 else max(2, len(pages) // 4)
    return {text for text, n in counts.items() if n >= need and text}


def _mask(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", text.strip().lower()))


def _centre_y(b: Block) -> float:
    return (b.bbox[1] + b.bbox[3]) / 2


def _overlap_y(a: Block, b: Block) -> bool:
    return min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1]) > 1
