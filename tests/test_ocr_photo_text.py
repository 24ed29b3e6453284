"""Typed text on panels inside photographs: speech bubbles, signs and labels on a textured, colourful photo (made
here from a seeded generator: gradients, blurred coloured shapes, lines, grain, noise, saved as JPEG) are read,
panel by panel, top to bottom; a photo with no text gives no words; a document scan never takes this path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from inference.documents import open_document
from inference.ocr.photo_panels import find_panels, photographic
from inference.tasks import BuiltinEngine

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_font = pytest.mark.skipif(not FONT.exists(), reason="DejaVu Sans is not installed")


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A hard stand-in for a photograph: colour gradients, large blurred coloured shapes, sharp lines of every
    colour, coarse grain and per-pixel noise."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1, c2 = rng.integers(0, 255, (3, 3)).astype(np.float32)
    fx, fy = (x / width)[..., None], (y / height)[..., None]
    img = (c0 * (1 - fx) + c1 * fx) * (1 - 0.7 * fy) + c2 * 0.7 * fy
    for _ in range(25):
        shape = np.zeros((height, width), np.uint8)
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(width // 20, width // 4)), int(rng.integers(height // 20, height // 4)))
        cv2.ellipse(shape, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        img[shape > 0] = img[shape > 0] * 0.3 + rng.integers(0, 255, 3) * 0.7
    img = cv2.GaussianBlur(img, (0, 0), 6)
    for _ in range(60):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (p0[0] + int(rng.integers(-200, 200)), p0[1] + int(rng.integers(-200, 200)))
        cv2.line(img, p0, p1, rng.integers(0, 255, 3).tolist(), int(rng.integers(1, 5)), cv2.LINE_AA)
    grain = cv2.resize(rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32), (width, height))
    img += grain[..., None] * 18 + rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def panel(
    image: Image.Image,
    box: tuple[int, int, int, int],
    lines: list[str],
    size: int = 30,
    shape: str = "bubble",
    angle: float = 0.0,
    fill: tuple = (255, 255, 255),
    ink: tuple = (20, 20, 20),
) -> None:
    """Paste a panel with centred lines of text: a speech bubble (ellipse, black outline, tail) or a sign."""
    x0, y0, x1, y1 = box
    w, h, pad = x1 - x0, y1 - y0, 40
    layer = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if shape == "bubble":
        draw.ellipse((pad, pad, pad + w, pad + h), fill=(*fill, 255), outline=(0, 0, 0, 255), width=3)
        tail = [(pad + w * 0.3, pad + h * 0.85), (pad + w * 0.15, pad + h + pad - 2), (pad + w * 0.45, pad + h * 0.9)]
        draw.polygon(tail, fill=(*fill, 255), outline=(0, 0, 0, 255))
    else:
        draw.rectangle((pad, pad, pad + w, pad + h), fill=(*fill, 255), outline=(40, 40, 40, 255), width=2)
    font = ImageFont.truetype(str(FONT), size)
    step = int(size * 1.25)
    for i, text in enumerate(lines):
        left = pad + w / 2 - draw.textlength(text, font=font) / 2
        draw.text((left, pad + h / 2 - step * len(lines) / 2 + i * step), text, font=font, fill=(*ink, 255))
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    image.paste(layer, (x0 - pad, y0 - pad), layer)


def parse(image: Image.Image, path: Path):
    image.save(path, quality=85)
    return BuiltinEngine().parse(open_document(path)).document.pages[0]


def texts(page) -> list[str]:
    return [b.text for b in sorted(page.blocks, key=lambda b: b.order)]


@needs_font
def test_a_speech_bubble_on_a_photo_is_read_with_its_word_boxes(tmp_path):
    image = photo(1024, 768, seed=1)
    panel(image, (560, 80, 940, 260), ["Look at that", "big yellow dog!"], size=24)
    page = parse(image, tmp_path / "bubble.jpg")
    assert texts(page) == ["Look at that big yellow dog!"]
    words = page.blocks[0].attrs["words"]
    assert [w[0] for w in words] == ["Look", "at", "that", "big", "yellow", "dog!"]
    assert all(560 <= x0 < x1 <= 940 and 80 <= y0 < y1 <= 260 for _, x0, y0, x1, y1, _ in words)  # where printed
    assert all(0 <= confidence <= 100 for *_, confidence in words)  # Tesseract's, per word


@needs_font
def test_two_bubbles_and_a_sign_are_read_top_to_bottom(tmp_path):
    image = photo(1800, 1200, seed=1)
    panel(image, (100, 100, 650, 380), ["I think it will rain", "before we get home."])
    panel(image, (1000, 420, 1650, 700), ["Then we should take", "the bus instead."])
    panel(image, (300, 850, 900, 1000), ["MAIN STREET STATION"], size=40, shape="sign", fill=(245, 245, 235))
    page = parse(image, tmp_path / "three.jpg")
    assert texts(page) == [
        "I think it will rain before we get home.",
        "Then we should take the bus instead.",
        "MAIN STREET STATION",
    ]
    assert page.attrs["photo_panels"] == 3


@needs_font
def test_tilted_panels_on_a_photo_are_read(tmp_path):
    image = photo(1400, 1000, seed=2)
    panel(image, (600, 500, 1200, 760), ["Wait for me", "at the corner!"], angle=8)
    assert texts(parse(image, tmp_path / "tilted_bubble.jpg")) == ["Wait for me at the corner!"]
    image = photo(1400, 1000, seed=2)
    panel(image, (300, 250, 900, 460), ["Closed for repairs", "until next Monday"], shape="sign", angle=-6)
    assert texts(parse(image, tmp_path / "tilted_sign.jpg")) == ["Closed for repairs until next Monday"]


@needs_font
def test_light_text_on_a_dark_sign_in_a_photo_is_read(tmp_path):
    image = photo(1600, 1100, seed=1)
    panel(
        image, (400, 400, 1100, 600), ["Exit to the car park"], size=40, shape="sign", fill=(25, 60, 30), ink=(250,) * 3
    )
    assert texts(parse(image, tmp_path / "dark.jpg")) == ["Exit to the car park"]


def test_a_photo_with_light_smooth_patches_and_no_text_gives_no_words(tmp_path):
    image = photo(1600, 1100, seed=1)
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 200, 800, 500), fill=(250, 250, 252))  # a cloud
    draw.rectangle((1000, 600, 1500, 1000), fill=(235, 236, 240))  # a white wall
    page = parse(image, tmp_path / "no_text.jpg")
    assert page.blocks == []  # the photo's texture is not read as lines of junk
    assert page.attrs["photo_panels"] == 0


@needs_font
def test_a_document_scan_does_not_take_the_photo_path(tmp_path):
    image = Image.new("RGB", (1400, 700), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 32)
    lines = ["Minutes of the annual meeting", "The budget was approved by all members", "Next meeting in May"]
    for i, line in enumerate(lines):
        draw.text((80, 80 + 70 * i), line, font=font, fill=(30, 30, 30))
    draw.rectangle((80, 400, 700, 600), outline="black", width=3)  # a framed box, light and smooth inside
    draw.text((110, 480), "Signed by the chair", font=font, fill="black")
    noisy = np.asarray(image).astype(np.float32) + np.random.default_rng(0).normal(0, 8, (700, 1400, 3))
    scan = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    assert not photographic(np.asarray(scan))
    page = parse(scan, tmp_path / "scan.jpg")
    assert "photo_panels" not in page.attrs
    assert " ".join(texts(page)) == " ".join(lines + ["Signed by the chair"])


def test_panels_are_found_only_where_marks_lie_on_a_smooth_light_region():
    image = photo(1200, 800, seed=3)
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 100, 500, 300), fill="white")  # blank: no panel
    draw.rectangle((700, 400, 1100, 600), fill="white")
    for i in range(6):  # letter-sized marks: a panel
        draw.rectangle((740 + 55 * i, 480, 770 + 55 * i, 520), fill="black")
    rgb = np.asarray(image)
    assert photographic(rgb)
    boxes = [p.box for p in find_panels(rgb)]
    assert len(boxes) == 1 and abs(boxes[0][0] - 700) < 8 and abs(boxes[0][3] - 600) < 8


def test_a_yellowed_book_scan_with_an_engraving_is_no_photograph(shared_data):
    import pymupdf

    with pymupdf.open(shared_data / "ocrmypdf" / "c02-22.pdf") as pdf:  # text beside a large engraving, yellowed paper
        for dpi in (72, 200):
            pix = pdf[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
            assert not photographic(np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3))
    page = Image.new("RGB", (1200, 1500), (236, 222, 188))  # the same, made here: a grey picture beside text
    page.paste(photo(500, 700, seed=4).convert("L").convert("RGB"), (60, 300))
    draw = ImageDraw.Draw(page)
    for i in range(30):
        draw.text((600, 100 + 42 * i), "went tip-toeing along a path", fill=(40, 30, 20))
    grain = np.asarray(page).astype(np.float32) + np.random.default_rng(0).normal(0, 10, (1500, 1200, 3))
    assert not photographic(np.clip(grain, 0, 255).astype(np.uint8))
