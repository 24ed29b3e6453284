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


# text in several scripts, each with a font that has it (Debian's fonts-noto-cjk, fonts-nanum, fonts-tlwg-garuda-ttf,
# fonts-lohit-deva; DejaVu for Latin, Greek, Cyrillic, Hebrew and Arabic): a page is skipped where its font is absent
CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
SCRIPT_PAGES: dict[str, tuple[str, str, int, list[str]]] = {  # name -> (font file, script, ttc index, lines)
    "en": (
        str(FONTS / "DejaVuSans.ttf"),
        "Latin",
        0,
        ["The quarterly report was filed on time.", "Revenue grew by twelve percent this year.", "Please sign below."],
    ),
    "de": (
        str(FONTS / "DejaVuSans.ttf"),
        "Latin",
        0,
        [
            "Die Größe der Äpfel übertrifft alles.",
            "Grüße aus München und Köln.",
            "Das Bestandteil muss geprüft werden.",
        ],
    ),
    "pt-cs": (
        str(FONTS / "DejaVuSerif.ttf"),
        "Latin",
        0,
        ["Não há nada de errado na ação.", "Příklad: žlutý kůň úpěl ďábelské ódy.", "Élève naïve à côté du café."],
    ),
    "zh": (
        CJK,
        "Han",
        2,
        ["我们今天去公园散步，天气很好。", "这份报告介绍了新的研究方法。", "请在下面签名并注明日期。"],
    ),
    "ja": (
        CJK,
        "Japanese",
        0,
        ["いつも応援ありがとうございます。", "東京の天気は晴れのち曇りです。", "会議は午後三時に始まります。"],
    ),
    "ko": (
        "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
        "Hangul",
        0,
        ["안녕하세요 반갑습니다", "오늘 날씨가 좋습니다"],
    ),
    "ru": (
        str(FONTS / "DejaVuSans.ttf"),
        "Cyrillic",
        0,
        ["Марс — четвёртая планета.", "Весенний парк был полон людей."],
    ),
    "el": (str(FONTS / "DejaVuSans.ttf"), "Greek", 0, ["Η Αθήνα είναι η πρωτεύουσα.", "Καλημέρα σε όλους σας."]),
    "he": (str(FONTS / "DejaVuSans.ttf"), "Hebrew", 0, ["שלום עולם, זהו מבחן.", "יש לי 47 חתולים בבית."]),
    "th": ("/usr/share/fonts/truetype/tlwg/Garuda.ttf", "Thai", 0, ["สวัสดีครับ ยินดีต้อนรับ", "วันนี้อากาศดีมาก"]),
    "hi": (
        "/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf",
        "Devanagari",
        0,
        ["नमस्ते दुनिया", "यह एक परीक्षण है"],
    ),
}


def has_font(name: str) -> bool:
    return Path(SCRIPT_PAGES[name][0]).exists()


def script_lines(name: str) -> list[str]:
    """The page's lines: its sentences three times over (OSD needs a few lines of text to tell a script)."""
    return SCRIPT_PAGES[name][3] * 3


def script_page(name: str, px: int = 44, seed: int = 0, vertical: bool = False) -> Image.Image:
    """A page region of ``script_lines(name)``, scanned-looking; ``vertical``: the lines set top to bottom, the
    first on the right (Japanese tategaki)."""
    path, _, index, _ = SCRIPT_PAGES[name]
    lines = script_lines(name)
    f = ImageFont.truetype(path, px, index=index)
    if vertical:
        height = int(max(len(t) for t in lines) * px * 1.15) + 200
        image = Image.new("L", (len(lines) * int(px * 1.8) + 300, height), 255)
        draw = ImageDraw.Draw(image)
        for i, text in enumerate(lines):
            x = image.width - 150 - (i + 1) * int(px * 1.8)
            for k, ch in enumerate(text):
                draw.text((x, 100 + k * int(px * 1.15)), ch, font=f, fill=0)
        return scanned(image, angle=0.3, noise=4.0, seed=seed)
    width = int(max(f.getlength(t) for t in lines)) + 300
    image = Image.new("L", (width, len(lines) * int(px * 1.9) + 240), 255)
    draw = ImageDraw.Draw(image)
    rtl = SCRIPT_PAGES[name][1] in ("Hebrew", "Arabic")
    for i, text in enumerate(lines):
        x = width - 150 - f.getlength(text) if rtl else 150
        draw.text((x, 120 + i * int(px * 1.9)), text, font=f, fill=0, direction="rtl" if rtl else None)
    return scanned(image, angle=0.3, noise=4.0, seed=seed)
