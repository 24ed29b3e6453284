"""A PDF text layer's characters as text: glyph order, spaces, accents, ligatures, and glyphs with no Unicode map.

This is where PDF text enters the document model, so it is cleaned here, once: no control character, no lone
surrogate, no ligature character (``ﬁ`` -> ``fi``), no soft hyphen, and no U+FFFD from a layer that reads as text.

Order: a line's characters are taken in the order PyMuPDF extracts them, which is the order the font maps them
(a ligature glyph mapped to ``ff`` gives both letters at once, sometimes with odd boxes); they are sorted by
position only when that order runs clearly backwards (glyphs drawn out of order: ``371T .`` for ``3.71T``), and
then the letters of one glyph stay together.

Unmapped glyphs (a font with no Unicode map gives U+FFFD): a run of them is looked at on the rendered page. Dots
on a baseline are a leader (``...``), one round blob is a bullet (``•``), anything else is read by OCR for that run
only; what OCR cannot read is dropped with a note on the page.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from inference.documents.lines import SOFT_HYPHEN, expand_ligatures
from inference.documents.model import clean_text

UNMAPPED = "\ufffd"
LEADER = "..."
BACKWARDS_EM = 0.3  # a step back of more than this (in ems) means the glyphs were drawn out of order
SPACED_EM = 0.35  # in a line that has space characters, a gap is a space only from this wide (a column gap)
SHAPE_DPI = 150  # unmapped runs are told apart (leader, bullet, letters) on the page rendered at this resolution
MAX_RUNS_OCR = 200  # unmapped runs read by OCR on one page; past this the page is a case for whole-page OCR

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
SPACING = {v: k for k, v in ACCENTS.items()}


def clean_chars(line: dict) -> None:
    """Every character of ``line`` fit for the model, in place: no control character or lone surrogate,
    presentation forms as their letters, ligature characters as their letters, no soft hyphen inside a word."""
    for span in line["spans"]:
        for c in span["chars"]:
            ch = c["c"]
            if not ch.isprintable() and not ch.isspace() or "\ufb50" <= ch[:1] <= "\ufefc":
                ch = clean_text(ch) if len(ch) == 1 else UNMAPPED  # presentation forms: letters
            c["c"] = expand_ligatures(ch)
        span["text"] = "".join(c["c"] for c in span["chars"])
    _raise_superscripts(line)


SUPERSCRIPT = str.maketrans("0123456789+-=()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾")
SUPERSCRIPT_SIZE = 0.85  # a superscript span is set this much smaller than the text before it, or smaller


def _raise_superscripts(line: dict) -> None:
    """Digits set as a superscript right after text (a footnote mark after a number, ``273.879.750¹``; an exponent,
    ``10²``) as superscript characters: read as plain digits they join the number before them (``273.879.7501``).
    A span is a superscript when PyMuPDF flags it so (bit 1), it is smaller than the span before it, and it holds
    only digits and signs."""
    spans = line["spans"]
    for before, span in zip(spans, spans[1:], strict=False):
        text = span["text"]
        if not (span["flags"] & 1 and text and before["text"][-1:].strip()) or text.translate(SUPERSCRIPT) == text:
            continue
        if span["size"] > SUPERSCRIPT_SIZE * before["size"] or not all(ch in "0123456789+-=()" for ch in text):
            continue
        for c in span["chars"]:
            c["c"] = c["c"].translate(SUPERSCRIPT)
        span["text"] = "".join(c["c"] for c in span["chars"])


def line_text(line: dict) -> str:
    """A line's text from its characters, with a space wherever the gap between glyphs is wide.

    Some PDFs position every glyph with kerning and no space characters (``Table1 Compositionofthe``): gaps
    become spaces. A line that has space characters of its own only gets another one at a wide gap, so that
    kerned capitals (``{P aris}``) are not split.
    """
    chars = [(c, span["size"]) for span in line["spans"] for c in span["chars"]]
    if not chars:
        return ""
    spaced = {id(c) for span in line["spans"] if _writes_spaces(span["chars"]) for c in span["chars"]}
    dx, dy = line.get("dir", (1, 0))
    return chars_text(chars, ordered=abs(dy) < 1e-3 and dx > 0, spaced=spaced)


def _writes_spaces(chars: list[dict]) -> bool:
    """A span whose words are separated by space characters (one in twelve characters or more)."""
    return len(chars) >= 12 and sum(1 for c in chars if c["c"] == " ") * 12 >= len(chars)


def glyph_order(chars: list[tuple[dict, float]]) -> list[tuple[dict, float]]:
    """``chars`` in extraction order, or by position where that order runs clearly backwards; the letters of one
    glyph (a ligature: the second letter has no width or starts inside the first) stay together either way."""
    clusters: list[list[tuple[dict, float]]] = []
    backwards = False
    for cs in chars:
        c, size = cs
        x0, x1 = c["bbox"][0], c["bbox"][2]
        if clusters:
            head = clusters[-1][0][0]
            if x1 - x0 < 0.02 * size or head["bbox"][0] - 0.05 * size <= x0 < head["bbox"][2] - 0.1 * size:
                clusters[-1].append(cs)  # part of the glyph before: a ligature's second letter
                continue
            if head["bbox"][0] - x0 > BACKWARDS_EM * size:
                backwards = True
        clusters.append([cs])
    if backwards:
        clusters.sort(key=lambda cl: cl[0][0]["origin"][0])
    return [cs for cl in clusters for cs in cl]


def chars_text(chars: list[tuple[dict, float]], ordered: bool = True, spaced: set[int] | None = None) -> str:
    """Characters (with their type size) as text. ``spaced``: the ids of characters of spans that write their own
    spaces; between two of them, a gap is a space only from ``SPACED_EM``."""
    rtl = any("\u0590" <= c["c"][:1] <= "\u08ff" or "\ufb1d" <= c["c"][:1] <= "\ufefc" for c, _ in chars)
    if ordered and not rtl:
        chars = glyph_order(chars)
    out: list[str] = []
    prev_x1 = None
    accent: tuple[str, float] | None = None  # an accent drawn before the letter it sits on
    spaced = spaced or set()
    gap = space_gap(chars)
    prev_id = None
    for c, size in chars:
        space = SPACED_EM if id(c) in spaced and prev_id in spaced else gap
        prev_id = id(c)
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
                out.append(SPACING[accent[0]])  # a lone accent stays as it was
            accent = None
        if prev_x1 is not None and not ch.isspace() and out and not out[-1].isspace() and x0 - prev_x1 > space * size:
            out.append(" ")
        out.append(ch)
        prev_x1 = x1 if prev_x1 is None or rtl else max(prev_x1, x1)
    if accent is not None:
        out.append(SPACING[accent[0]])
    text = re.sub(r"\s+", " ", "".join(out)).strip()
    return re.sub(r"\u00ad\s*(?=\S)", "", text) if SOFT_HYPHEN in text else text  # one at the end: a line break


def space_gap(chars: list[tuple[dict, float]]) -> float:
    """The gap (in ems) between glyphs that reads as a space: 0.22, or less where the letters touch (tight bold type
    drawn without space characters has word gaps of 0.13 em): a gap clearly above the usual one is a space."""
    gaps = sorted(
        (b["bbox"][0] - a["bbox"][2]) / max(size, 1.0)
        for (a, size), (b, _) in zip(chars, chars[1:], strict=False)
        if not a["c"].isspace() and not b["c"].isspace() and b["bbox"][2] - b["bbox"][0] > 0.02 * size
    )
    if len(gaps) < 8:
        return 0.22
    return min(0.22, max(gaps[len(gaps) // 2], 0.0) + 0.1)


# unmapped glyphs ----------------------------------------------------------------------------------------------------


def unmapped_runs(span: dict) -> list[tuple[int, int]]:
    """``(start, end)`` index ranges of the span's consecutive U+FFFD characters."""
    runs, start = [], None
    chars = span["chars"]
    for i, c in enumerate(chars + [{"c": ""}]):
        if c["c"] == UNMAPPED and start is None:
            start = i
        elif c["c"] != UNMAPPED and start is not None:
            runs.append((start, i))
            start = None
    return runs


def read_unmapped(page: Any, text_blocks: list[dict], ocr: bool) -> int:
    """Every run of unmapped glyphs on the page replaced, in place, by what it shows: a leader, a bullet, or
    (with ``ocr``) the text OCR reads in that run's box. Returns how many glyphs were left unread (dropped)."""
    runs = [
        (span, start, end)
        for b in text_blocks
        for ln in b["lines"]
        for span in ln["spans"]
        for start, end in unmapped_runs(span)
    ]
    if not runs:
        return 0
    unread = 0
    whole: list[Any] = []  # the page rendered once, for the shapes of all its runs
    for n, (span, start, end) in enumerate(reversed(runs)):  # from the end: indices before stay valid
        chars = span["chars"][start:end]
        box = (
            min(c["bbox"][0] for c in chars),
            min(c["bbox"][1] for c in chars),
            max(c["bbox"][2] for c in chars),
            max(c["bbox"][3] for c in chars),
        )
        shown = _shape_of(page, box, whole)
        if shown is None and ocr and n < MAX_RUNS_OCR:
            shown = _ocr_box(page, box)
        if shown is None:
            if not ocr:
                continue  # left for the layer's judgement (whole-page OCR where it is mostly unmapped)
            unread += end - start
            shown = ""
        merged = dict(chars[0], c=shown, bbox=box)
        span["chars"][start:end] = [merged] if shown else []
        span["text"] = "".join(c["c"] for c in span["chars"])
    return unread


def _render_gray(page: Any, box: tuple | None, dpi: int) -> Any:
    """The page (``box`` None) or a box of it (display coordinates, a point of margin) as a grey array."""
    import numpy as np
    import pymupdf

    clip = None
    if box is not None:
        clip = pymupdf.Rect(box) + (-1, -1, 1, 1)
        if page.rotation:
            clip = clip * page.derotation_matrix
    pix = page.get_pixmap(clip=clip, dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]


def _shape_of(page: Any, box: tuple, whole: list[Any]) -> str | None:
    """``...`` when the box shows small dots on one baseline (a leader), ``•`` when it shows one round blob in
    the middle (a bullet), ``""`` when it shows nothing; None for anything else (letters). ``whole`` caches the
    page's rendering (150 dpi) across the runs of one page."""
    import cv2

    if not whole:
        try:
            whole.append(_render_gray(page, None, SHAPE_DPI))
        except (RuntimeError, ValueError):
            whole.append(None)
    if whole[0] is None:
        return None
    k = SHAPE_DPI / 72
    x0, y0 = max(0, int((box[0] - page.rect.x0) * k)), max(0, int((box[1] - page.rect.y0) * k))
    gray = whole[0][y0 : int((box[3] - page.rect.y0) * k) + 3, x0 : int((box[2] - page.rect.x0) * k) + 3]
    if gray.size == 0:
        return None
    ink = (gray < 128).astype("uint8")
    if not ink.any():
        return ""
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    comps = [s for s in stats[1:] if s[4] >= 1]
    height = ink.shape[0]
    if len(comps) >= 3 and all(s[3] <= 0.3 * height and s[2] <= 0.3 * height for s in comps):
        bottoms = [s[1] + s[3] for s in comps]
        if max(bottoms) - min(bottoms) <= 0.15 * height:
            return LEADER
    if len(comps) == 1:
        x, y, w, h, area = comps[0]
        if 0.15 * height <= h <= 0.6 * height and 0.6 <= w / max(h, 1) <= 1.6 and area >= 0.5 * w * h:
            return "\u2022"
    return None


def _ocr_box(page: Any, box: tuple) -> str | None:
    """The text in ``box`` read by Tesseract as one line (English, or the first installed language); None when
    OCR is not installed or reads nothing."""
    try:
        import tesserocr
        from PIL import Image

        from inference.ocr.tesseract import installed_languages, tessdata_path

        langs = installed_languages()
        lang = "eng" if "eng" in langs else (langs[0] if langs else "eng")
        gray = _render_gray(page, box, 300)
        import numpy as np

        padded = np.pad(gray, 12, constant_values=255)
        with tesserocr.PyTessBaseAPI(path=tessdata_path(lang), lang=lang, psm=tesserocr.PSM.SINGLE_LINE) as api:
            api.SetImage(Image.fromarray(padded))
            text = " ".join((api.GetUTF8Text() or "").split())
    except Exception:  # noqa: BLE001 - no OCR here: the run is dropped with a note, never kept as U+FFFD
        return None
    return expand_ligatures(text) or None
