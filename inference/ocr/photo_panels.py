"""Panels of typed text inside photographs (OpenCV): speech bubbles, signs, labels, caption boxes.

A photograph's own texture reads as junk to OCR, and a white speech bubble on it is lost among that junk. A page
is taken for a photograph from cheap statistics of a small copy (many grey levels, textured almost everywhere, no
one colour covering much of it as paper does), so that scans and documents never take this path. On a photograph,
a panel is a large region that is light (or dark) and smooth, nearly convex, and holds letter-sized marks of the
other polarity in its holes; each comes back as its box and its mask, for OCR to read it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PHOTO_SIDE = 512  # long side of the copy a page is judged on
PANEL_SIDE = 1024  # long side of the copy panels are found on
MIN_ENTROPY = 3.0  # bits, grey levels in 32 bins: a page of text on paper has about 1-2, a photograph over 4
MIN_TEXTURE = 3.0  # median local standard deviation (grey levels): paper and flat colour are near 0
MAX_PAPER = 0.4  # share of one colour (``paper_share``) under which a page can be a photograph
SMOOTH = 10.0  # local standard deviation under which a pixel is part of a smooth panel
MAX_PANELS = 8
MIN_PANEL = 0.002  # of the page's area
MAX_PANEL = 0.6
MIN_SOLIDITY = 0.7  # area over convex hull: a bubble with its tail or a tilted sign, not a cloud's ragged edge
MIN_MARKS = 3  # letter-sized marks a panel must hold


@dataclass(frozen=True)
class Panel:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels
    mask: np.ndarray  # bool, the box's size: True inside the panel (its outline left out)
    dark: bool  # light text on a dark panel


def _local_sd(gray: np.ndarray, size: int = 5) -> np.ndarray:
    import cv2

    g = gray.astype(np.float32)
    mean = cv2.blur(g, (size, size))
    return np.sqrt(np.maximum(cv2.blur(g * g, (size, size)) - mean * mean, 0))


def _small(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return rgb, 1.0
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def photographic(rgb: np.ndarray) -> bool:
    """Whether the page is a photograph (or a textured picture) rather than a document: its grey levels spread
    over the whole range, most of it is textured, and it is not light colourless paper."""
    import cv2

    from inference.ocr.scan import plain_background

    if rgb.ndim != 3:
        return False
    small, _ = _small(rgb, PHOTO_SIDE)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    hist = np.bincount((gray // 8).ravel(), minlength=32) / gray.size
    entropy = float(-(hist[hist > 0] * np.log2(hist[hist > 0])).sum())
    if entropy < MIN_ENTROPY or float(np.median(_local_sd(gray))) < MIN_TEXTURE:
        return False
    return paper_share(small) < MAX_PAPER and not plain_background(rgb)


def paper_share(rgb: np.ndarray) -> float:
    """The share of the image within a small distance of its commonest colour (OpenCV Lab, a 5-pixel median
    first): the paper of a scan, even yellowed and beside an engraving, covers most of it (0.75 and more); no colour
    covers a third of a photograph."""
    import cv2

    lab = cv2.cvtColor(cv2.medianBlur(np.ascontiguousarray(rgb), 5), cv2.COLOR_RGB2LAB).astype(np.int16)
    bins = (lab[..., 0] // 16) * 256 + (lab[..., 1] // 16) * 16 + lab[..., 2] // 16
    common = int(np.bincount(bins.ravel()).argmax())
    centre = np.array([common // 256, common // 16 % 16, common % 16]) * 16 + 8
    return float((np.abs(lab - centre).max(axis=2) <= 16).mean())


def find_panels(rgb: np.ndarray) -> list[Panel]:
    """The light panels (and dark ones) of a photograph that hold letter-like marks, largest first, at most
    ``MAX_PANELS``; boxes and masks in the image's pixels."""
    import cv2

    small, scale = _small(rgb, PANEL_SIDE)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    smooth = _local_sd(gray) <= SMOOTH
    found: list[tuple[int, Panel]] = []
    for dark in (False, True):
        base = smooth & ((gray <= 90) if dark else (gray >= 170))
        base = cv2.morphologyEx(base.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(base, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            panel = _panel(contour, base, gray, dark, scale, rgb.shape)
            if panel is not None:
                found.append(panel)
    found.sort(key=lambda p: -p[0])
    return [panel for _, panel in found[:MAX_PANELS]]


def _panel(
    contour: Any, base: np.ndarray, gray: np.ndarray, dark: bool, scale: float, shape: tuple[int, ...]
) -> tuple[int, Panel] | None:
    """One smooth region as a panel when it is big, nearly convex and holds letter-like marks; else None."""
    import cv2

    h, w = gray.shape
    area = cv2.contourArea(contour)
    if not MIN_PANEL * h * w <= area <= MAX_PANEL * h * w:
        return None
    hull = cv2.contourArea(cv2.convexHull(contour))
    if hull <= 0 or area / hull < MIN_SOLIDITY:
        return None
    x, y, bw, bh = cv2.boundingRect(contour)
    if min(bw, bh) < 16:
        return None
    filled = np.zeros((bh, bw), np.uint8)
    cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED, offset=(-x, -y))
    inside = filled.astype(bool)
    crop = gray[y : y + bh, x : x + bw]
    level = float(np.median(crop[inside & (base[y : y + bh, x : x + bw] > 0)]))
    marks = (crop >= level + 70) if dark else (crop <= level - 70)
    marks = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & marks
    count, _, stats, _ = cv2.connectedComponentsWithStats(marks.astype(np.uint8), connectivity=8)
    letters = [s for s in stats[1:count] if 3 <= s[cv2.CC_STAT_HEIGHT] <= 0.6 * bh and s[cv2.CC_STAT_WIDTH] <= 0.8 * bw]
    if len(letters) < MIN_MARKS:
        return None
    # back to the image's pixels: the box, and the mask shrunk a little so that a bubble's outline stays out
    full_h, full_w = shape[:2]
    x0, y0 = max(0, int(x / scale)), max(0, int(y / scale))
    x1, y1 = min(full_w, int(np.ceil((x + bw) / scale))), min(full_h, int(np.ceil((y + bh) / scale)))
    mask = cv2.resize(filled, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    shrink = max(3, int(round(2 / scale)) | 1)
    mask = cv2.erode(mask, np.ones((shrink, shrink), np.uint8)).astype(bool)
    return int(area), Panel((x0, y0, x1, y1), mask, dark)
