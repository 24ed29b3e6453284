"""Images that are hard for OCR: text on coloured and gradient backgrounds, rows of empty comb boxes, a line of
small text, and very large scans (reduced before OCR, so that memory stays bounded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from inference.documents import open_document
from inference.documents.images import _renderer
from inference.ocr.reader import MAX_OCR_PIXELS, ocr_scale
from inference.tasks import BuiltinEngine

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_font = pytest.mark.skipif(not FONT.exists(), reason="DejaVu Sans is not installed")


def read(image: Image.Image, path: Path) -> tuple[str, dict]:
    image.save(path)
    page = BuiltinEngine().parse(open_document(path)).document.pages[0]
    return " ".join(b.text for b in sorted(page.blocks, key=lambda b: b.order)), page.attrs


@needs_font
def test_text_on_gradient_and_coloured_backgrounds_is_read(tmp_path):
    font = ImageFont.truetype(str(FONT), 40)
    x = np.linspace(0, 1, 1400)[None, :, None]
    gradient = (np.array([30, 60, 200]) * (1 - x) + np.array([250, 200, 40]) * x) * np.ones((400, 1, 1))
    image = Image.fromarray(gradient.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.text((40, 60), "The quarterly meeting starts at noon", font=font, fill=(20, 20, 20))
    draw.text((40, 200), "Please bring the signed forms along", font=font, fill=(255, 255, 255))  # light on dark too
    text, attrs = read(image, tmp_path / "gradient.png")
    assert text == "The quarterly meeting starts at noon Please bring the signed forms along"
    assert "flatten background" in attrs["cleanup"]["steps"]
    banner = Image.new("RGB", (1400, 300), (200, 40, 40))
    ImageDraw.Draw(banner).text((40, 100), "White text on a red banner reads well", font=font, fill="white")
    assert read(banner, tmp_path / "banner.png")[0] == "White text on a red banner reads well"


@needs_font
def test_empty_comb_boxes_do_not_read_as_letters(tmp_path):
    font = ImageFont.truetype(str(FONT), 30)
    image = Image.new("RGB", (1600, 500), "white")
    draw = ImageDraw.Draw(image)
    draw.text((60, 40), "Customer details", font=font, fill="black")
    for row, (label, boxes) in enumerate((("Name", 20), ("Account", 14), ("Postcode", 8))):
        y = 120 + 90 * row
        draw.text((60, y), label, font=font, fill="black")
        for i in range(boxes):  # boxes the size of the letters: their sides read as I, T and ] without clean-up
            draw.rectangle((260 + i * 30, y, 290 + i * 30, y + 30), outline=(60, 60, 60), width=3)
    pixels = np.asarray(image).astype(np.float32)
    noisy = pixels + np.random.default_rng(0).normal(0, 8, pixels.shape)  # a scan's noise
    text, attrs = read(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), tmp_path / "comb.png")
    assert text == "Customer details Name Account Postcode"
    assert any(step.startswith("remove") for step in attrs["cleanup"]["steps"])


@needs_font
def test_a_line_of_small_text_is_scaled_up_and_read(tmp_path):
    image = Image.new("RGB", (280, 20), "white")
    ImageDraw.Draw(image).text((3, 1), "Invoice 40213 paid", font=ImageFont.truetype(str(FONT), 13), fill="black")
    text, attrs = read(image, tmp_path / "small.png")
    assert text == "Invoice 40213 paid"
    assert attrs["cleanup"]["scale"] > 2


def test_very_large_images_are_reduced_when_decoded_and_before_ocr(tmp_path):
    path = tmp_path / "large.png"
    Image.new("L", (3000, 2000), 255).save(path)
    frame = _renderer(path, max_pixels=1_000_000)(1)
    assert frame.mode == "RGB" and frame.size == (1000, 667)  # reduced by a whole factor: 3
    deep = np.full((2000, 3000), 40000, dtype=np.uint16)  # 16-bit grey: still scaled, not clipped, when reduced
    Image.fromarray(deep).save(path)
    assert _renderer(path, max_pixels=1_000_000)(1).getpixel((10, 10)) == (155, 155, 155)
    huge = Image.new("L", (8000, 6000), 255)  # 48 MP: over the OCR budget
    scale = ocr_scale(huge)
    assert scale < 1 and 8000 * 6000 * scale**2 <= MAX_OCR_PIXELS * 1.001  # rounding
    assert ocr_scale(Image.new("L", (2000, 2000), 255)) == 1.0  # a blank page of ordinary size is left alone


@pytest.mark.parametrize("dpi", [150, 300])
def test_scanned_bullets_make_a_list_and_a_copyright_sign_or_a_word_e_stays(tmp_path, dpi):
    """Round bullets on a scan: Tesseract skips them or reads them as "e" or "®". Each item becomes a list item of
    its own; a copyright sign (as tall as the letters) and an Italian "e" (followed by a space, not an indent) stay
    as read."""
    import pymupdf

    items = ["Reading order follows the columns", "Tables keep their rows apart", "Scans are cleaned before OCR"]
    drawn = pymupdf.open()
    page = drawn.new_page()
    page.insert_text((60, 80), "What the parser does:", fontsize=13)
    for i, item in enumerate(items):
        y = 110 + 24 * i
        page.draw_circle((74, y - 4), 2.1, color=(0, 0, 0), fill=(0, 0, 0))  # a bullet 0.35 em wide
        page.insert_text((88, y), item, fontsize=12)
    page.insert_text((60, 210), "e il resto segue la pagina, come sempre.", fontsize=12)
    page.insert_text((60, 250), "\u00a9 2024 The Workbench authors. All rights reserved.", fontsize=11)
    scan = pymupdf.open()
    scan.new_page().insert_image(page.rect, stream=page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY).tobytes("png"))
    scan.save(tmp_path / "bullets.pdf")
    md = BuiltinEngine().parse(open_document(tmp_path / "bullets.pdf")).markdown
    listed = [ln[2:] for ln in md.splitlines() if ln.startswith("- ")]
    assert listed == items, md
    assert "\ne il resto segue" in md and "\n© 2024 The Workbench" in md, md
    assert not any(ch in md for ch in "®¢•"), md


def test_a_bullet_read_as_a_symbol_needs_only_a_space_and_a_word_e_still_an_indent():
    """Tesseract reads a typewriter's bullet as "®" or "¢" a plain space before the text: that is a bullet. A small
    "e" a space before the next word is the Italian word, and stays."""
    from inference.ocr.reader import OcrLine, _with_bullet

    page = Image.new("L", (800, 60), 255)  # white: no blob beside the line either

    def line(mark: str) -> OcrLine:
        words = [(mark, (100.0, 20.0, 118.0, 38.0)), ("Optional", (133.0, 5.0, 300.0, 50.0))]
        return OcrLine(f"{mark} Optional remote control.", (100.0, 5.0, 600.0, 50.0), 45.0, words)

    for mark in "®¢":
        assert _with_bullet(line(mark), page).text == "• Optional remote control."
    assert _with_bullet(line("e"), page).text == "e Optional remote control."


def test_a_skewed_typewritten_scan_with_bullets_reads_them_as_list_items(shared_data):
    """ocrmypdf's rotated and skewed scan of a LinnSequencer leaflet: its bullets, read by Tesseract as "®" and "¢",
    make list items, none of them a heading, and no line starts with the misread."""
    page = BuiltinEngine().parse(open_document(shared_data / "ocrmypdf/rotated_skew.pdf")).document.pages[0]
    lines = [line for b in page.blocks for line in b.text.splitlines()]
    items = [line for b in page.blocks if b.kind == "list" for line in b.text.splitlines() if line.startswith("• ")]
    assert len(items) >= 12  # the leaflet has 16 (a wrapped item continues on lines of its own)
    assert not [line for line in lines if line[:1] in "®¢"]
    assert not [b.text for b in page.blocks if b.kind != "list" and "•" in b.text]
