"""RapidOCR (PP-OCRv6 small detection and recognition, ONNX, shipped inside the ``rapidocr`` wheel): the reader for
scripts Tesseract has no installed model for that these models cover (Chinese, simplified and traditional).

One engine per process, built when first needed (about half a second); ONNX Runtime releases Python's lock while
it runs. Nothing is downloaded: the models are the wheel's own files.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from inference.errors import IngestError

_ENGINE: Any = None
_LOCK = threading.Lock()
SCRIPTS = ("Han", "Japanese", "Latin")  # what PP-OCRv6's multilingual recogniser reads


def available() -> bool:
    try:
        import rapidocr  # noqa: F401
    except ImportError:
        return False
    return True


def rapid_engine() -> Any:
    """The shared RapidOCR engine (its bundled models, quiet logging)."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise IngestError("reading Chinese needs the rapidocr package", hint="pip install rapidocr") from exc
            _ENGINE = RapidOCR(params={"Global.log_level": "warning"})
        return _ENGINE


def rapid_paragraphs(image: Any) -> list[tuple[str, tuple[float, float, float, float], list[Any]]]:
    """Paragraphs of a page image read by RapidOCR, in reading order: horizontal lines top to bottom, vertical
    lines (Japanese tategaki: a box at least one and a half times as tall as wide) right to left. Lines one under
    the other (or columns side by side) within a line's height make one paragraph; CJK lines join without a space."""
    import numpy as np

    from inference.ocr.tesseract import OcrLine

    out = rapid_engine()(np.asarray(image.convert("RGB")))
    # RapidOCR leaves boxes, texts and scores None when it finds no text; each box is four (x, y) corners
    boxes: Iterable[Sequence[Sequence[float]]] = out.boxes if out.boxes is not None else ()
    texts: Iterable[str] = out.txts or ()
    scores: Iterable[float] = out.scores or ()
    lines = []
    for points, text, score in zip(boxes, texts, scores, strict=False):
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        box = (min(xs), min(ys), max(xs), max(ys))
        vertical = box[3] - box[1] >= 1.5 * (box[2] - box[0]) and len(text) > 1
        size = box[2] - box[0] if vertical else box[3] - box[1]
        lines.append((vertical, OcrLine(text.strip(), box, size, [(text.strip(), box)], 100.0 * float(score))))
    vertical = sum(v for v, _ in lines) > len(lines) / 2
    if vertical:
        ordered = sorted((ln for _, ln in lines), key=lambda ln: (-ln.bbox[2], ln.bbox[1]))
    else:
        ordered = sorted((ln for _, ln in lines), key=lambda ln: (ln.bbox[1], ln.bbox[0]))
    paragraphs: list[list[Any]] = []
    for line in ordered:
        last = paragraphs[-1][-1] if paragraphs else None
        if last is not None and _continues(last, line, vertical):
            paragraphs[-1].append(line)
        else:
            paragraphs.append([line])
    return [paragraph(group) for group in paragraphs if any(ln.text for ln in group)]


def _continues(last: Any, line: Any, vertical: bool) -> bool:
    a, b = last.bbox, line.bbox
    if vertical:  # the next column to the left, starting near the same top
        return 0 <= a[0] - b[2] < last.height and abs(a[1] - b[1]) < 2 * last.height
    return 0 <= b[1] - a[3] < last.height and min(a[2], b[2]) > max(a[0], b[0])


def paragraph(lines: list[Any]) -> tuple[str, tuple[float, float, float, float], list[Any]]:
    from inference.ocr.scripts import CJK_CHAR

    text = lines[0].text
    for line in lines[1:]:
        joined = re.match(CJK_CHAR, text[-1:] or " ") and re.match(CJK_CHAR, line.text[:1] or " ")
        text += ("" if joined else " ") + line.text
    box = (
        min(ln.bbox[0] for ln in lines),
        min(ln.bbox[1] for ln in lines),
        max(ln.bbox[2] for ln in lines),
        max(ln.bbox[3] for ln in lines),
    )
    return text, box, lines
