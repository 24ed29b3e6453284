"""Searchable PDF: the document's pages with an invisible text layer where OCR found the words (as OCRmyPDF does).

Born-digital PDF pages are copied as they are (their own text layer stays); pages read by OCR, images and video
frames become the page image with each recognised word drawn in invisible text (render mode 3) over its box, so
that selecting, searching and copying in any viewer finds the words where the picture shows them.
"""

from __future__ import annotations

from typing import Any

from inference.documents.model import Document, Page
from inference.tasks.base import ParseResult

IMAGE_DPI = 200  # page images: sharp enough to read, small enough to keep the file reasonable
PIXEL_PAGE = 72 / 150  # an image or video frame: its pixels laid out as a 150 dpi page


def to_searchable_pdf(result: ParseResult) -> bytes:
    """The searchable PDF of a parsed document, as bytes."""
    import pymupdf

    doc = result.document
    source = _open_source(doc)
    out = pymupdf.open()
    try:
        for page in doc.pages:
            if source is not None and not page.attrs.get("ocr") and 0 < page.number <= source.page_count:
                out.insert_pdf(source, from_page=page.number - 1, to_page=page.number - 1)
                continue
            _image_page(out, doc, page)
        if out.page_count == 0:
            out.new_page()
        out.subset_fonts()
        return out.tobytes(garbage=3, deflate=True)
    finally:
        out.close()
        if source is not None:
            source.close()


def _open_source(doc: Document) -> Any:
    """The original PDF when it opens without a password; None otherwise (its pages are then drawn as images)."""
    import pymupdf

    if doc.kind != "pdf":
        return None
    try:
        src = pymupdf.open(doc.source)
    except (pymupdf.FileDataError, RuntimeError, ValueError, OSError):
        return None
    if src.needs_pass:
        src.close()
        return None
    return src


def _image_page(out: Any, doc: Document, page: Page) -> None:
    import pymupdf

    scale = 1.0 if doc.kind == "pdf" else PIXEL_PAGE
    width, height = (page.width or 612) * scale, (page.height or 792) * scale
    target = out.new_page(width=width, height=height)
    try:
        image = doc.render(page.number, IMAGE_DPI if doc.kind == "pdf" else 0)
    except Exception:  # noqa: BLE001 - a page that cannot be drawn still gets its text layer
        image = None
    if image is not None:
        import io

        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=80)
        target.insert_image(target.rect, stream=buf.getvalue())
    fonts = {"helv": pymupdf.Font("helv"), "china-s": pymupdf.Font("cjk")}
    for block in page.blocks:
        for text, x0, y0, x1, y1 in _words(block):
            _place(target, fonts, text, pymupdf.Rect(x0, y0, x1, y1) * scale)


def _words(block: Any) -> list[tuple[str, float, float, float, float]]:
    """A block's words with their boxes; a block without word boxes spreads its text over its own box."""
    words = block.attrs.get("words") if block.attrs else None
    if words:
        return [tuple(w[:5]) for w in words]  # text and box (a sixth item is the OCR confidence)
    x0, y0, x1, y1 = block.bbox
    if not block.text.strip() or x1 <= x0 or y1 <= y0:
        return []
    return [(" ".join(block.text.split()), x0, y0, x1, min(y1, y0 + (y1 - y0)))]


def _place(target: Any, fonts: dict[str, Any], text: str, box: Any) -> None:
    """One word in invisible text (render mode 3) filling its box: its size from the box's height, its width
    stretched or squeezed to the box's width, so that a viewer selects it where the picture shows it."""
    import pymupdf

    if box.is_empty or not text:
        return
    name = "helv" if all(ord(ch) < 256 for ch in text) else "china-s"
    size = max(box.height * 0.85, 1.0)
    natural = fonts[name].text_length(text, fontsize=size)
    stretch = box.width / natural if natural > 0 else 1.0
    baseline = pymupdf.Point(box.x0, box.y1 - box.height * 0.2)
    target.insert_text(
        baseline, text, fontname=name, fontsize=size, render_mode=3, morph=(baseline, pymupdf.Matrix(stretch, 1))
    )
