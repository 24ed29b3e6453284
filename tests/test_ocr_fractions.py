"""Vulgar fractions on scans: Tesseract's English model has no "½" and read "3½" as "3%", "12" or "3Y2". The glyph is
told by its ink (a small raised numerator, a diagonal stroke, a small lowered denominator) and its digits are read
on their own. Full-size "1/2", dates, "50%", "12" and footnote marks stay as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from inference.documents import open_document
from inference.ocr.fractions import find_fractions, fraction_text
from inference.ocr.tesseract import ocr_image
from inference.tasks import BuiltinEngine

FONTS = Path("/usr/share/fonts/truetype/dejavu")
needs_fonts = pytest.mark.skipif(not (FONTS / "DejaVuSans.ttf").exists(), reason="DejaVu fonts are not installed")
FRACTIONS = "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"
MIXED = "Add 3½ cups and 1¼ tsp, 2¾ in, ½ inch, ⅓ cup, 5⅞ mi, 50% and 1/2 on 3/4/2024 for 12."


def line_image(text: str, font: str, px: int, bilevel: bool = False) -> Image.Image:
    face = ImageFont.truetype(str(FONTS / font), px)
    image = Image.new("L", (int(face.getlength(text)) + 40, int(px * 2.2)), 255)
    ImageDraw.Draw(image).text((20, int(px * 0.5)), text, font=face, fill=0)
    return image.point(lambda v: 255 if v > 128 else 0) if bilevel else image


def ink_of(text: str, font: str, px: int) -> np.ndarray:
    """The line's ink cut to its rows with a small margin, as OCR gives it (a line's box)."""
    ink = np.asarray(line_image(text, font, px)) < 128
    rows = np.nonzero(ink.any(axis=1))[0]
    return ink[max(0, rows[0] - px // 8) : rows[-1] + px // 8 + 1]


@needs_fonts
@pytest.mark.parametrize("font", ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"])
@pytest.mark.parametrize("px", [35, 50, 80])
def test_each_fraction_glyph_is_found_by_its_ink_and_full_size_digits_are_not(font, px):
    for glyph in FRACTIONS:
        ink = ink_of(f"3{glyph}", font, px)
        found, _ = find_fractions(ink, [(0, ink.shape[1])])
        assert len(found) == 1, (font, px, glyph)
    for text in ("1/2", "3/4/2024", "12", "note³", "x²/y", "a 7."):
        ink = ink_of(text, font, px)
        assert find_fractions(ink, [(0, ink.shape[1])])[0] == [], (font, px, text)


def test_fraction_digits_map_to_unicode_or_a_fraction_slash_and_percent_is_no_fraction():
    assert fraction_text("1", "2") == "½" and fraction_text("7", "8") == "⅞" and fraction_text("1", "10") == "⅒"
    assert fraction_text("5", "16") == "5\u204416"
    assert fraction_text("0", "0") is None  # the rings of a "%"
    assert fraction_text("7", "3") is None and fraction_text("1", "1") is None  # a misread digit: no proper fraction


@needs_fonts
@pytest.mark.parametrize(
    "font", ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerifCondensed.ttf"]
)
@pytest.mark.parametrize("px", [42, 50])  # 10 and 12 pt at 300 dpi
@pytest.mark.parametrize("bilevel", [False, True], ids=["grey", "bilevel"])
def test_ocr_reads_fractions_after_digits_and_alone_and_leaves_percent_dates_and_full_size_digits(font, px, bilevel):
    text = " ".join(p[0] for p in ocr_image(line_image(MIXED, font, px, bilevel)))
    assert text == MIXED


@needs_fonts
def test_a_fraction_without_a_unicode_glyph_reads_with_a_fraction_slash_and_a_run_in_word_is_split():
    text = " ".join(p[0] for p in ocr_image(line_image("⁵⁄₁₆ inch and ⅒ of it, a ⅛ and ⅜ cup", "DejaVuSans.ttf", 50)))
    assert text == "5\u204416 inch and ⅒ of it, a ⅛ and ⅜ cup"


@needs_fonts
def test_footnote_marks_and_degrees_do_not_become_fractions():
    line = "See note³ and the 2nd table at 350° or 12° for 1/2 hour."
    for font in ("DejaVuSans.ttf", "DejaVuSerif.ttf"):
        text = " ".join(p[0] for p in ocr_image(line_image(f"Mix 2½ cups. {line}", font, 50)))
        assert text.startswith("Mix 2½ cups. See note"), text  # the fraction read: the check ran on this line
        rest = text[len("Mix 2½ cups.") :]
        assert not any(ch in rest for ch in FRACTIONS + "\u2044"), text
        assert "1/2 hour" in rest and "350" in rest, text


@needs_fonts
@pytest.mark.slow
@pytest.mark.parametrize("bilevel", [False, True], ids=["grey", "bilevel-g4"])
def test_fractions_on_a_scanned_pdf_page_read_and_the_text_layer_words_match(tmp_path, bilevel):
    """A 300 dpi page of 10 pt text, inserted into a PDF as its only content (a scan), read through the engine."""
    import pymupdf

    lines = [
        "Mix 3½ cups of flour with 1¼ teaspoons of salt.",
        "Cut a board 2¾ inches wide and ½ inch thick.",
        "Prices rose 50% from 12 to 18 on 3/4/2024; use 1/2 of it.",
    ]
    face = ImageFont.truetype(str(FONTS / "DejaVuSerif.ttf"), round(10 * 300 / 72))
    image = Image.new("L", (2550, 800), 255)
    for i, line in enumerate(lines):
        ImageDraw.Draw(image).text((150, 150 + 80 * i), line, font=face, fill=0)
    scan = tmp_path / "scan.tif"
    if bilevel:
        image.point(lambda v: 255 if v > 128 else 0).convert("1").save(scan, compression="group4", dpi=(300, 300))
    else:
        image.save(scan, dpi=(300, 300))
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=800 * 72 / 300)
    page.insert_image(page.rect, filename=str(scan))
    doc.save(tmp_path / "recipe.pdf")
    parsed = BuiltinEngine().parse(open_document(tmp_path / "recipe.pdf")).document.pages[0]
    blocks = sorted(parsed.blocks, key=lambda b: b.order)
    assert " ".join(b.text for b in blocks) == " ".join(lines)
    words = [w[0] for b in blocks for w in b.attrs["words"]]
    assert " ".join(words) == " ".join(lines)  # the searchable PDF's words carry the fractions too
    assert all(w[1] < w[3] and w[2] < w[4] for b in blocks for w in b.attrs["words"])
