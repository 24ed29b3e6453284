"""Scanned-looking pages made for OCR tests: ruled tables, receipts and contents pages drawn with the DejaVu fonts,
then turned slightly, blurred and given sensor noise, so that each test knows every character on the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = Path("/usr/share/fonts/truetype/dejavu")
needs_fonts = pytest.mark.skipif(not (FONTS / "DejaVuSans.ttf").exists(), reason="DejaVu fonts are not installed")


def font(name: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / name), px)


def scanned(image: Image.Image, angle: float = 0.6, noise: float = 6.0, seed: int = 0) -> Image.Image:
    """The page as a scanner gives it: turned ``angle`` degrees, softened, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(0.7))
    noisy = np.asarray(image).astype(np.float32) + rng.normal(0, noise, (image.height, image.width))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def ruled_table(rows: list[list[str]], face: str = "DejaVuSans.ttf", px: int = 34) -> Image.Image:
    """An A4 page at 300 dpi with a ruled grid, each cell's text centred."""
    f = font(face, px)
    col_w, row_h, x0, y0 = 260, 70, 200, 400
    image = Image.new("L", (2480, 3508), 255)
    draw = ImageDraw.Draw(image)
    for r in range(len(rows) + 1):
        draw.line([(x0, y0 + r * row_h), (x0 + len(rows[0]) * col_w, y0 + r * row_h)], fill=0, width=3)
    for c in range(len(rows[0]) + 1):
        draw.line([(x0 + c * col_w, y0), (x0 + c * col_w, y0 + len(rows) * row_h)], fill=0, width=3)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x = x0 + c * col_w + (col_w - f.getlength(cell)) / 2
            draw.text((x, y0 + r * row_h + (row_h - px) / 2 - 4), cell, font=f, fill=0)
    return image


def receipt(title: str, items: list[tuple[str, str]], face: str = "DejaVuSansMono.ttf", px: int = 30) -> Image.Image:
    """A till receipt: a title, then names on the left and prices ranged right, no rules."""
    f = font(face, px)
    image = Image.new("L", (1200, 300 + 60 * (len(items) + 4)), 255)
    draw = ImageDraw.Draw(image)
    draw.text((100, 40), title, font=f, fill=0)
    for i, (name, price) in enumerate(items):
        draw.text((100, 120 + 55 * i), name, font=f, fill=0)
        draw.text((1000 - f.getlength(price), 120 + 55 * i), price, font=f, fill=0)
    return image


def contents_page(entries: list[tuple[str, int]], face: str = "DejaVuSerif.ttf", px: int = 36) -> Image.Image:
    """A table of contents: entries, dot leaders, page numbers ranged right."""
    f = font(face, px)
    image = Image.new("L", (2480, 3508), 255)
    draw = ImageDraw.Draw(image)
    draw.text((300, 250), "Contents", font=font(face.replace(".ttf", "-Bold.ttf"), 60), fill=0)
    for i, (title, number) in enumerate(entries):
        y, w, nw = 420 + 80 * i, f.getlength(title), f.getlength(str(number))
        draw.text((300, y), title, font=f, fill=0)
        draw.text((320 + w, y), "." * int((2180 - 340 - w - nw) / f.getlength(".")), font=f, fill=0)
        draw.text((2180 - nw, y), str(number), font=f, fill=0)
    return image
