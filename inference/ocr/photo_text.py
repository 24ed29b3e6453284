"""Typed text inside photographs: speech bubbles, signs, labels and caption boxes (``documents.panels``).

On a page taken for a photograph, each panel is cut out (its outside painted in its own background, light text on
a dark panel inverted), deskewed, scaled up when its letters are small, and read on its own as one block of text.
Tesseract's reading of the whole photograph keeps only its confident lines outside the panels: the texture of a
photograph reads as junk ("X ] - it P S") that a reader must never see as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.documents.model import Block
from inference.ocr.scan import ScanOptions, clean_scan, to_before

PANEL_PAD = 24  # pixels of background added around a panel: Tesseract reads text at an image's edge badly
PANEL_CLEANUP = ScanOptions(orientation=False, crop=False)  # a panel's text is upright; its box is kept
MIN_PANEL_CONFIDENCE = 60.0  # Tesseract's line confidence for a panel's line
MIN_PHOTO_CONFIDENCE = 85.0  # ... for a line read elsewhere on a photograph
BAR = re.compile(r"(?<!\S)\|(?!\S)")  # "|" standing alone as a word
WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more


@dataclass
class PanelCrop:
    image: Any  # PIL grey image: dark text on light, outside the panel painted as its background
    origin: tuple[float, float]  # where the crop's (0, 0) lies in the rendered page, in pixels
    scale: float  # the crop's pixels per rendered page pixel
    box: tuple[int, int, int, int]  # the panel in the rendered page, in pixels


def panel_crops(image: Any) -> list[PanelCrop] | None:
    """The panels of a photograph (``image`` as rendered) cut out for OCR, each scaled on its own for its letters;
    None when the page is no photograph."""
    from PIL import Image

    from inference.ocr.photo_panels import find_panels, photographic
    from inference.ocr.tesseract import ocr_scale

    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if not photographic(rgb):
        return None
    gray = np.asarray(image.convert("L"))
    crops = []
    for panel in find_panels(rgb):
        x0, y0, x1, y1 = panel.box
        part = gray[y0:y1, x0:x1]
        part = 255 - part if panel.dark else part.copy()
        level = int(np.median(part[panel.mask])) if panel.mask.any() else 255
        part[~panel.mask] = level
        part = np.pad(part, PANEL_PAD, constant_values=level)
        crop = Image.fromarray(part)
        scale = ocr_scale(crop)
        if scale != 1.0:
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS)
        crops.append(PanelCrop(crop, (x0 - PANEL_PAD, y0 - PANEL_PAD), scale, panel.box))
    return crops


def read_panels(crops: list[PanelCrop], lang: str) -> list[tuple[str, tuple, list]]:
    """Each panel's confident lines as one paragraph (text, box, lines), boxes in page-image pixels."""
    import tesserocr

    from inference.ocr.tesseract import ocr_image, paragraph

    paragraphs = []
    for crop in crops:
        cleaned = clean_scan(crop.image, PANEL_CLEANUP)
        lines = [
            _moved(ln, cleaned, crop)
            for _, _, read in ocr_image(cleaned.after, lang, psm=tesserocr.PSM.SINGLE_BLOCK)
            for ln in read
            if ln.confidence >= MIN_PANEL_CONFIDENCE and _wordy(ln.text)
        ]
        if lines:
            paragraphs.append(paragraph(lines, None))
    return paragraphs


def _wordy(text: str) -> bool:
    """A line that reads as words: one of two letters or more, and mostly letters and digits."""
    plain = text.replace(" ", "")
    return bool(WORD.search(text)) and sum(ch.isalnum() for ch in plain) >= 0.7 * len(plain)


def _moved(line: Any, cleaned: Any, crop: PanelCrop) -> Any:
    """A panel's line with its boxes in page-image pixels."""
    import dataclasses

    def back(box: tuple) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = to_before(cleaned, box)
        ox, oy = crop.origin
        return (ox + x0 / crop.scale, oy + y0 / crop.scale, ox + x1 / crop.scale, oy + y1 / crop.scale)

    words = [("I" if w == "|" else w, back(b)) for w, b in line.words]  # a bar alone: a sans-serif capital I
    box = back(line.bbox)
    text = BAR.sub("I", line.text)
    confidences = {back(b): c for b, c in line.word_confidences.items()}
    return dataclasses.replace(
        line, text=text, bbox=box, height=box[3] - box[1], words=words, word_confidences=confidences
    )


def photo_blocks(
    paragraphs: list, panels: list, crops: list[PanelCrop], cleaned: Any, sx: float, sy: float, scale: float
) -> list[Block]:
    """A photograph's blocks, top to bottom and left to right: its panels' text (``panels``, in the rendered
    page's pixels) and the confident lines Tesseract read outside them (``paragraphs``, in the cleaned page's
    pixels; the cleaned page is the rendered one times ``scale``, then cleaned); ``sx``, ``sy`` map the scaled
    page's pixels to page coordinates."""
    from inference.ocr.tesseract import paragraph, to_page

    boxes = [tuple(v * scale for v in c.box) for c in crops]
    found: list[tuple[tuple, str, list]] = []
    for _, _, lines in paragraphs:
        kept = [ln for ln in lines if ln.confidence >= MIN_PHOTO_CONFIDENCE and _wordy(ln.text)]
        kept = [ln for ln in kept if not any(_centre_in(to_before(cleaned, ln.bbox), b) for b in boxes)]
        if kept:
            text, box, _ = paragraph(kept, None)
            words = [
                [w, *(round(v, 1) for v in to_page(cleaned, b, sx, sy)), ln.word_confidences.get(b, ln.confidence)]
                for ln in kept
                for w, b in ln.words
            ]
            found.append((to_page(cleaned, box, sx, sy), text, words))
    px, py = sx * scale, sy * scale  # rendered pixels -> page
    for text, box, lines in panels:
        words = [
            [
                w,
                *(round(v, 1) for v in (b[0] * px, b[1] * py, b[2] * px, b[3] * py)),
                ln.word_confidences.get(b, ln.confidence),
            ]
            for ln in lines
            for w, b in ln.words
        ]
        found.append(((box[0] * px, box[1] * py, box[2] * px, box[3] * py), text, words))
    found.sort(key=lambda item: (round(item[0][1]), item[0][0]))
    return [
        Block(kind="text", text=text, bbox=bbox, order=i, attrs={"source": "ocr", "words": words})
        for i, (bbox, text, words) in enumerate(found)
    ]


def _centre_in(box: tuple, outer: tuple) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= x <= outer[2] and outer[1] <= y <= outer[3]
