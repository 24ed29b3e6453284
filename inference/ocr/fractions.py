"""Vulgar fractions ("3½", "¼") on scanned pages, which Tesseract's English model cannot output.

The model's character set has no "½": it reads the glyph as "%", "Y2", "¥", "12" or "3%". A fraction glyph is told
by its ink instead. In a line that has a word with a digit or one of those misreads, the line's connected components
are searched for a diagonal stroke with small digits on either side: a numerator above and left of the stroke's
centre, a denominator below and right of it, each at most 0.7 of the whole glyph's height (a "1/2" typed with
full-size digits, a date "3/4/2024" and a footnote mark stay as read). Numerator and denominator are then read on
their own, scaled up, digits only. A "%" has the same shape, but its rings read as "0": nothing is changed then.
The symbols Tesseract made of the glyph are replaced by the Unicode fraction ("½"), or by ``n⁄d`` with U+2044 when
Unicode has none; the word keeps its box, so that the searchable PDF's text layer stays where the ink is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

VULGAR = {
    (1, 2): "½",
    (1, 3): "⅓",
    (2, 3): "⅔",
    (1, 4): "¼",
    (3, 4): "¾",
    (1, 5): "⅕",
    (2, 5): "⅖",
    (3, 5): "⅗",
    (4, 5): "⅘",
    (1, 6): "⅙",
    (5, 6): "⅚",
    (1, 7): "⅐",
    (1, 8): "⅛",
    (3, 8): "⅜",
    (5, 8): "⅝",
    (7, 8): "⅞",
    (1, 9): "⅑",
    (1, 10): "⅒",
}
FRACTION_SLASH = "\u2044"
# what Tesseract's eng model makes of a fraction glyph, besides digits
MISREADS = frozenset("%‰¥YVvy/\\")
MAX_PART = 0.7  # a numerator or denominator is at most this share of the glyph's height (full-size digits: 0.8+)
MIN_PART = 0.2  # and at least this (a full stop beside a slash is no denominator)
MIN_DIGIT_CONFIDENCE = 40.0
DIGIT_HEIGHT = 48  # pixels: a numerator or denominator is scaled to this before it is read

Box = tuple[float, float, float, float]
Word = tuple[str, Box]


@dataclass(frozen=True)
class Blob:
    x0: int
    y0: int
    x1: int
    y1: int
    label: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True)
class FractionInk:
    """A fraction glyph found in a line crop: its x-range and the components of its numerator and denominator."""

    x0: int
    x1: int
    numerator: tuple[Blob, ...]
    denominator: tuple[Blob, ...]


def is_candidate(text: str) -> bool:
    """Whether a word may hold a fraction glyph: it has a digit or one of Tesseract's misreads of one, or it is
    short (a lone "⅔" can come out as "s")."""
    return len(text) <= 2 or any(ch.isdigit() or ch in MISREADS for ch in text)


def _diagonal(labels: np.ndarray, blob: Blob) -> bool:
    """A stroke rising to the right: thin for its box, its ink's x falling as y grows (image coordinates)."""
    w, h = blob.x1 - blob.x0, blob.h
    if w < 3 or h < 3 or w > 3.5 * h:
        return False
    ys, xs = np.nonzero(labels[blob.y0 : blob.y1, blob.x0 : blob.x1] == blob.label)
    if len(xs) > 0.6 * w * h or xs.std() == 0 or ys.std() == 0:
        return False
    return float(np.corrcoef(xs, ys)[0, 1]) <= -0.75


def _chain(first: Blob, others: list[Blob], step: int, gap: float) -> tuple[Blob, ...]:
    """``first`` and the blobs next to it (leftwards when ``step`` is -1) of about its height and level: the digits
    of a two-digit numerator or denominator."""
    out = [first]
    for blob in sorted(others, key=lambda b: step * b.x0):
        last = out[-1]
        near = blob.x0 - last.x1 if step > 0 else last.x0 - blob.x1
        if 0 <= near + 1 <= gap and abs(blob.h - first.h) <= 0.3 * first.h and abs(blob.cy - first.cy) <= 0.3 * first.h:
            out.append(blob)
    return tuple(sorted(out, key=lambda b: b.x0))


def _ring(labels: np.ndarray, blob: Blob) -> bool:
    """A "0" or "o": one component around a hole of at least 0.27 of its box. The rings of a "%" in a regular
    weight are such; a small 6 or 8 is close (up to 0.25), which is why a "%" needs two of them."""
    import cv2

    mine = labels[blob.y0 : blob.y1, blob.x0 : blob.x1] == blob.label
    outside = np.pad(~mine, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    count, _, stats, _ = cv2.connectedComponentsWithStats((outside == 1).astype(np.uint8), connectivity=4)
    return count > 1 and int(stats[1:, cv2.CC_STAT_AREA].max()) >= 0.27 * mine.size


def _sides(slash: Blob, blobs: list[Blob], height: int) -> tuple[list[Blob], list[Blob]]:
    """The blobs above and left of the slash's centre (numerator), and below and right of it (denominator)."""
    gap = 0.3 * height
    above, below = [], []
    for b in blobs:
        if b is slash:
            continue
        if b.cx < slash.cx and b.cy < slash.cy and slash.x0 - gap <= b.x1 <= slash.x1 and b.y1 <= slash.cy + gap:
            above.append(b)
        elif b.cx > slash.cx and b.cy > slash.cy and slash.x0 <= b.x0 <= slash.x1 + gap and b.y0 >= slash.cy - gap:
            below.append(b)
    return above, below


def _fraction_shaped(numerator: tuple[Blob, ...], slash: Blob, denominator: tuple[Blob, ...], height: int) -> bool:
    """Numerator and denominator each a small share of the glyph, one raised, the other lowered."""
    parts = (*numerator, slash, *denominator)
    top, bottom = min(b.y0 for b in parts), max(b.y1 for b in parts)
    glyph = bottom - top
    num_top, num_bottom = min(b.y0 for b in numerator), max(b.y1 for b in numerator)
    den_top, den_bottom = min(b.y0 for b in denominator), max(b.y1 for b in denominator)
    return (
        glyph >= 0.4 * height
        and MIN_PART * glyph <= num_bottom - num_top <= MAX_PART * glyph
        and MIN_PART * glyph <= den_bottom - den_top <= MAX_PART * glyph
        and num_top - top <= 0.2 * glyph  # raised
        and bottom - den_bottom <= 0.2 * glyph  # lowered
        and den_top >= num_top + 0.4 * (num_bottom - num_top)  # one above the other, not side by side
    )


def find_fractions(ink: np.ndarray, spans: list[tuple[float, float]]) -> tuple[list[FractionInk], np.ndarray]:
    """Fraction glyphs in a line's ink mask (True where ink) whose stroke lies in one of ``spans`` (x-ranges: the
    words that may hold one), left to right; and the mask's component labels."""
    import cv2

    height = ink.shape[0]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    gap = 0.3 * height  # a numerator or denominator lies within this of its stroke (``_sides``, ``_chain``)
    blobs = [
        Blob(int(x), int(y), int(x + w), int(y + h), i)
        for i, (x, y, w, h, area) in enumerate(stats[1:count].tolist(), start=1)
        if area >= 4 and h >= 3 and any(a - gap <= x + w and x <= b + gap for a, b in spans)
    ]  # only the ink in and beside the words that may hold a fraction: the rest of the line is never compared
    found: list[FractionInk] = []
    for slash in blobs:
        if max(slash.h, slash.x1 - slash.x0) < 0.2 * height or not any(a < slash.x1 and slash.x0 < b for a, b in spans):
            continue
        above, below = _sides(slash, blobs, height)
        if not above or not below or not _diagonal(labels, slash):
            continue
        numerator = _chain(max(above, key=lambda b: b.x1), above, -1, 0.3 * height)
        denominator = _chain(min(below, key=lambda b: b.x0), below, 1, 0.3 * height)
        if not _fraction_shaped(numerator, slash, denominator, height):
            continue
        if all(len(part) == 1 and _ring(labels, part[0]) for part in (numerator, denominator)):
            continue  # a "%" (a bold one's rings are thicker: its digits read as 0 and it is dropped then)
        x0 = min(numerator[0].x0, slash.x0)
        x1 = max(denominator[-1].x1, slash.x1)
        if not any(f.x0 < x1 and x0 < f.x1 for f in found):
            found.append(FractionInk(x0, x1, numerator, denominator))
    found.sort(key=lambda f: f.x0)
    return found, labels


class DigitReader:
    """Reads the small digits of a numerator or denominator: a Tesseract instance of its own (digits only, one
    line), started the first time a fraction is found, closed with the page."""

    def __init__(self, path: str, lang: str) -> None:
        self.path, self.lang = path, lang
        self.api: Any = None

    def __enter__(self) -> DigitReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.api is not None:
            self.api.End()
            self.api = None

    def read(self, gray: np.ndarray) -> str | None:
        """The digits of a grey crop (ink dark, all else white), or None when they do not read as digits with
        confidence."""
        import tesserocr
        from PIL import Image

        if self.api is None:
            self.api = tesserocr.PyTessBaseAPI(path=self.path, lang=self.lang, psm=tesserocr.PSM.SINGLE_WORD)
            self.api.SetVariable("tessedit_char_whitelist", "0123456789")
        h, w = gray.shape
        scale = DIGIT_HEIGHT / max(1, h)  # Tesseract reads digits 20-50 px high best; these are often under 15
        image = Image.fromarray(gray).resize((max(1, round(w * scale)), DIGIT_HEIGHT), Image.Resampling.BILINEAR)
        padded = Image.new("L", (image.width + DIGIT_HEIGHT, 2 * DIGIT_HEIGHT), 255)
        padded.paste(image, (DIGIT_HEIGHT // 2, DIGIT_HEIGHT // 2))
        self.api.SetImage(padded)
        text = (self.api.GetUTF8Text() or "").strip().replace(" ", "")
        if not text.isdigit() or len(text) > 2 or self.api.MeanTextConf() < MIN_DIGIT_CONFIDENCE:
            return None
        return text


def fraction_text(numerator: str, denominator: str) -> str | None:
    """ "½" for 1 and 2, ``n⁄d`` when Unicode has no glyph; None for what is no proper fraction ("%" reads 0
    over 0; a digit misread as a smaller one gives "1⁄1" or "7⁄3")."""
    if numerator.startswith("0") or denominator.startswith("0") or int(numerator) >= int(denominator):
        return None
    return VULGAR.get((int(numerator), int(denominator)), f"{numerator}{FRACTION_SLASH}{denominator}")


def _parts(gray: np.ndarray, labels: np.ndarray, blobs: tuple[Blob, ...]) -> np.ndarray:
    """The grey crop of a numerator or denominator with every other component (the slash) whitened."""
    import cv2

    x0, y0 = max(0, min(b.x0 for b in blobs) - 1), max(0, min(b.y0 for b in blobs) - 1)
    x1, y1 = max(b.x1 for b in blobs) + 1, max(b.y1 for b in blobs) + 1
    mine = np.isin(labels[y0:y1, x0:x1], [b.label for b in blobs]).astype(np.uint8)
    keep = cv2.dilate(mine, np.ones((3, 3), np.uint8)).astype(bool)  # the anti-aliased rim around the ink
    return np.where(keep, gray[y0:y1, x0:x1], 255).astype(np.uint8)


def _replace(word: Word, symbols: list[Word], x0: float, x1: float, fraction: str) -> str:
    """The word's text with the symbols that lie mostly within ``x0..x1`` (all of them when the word's box lies
    within the fraction) replaced by ``fraction``. A digit whose box is a sliver is kept: Tesseract gives the whole
    number before a glyph ("2" of "2¾") a box one pixel wide at the glyph's left edge."""
    box = word[1]
    slack = 0.15 * (x1 - x0)
    whole = box[0] >= x0 - slack and box[2] <= x1 + slack
    sliver = 0.15 * (box[3] - box[1])
    out, placed = [], False
    for text, (sx0, _, sx1, _) in symbols:
        if sx1 - sx0 <= sliver:
            if text.isdigit():
                out.append(text)
            continue
        inside = max(0.0, min(sx1, x1) - max(sx0, x0))
        if whole or inside > 0.5 * (sx1 - sx0):
            if not placed:
                out.append(fraction)
                placed = True
            continue
        if not placed and sx0 >= x1:
            out.append(fraction)
            placed = True
        if placed and out[-1] == fraction and text.isalnum() and sx0 - x1 > 0.25 * (box[3] - box[1]):
            out.append(" ")  # Tesseract ran the glyph into the next word ("¥Ysand" for "⅛ and")
        out.append(text)
    if not placed:
        out.append(fraction)
    return "".join(out)


def with_fractions(line: Any, image: Any, symbols: dict[Word, list[Word]], reader: DigitReader) -> Any:
    """The OCR line (``ocr.OcrLine``) with fraction glyphs read as fractions, its words' text to match."""
    if not any(is_candidate(text) for text, _ in line.words):
        return line
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in line.bbox)
    pad = max(2, (y1 - y0) // 8)
    left, top = max(0, x0 - pad), max(0, y0 - pad)
    gray = np.asarray(image.crop((left, top, min(image.width, x1 + pad), min(image.height, y1 + pad))).convert("L"))
    if gray.size == 0:
        return line
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = gray <= min(float(threshold), 200.0)  # a bilevel line: Otsu's threshold is its ink level
    if not ink.any():
        return line
    spans = [(b[0] - left, b[2] - left) for text, b in line.words if is_candidate(text)]
    fractions, labels = find_fractions(ink, spans)
    words = list(line.words)
    changed = False
    for frac in fractions:
        fx0, fx1 = frac.x0 + left, frac.x1 + left
        hits = [i for i, (_, b) in enumerate(words) if b[0] < fx1 and fx0 < b[2] and is_candidate(words[i][0])]
        if len(hits) != 1:  # a fraction split over two words or outside any candidate: left as read
            continue
        num, den = (
            reader.read(_parts(gray, labels, frac.numerator)),
            reader.read(_parts(gray, labels, frac.denominator)),
        )
        text = fraction_text(num, den) if num and den else None
        if text is None:
            continue
        i = hits[0]
        words[i] = (_replace(words[i], symbols.get(line.words[i], []), fx0, fx1, text), words[i][1])
        changed = True
    if not changed:
        return line
    text = _retext(line.text, line.words, words)
    return dataclasses.replace(line, text=text, words=[part for word in words for part in _split(word, line.words)])


def _split(word: Word, old: list[Word]) -> list[Word]:
    """A word that a fraction and a space now part, as two words: the box cut at the space."""
    text, (x0, y0, x1, y1) = word
    if " " not in text or word in old:
        return [word]
    head, tail = text.split(" ", 1)
    cut = x0 + (x1 - x0) * len(head) / len(text)
    return [(head, (x0, y0, cut, y1)), (tail, (cut, y0, x1, y1))]


def _retext(text: str, old: list[Word], new: list[Word]) -> str:
    """The line's text with each changed word replaced in place (in order); the words joined by spaces when the
    line's text does not hold them in order."""
    out, pos = [], 0
    for (before, _), (after, _) in zip(old, new, strict=True):
        at = text.find(before, pos)
        if at < 0:
            return " ".join(w for w, _ in new)
        out.append(text[pos:at] + after)
        pos = at + len(before)
    return "".join(out) + text[pos:]
