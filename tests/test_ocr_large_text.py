"""Very large letters on scans (titles, posters, big signs): read whole, as headings, whether the scan is grey or a
CCITT Group 4 fax image in a PDF; thin ruled frames are still removed while the thick straight strokes of a large "E"
or "T" stay; big drawings give no words."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from inference.documents import open_document
from inference.ocr.scan import remove_rules
from inference.tasks import BuiltinEngine

FONTS = Path("/usr/share/fonts/truetype/dejavu")
needs_fonts = pytest.mark.skipif(not (FONTS / "DejaVuSans.ttf").exists(), reason="DejaVu fonts are not installed")
BODY = ["The committee met on Tuesday to review the budget.", "Revenue grew by eight percent over the year."]


def font(name: str, points: float, dpi: int = 300) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / f"{name}.ttf"), round(points * dpi / 72))


def scan(lines: list[tuple[str, str, float]], size: tuple[int, int] = (2000, 2400)) -> Image.Image:
    """A white 300 dpi page with the lines, top to bottom: (text, font, points)."""
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    y = 120
    for text, name, points in lines:
        f = font(name, points)
        assert draw.textbbox((120, y), text, font=f)[2] < size[0] - 60, f"{text!r} does not fit the page"
        draw.text((120, y), text, font=f, fill=0)
        y += round(points * 300 / 72 * 1.45)
    return page


def ccitt_pdf(image: Image.Image, path: Path, dpi: int = 300) -> Path:
    """A PDF page holding ``image`` as one CCITT Group 4 (fax) image, as office and fax scanners store pages."""
    buffer = io.BytesIO()
    image.convert("1").save(buffer, format="TIFF", compression="group4", strip_size=1 << 30)
    tiff = Image.open(buffer)
    (offset,), (length,) = tiff.tag_v2[273], tiff.tag_v2[279]
    black_is_1 = "true" if tiff.tag_v2.get(262, 0) == 1 else "false"
    w, h = image.size
    doc = pymupdf.open()
    page = doc.new_page(width=w * 72 / dpi, height=h * 72 / dpi)
    xref = doc.get_new_xref()
    doc.update_object(xref, f"<</Type/XObject/Subtype/Image/Width {w}/Height {h}/BitsPerComponent 1>>")
    doc.update_stream(xref, buffer.getvalue()[offset : offset + length], compress=False)
    doc.xref_set_key(xref, "ColorSpace", "/DeviceGray")
    doc.xref_set_key(xref, "Filter", "/CCITTFaxDecode")
    doc.xref_set_key(xref, "DecodeParms", f"<</K -1/Columns {w}/Rows {h}/BlackIs1 {black_is_1}>>")
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, f"q {page.rect.width} 0 0 {page.rect.height} 0 0 cm /Im0 Do Q".encode())
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</Im0 {xref} 0 R>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    doc.save(path)
    assert doc.xref_get_key(xref, "Filter")[1] == "/CCITTFaxDecode"
    return path


def blocks(path: Path) -> list:
    page = BuiltinEngine().parse(open_document(path)).document.pages[0]
    return sorted(page.blocks, key=lambda b: b.order)


@needs_fonts
@pytest.mark.slow
@pytest.mark.parametrize("stored", ["grey PNG", "CCITT G4 PDF"])
def test_large_titles_on_a_scan_are_read_whole_as_headings(tmp_path, stored):
    titles = [("REPORT", "DejaVuSerif", 72), ("Big Sale", "DejaVuSans-Bold", 90), ("Hello", "DejaVuSans", 150)]
    lines = [titles[0], (BODY[0], "DejaVuSerif", 12), titles[1], (BODY[1], "DejaVuSerif", 12), titles[2]]
    page = scan(lines)
    if stored == "grey PNG":
        path = tmp_path / "titles.png"
        page.save(path, dpi=(300, 300))
    else:
        path = ccitt_pdf(page, tmp_path / "titles.pdf")
    got = blocks(path)
    assert [(b.kind, b.text) for b in got] == [
        ("heading", "REPORT"),
        ("text", BODY[0]),
        ("heading", "Big Sale"),
        ("text", BODY[1]),
        ("heading", "Hello"),
    ]


def test_thin_frames_are_removed_but_the_thick_straight_strokes_of_large_letters_stay():
    page = Image.new("L", (1800, 1000), 255)
    draw = ImageDraw.Draw(page)
    draw.text((100, 80), "EFT HILL", font=font("DejaVuSans", 60), fill=0)  # all straight strokes, 250 px high
    for i in range(12):  # a row of empty comb boxes sharing their sides, drawn 3 px thin
        draw.rectangle((100 + 50 * i, 600, 150 + 50 * i, 660), outline=0, width=3)
    draw.line((100, 800, 1700, 800), fill=0, width=3)  # an underline to write on
    draw.text((100, 700), "Name and address of the applicant", font=font("DejaVuSans", 10), fill=0)
    gray = np.asarray(page)
    cleaned, removed = remove_rules(gray)
    letters = gray[60:420] < 128
    assert removed >= 2
    assert (cleaned[60:420] < 128).sum() == letters.sum()  # every pixel of the large letters kept
    assert (cleaned[590:670] < 128).sum() == 0  # the comb boxes gone
    assert (cleaned[795:806] < 128).sum() == 0  # the underline gone


@needs_fonts
@pytest.mark.slow
def test_large_drawings_on_a_scan_give_no_words(tmp_path):
    page = scan([(BODY[0], "DejaVuSerif", 12), (BODY[1], "DejaVuSerif", 12)])
    draw = ImageDraw.Draw(page)
    for i, height in enumerate((500, 800, 650, 300)):  # an outlined bar chart
        draw.rectangle((200 + 260 * i, 1900 - height, 380 + 260 * i, 1900), outline=0, width=14)
    draw.ellipse((1250, 900, 1650, 1300), outline=0, width=20)
    draw.polygon([(1300, 1900), (1500, 1450), (1700, 1900)], outline=0, width=18)
    draw.line((200, 1900, 1800, 1900), fill=0, width=8)
    path = tmp_path / "chart.png"
    page.save(path, dpi=(300, 300))
    text = " ".join(b.text for b in blocks(path))
    words = {w.strip(".,") for w in text.split()}
    assert words - {w.strip(".") for line in BODY for w in line.split()} == set(), text


@needs_fonts
@pytest.mark.slow
def test_a_large_heading_at_the_top_of_the_second_column_is_read_with_that_column(tmp_path):
    page = Image.new("L", (2600, 1100), 255)
    draw = ImageDraw.Draw(page)
    body = font("DejaVuSerif", 10)
    left = [
        "The river rose slowly through the",
        "night and the farmers moved their",
        "animals uphill before the bridge",
        "closed. By morning the fields were",
        "under water and the school stayed",
        "shut for the rest of the week.",
    ]
    right = [
        "Markets opened late on Monday as",
        "the roads into town were closed by",
        "the water. Traders who came by the",
        "hill road sold out before noon and",
        "the council promised to reopen the",
        "bridge as soon as it was safe.",
    ]
    for i, line in enumerate(left):
        draw.text((120, 420 + 75 * i), line, font=body, fill=0)
    draw.text((1400, 80), "NEWS", font=font("DejaVuSans-Bold", 60), fill=0)
    for i, line in enumerate(right):
        draw.text((1400, 420 + 75 * i), line, font=body, fill=0)
    path = tmp_path / "columns.png"
    page.save(path, dpi=(300, 300))
    got = blocks(path)
    assert " ".join(b.text for b in got) == " ".join([*left, "NEWS", *right])
    assert [b.kind for b in got if b.text == "NEWS"] == ["heading"]
