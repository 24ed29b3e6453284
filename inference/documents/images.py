"""Image backend: PNG, JPEG, TIFF (every page), WebP, BMP, GIF (first frame), HEIC/HEIF (pillow-heif) and AVIF
(Pillow's own); EXIF orientation; bomb limit."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inference.documents.model import Document, Page, file_sha256, require_file
from inference.errors import IngestError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".heic", ".heif", ".avif")
# ISO media files (``ftyp`` box) whose brand is a still image or image sequence, not a video
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")


def is_heif(head: bytes) -> bool:
    """Whether a file starting with ``head`` is HEIC/HEIF or AVIF (the major brand or, for ``mif1``-led files, a
    compatible brand names an image format)."""
    if head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    brands = [head[i : i + 4] for i in range(16, min(size, len(head)), 4)]
    return head[8:12] in HEIF_BRANDS or any(b in HEIF_BRANDS for b in brands)


def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (pillow-heif); AVIF is Pillow's own."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # without pillow-heif a HEIC file is refused as not readable, with Pillow's reason
        return
    register_heif_opener()


MAX_PIXELS = 178_956_970  # Pillow's own default; a 30000 x 30000 image (900 MP) is refused before decoding


def open_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Document:
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    require_file(path)
    _register_heif()
    try:
        with Image.open(path) as img:
            width, height = img.size  # read from the header; nothing decoded yet
            if width * height > max_pixels:
                raise IngestError(
                    f"the image is {width} x {height} pixels ({width * height / 1e6:.0f} MP), over the "
                    f"{max_pixels / 1e6:.0f} MP limit that guards against decompression bombs",
                    path=path,
                )
            frames = getattr(img, "n_frames", 1) if img.format in ("TIFF", "MPO", "HEIF") else 1
            animated = getattr(img, "n_frames", 1) if frames == 1 else 1  # GIF, APNG, WebP: the first frame is read
            fmt = img.format
    except IngestError:
        raise
    except Image.DecompressionBombError as exc:
        raise IngestError(
            f"the image is too large to open safely ({exc}); the {max_pixels / 1e6:.0f} MP limit "
            "guards against decompression bombs",
            path=path,
        ) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise IngestError(f"not a readable image ({exc})", path=path) from exc
    doc = Document(source=str(path), sha256=file_sha256(path), kind="image", metadata={"format": fmt})
    doc.renderer = _renderer(path)
    for index in range(frames):
        number = index + 1
        try:
            img = doc.render(number)
            doc.pages.append(Page(number=number, label=str(number), width=img.width, height=img.height, scanned=True))
        except Exception as exc:  # noqa: BLE001 - one bad TIFF page never loses the others
            doc.pages.append(Page(number=number, label=str(number), width=0, height=0, scanned=True))
            doc.add_error(number, f"page could not be decoded: {exc}")
    if animated > 1 and doc.pages:
        doc.pages[0].note(
            f"an animated {fmt} of {animated} frames: only its first frame was read (for text that changes "
            "from frame to frame, save the frames as a video or as images)"
        )
    return doc


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _grey8(img: Any) -> Any:
    """16-bit or 32-bit grey as 8-bit grey with its range kept: 16-bit scaled by its full range (integer division,
    no float copy of a large scan), 32-bit integer and float by the range the image uses (0-255 left as it is)."""
    import numpy as np
    from PIL import Image

    if img.mode in SIXTEEN_BIT:
        return Image.fromarray(np.floor_divide(np.asarray(img), 257).astype(np.uint8), "L")
    arr = np.asarray(img, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= 255 and lo >= 0:
        lo, hi = 0.0, 255.0
    return Image.fromarray(np.clip((arr - lo) * (255.0 / max(hi - lo, 1e-9)), 0, 255).astype(np.uint8), "L")


def to_rgb(img: Any) -> Any:
    """Any mode and bit depth as 8-bit RGB with its full range kept: 16/32-bit grey scaled (not clipped, which
    turns a 16-bit scan black and white), CMYK through Pillow's conversion, palette and transparency laid on white
    (a transparent background is paper, not black)."""
    from PIL import Image

    if img.mode in (*SIXTEEN_BIT, "I", "F"):
        return _grey8(img).convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("LA", "PA"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        paper = Image.new("RGB", img.size, (255, 255, 255))
        paper.paste(img, mask=img.getchannel("A"))
        return paper
    if img.mode == "1":
        img = img.convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


RENDER_PIXELS = 40_000_000  # larger images are reduced as they are decoded (as PDF pages are rendered at most this)


def _renderer(path: Path, max_pixels: int = RENDER_PIXELS) -> Callable[[int, float], Any]:
    """Frames as 8-bit RGB, EXIF orientation applied, reduced to at most ``max_pixels``: a JPEG is decoded at a
    fraction of its size (``draft``), anything else reduced by a whole factor right after decoding, before any copy
    or conversion, so that a 10,000 x 10,000 scan never exists in memory more than once."""

    def render(number: int, dpi: float = 0) -> Any:
        from PIL import Image, ImageOps

        _register_heif()
        with Image.open(path) as img:
            if number > 1:
                img.seek(number - 1)
            factor = math.ceil((img.width * img.height / max_pixels) ** 0.5)
            if factor > 1 and img.format == "JPEG":
                img.draft(img.mode, (img.width // factor, img.height // factor))
            img.load()
            factor = math.ceil((img.width * img.height / max_pixels) ** 0.5)
            if factor == 1:
                frame = img.copy()
            elif img.mode in SIXTEEN_BIT:  # modes reduce() does not take: made 8-bit grey first (one byte a pixel)
                frame = _grey8(img).reduce(factor)
            elif img.mode == "1":
                frame = img.convert("L").reduce(factor)
            elif img.mode in ("P", "PA"):
                frame = to_rgb(img).reduce(factor)
            else:
                frame = img.reduce(factor)
            frame.info.setdefault("exif", img.info.get("exif"))
        ImageOps.exif_transpose(frame, in_place=True)  # phone photos: apply the EXIF orientation
        return to_rgb(frame)

    return render
