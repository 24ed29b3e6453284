"""The searchable PDF export: page images with the OCR'd words in invisible text at their boxes."""

from __future__ import annotations

import pymupdf
import pytest
from PIL import Image

from inference.documents import open_document
from inference.exports import write_parse
from inference.tasks.base import ParseOptions
from inference.tasks.builtin import BuiltinEngine

WORDS = ["Invoice", "number", "4711", "Searchable", "layers", "matter"]


def _scan_pdf(path) -> None:
    """A scanned page: the words drawn, rendered to a picture, and only the picture kept."""
    drawn = pymupdf.open()
    page = drawn.new_page()
    page.insert_text((72, 120), " ".join(WORDS[:3]), fontsize=22)
    page.insert_text((72, 400), " ".join(WORDS[3:]), fontsize=22)
    pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
    scan = pymupdf.open()
    scan.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), stream=pix.tobytes("png"))
    scan.save(path)
    drawn.close()


def _where(page: pymupdf.Page) -> dict[str, pymupdf.Rect]:
    return {w[4]: pymupdf.Rect(w[:4]) for w in page.get_text("words")}


@pytest.mark.slow
def test_scanned_page_words_read_back_at_their_positions(tmp_path):
    src = tmp_path / "scan.pdf"
    _scan_pdf(src)
    original = _where(pymupdf.open(src)[0])
    assert not original  # the scan has no text layer of its own
    reference = pymupdf.open()
    ref_page = reference.new_page()
    ref_page.insert_text((72, 120), " ".join(WORDS[:3]), fontsize=22)
    ref_page.insert_text((72, 400), " ".join(WORDS[3:]), fontsize=22)
    truth = _where(ref_page)
    result = BuiltinEngine().parse(open_document(src), ParseOptions())
    (out,) = write_parse(result, tmp_path / "out", "scan", ["pdf"])
    pdf = pymupdf.open(out)
    assert pdf.page_count == 1 and pdf[0].rect == pymupdf.Rect(0, 0, 595, 842)
    assert pdf[0].get_images()  # the page image is kept
    found = _where(pdf[0])
    for word in WORDS:
        assert word in found, found
        got, want = found[word], truth[word]
        assert abs(got.x0 - want.x0) < 6 and abs(got.x1 - want.x1) < 8
        assert abs((got.y0 + got.y1) / 2 - (want.y0 + want.y1) / 2) < 6
    assert pdf[0].search_for("Searchable layers")  # a viewer's search finds the phrase
    spans = [s for s in pdf[0].get_texttrace()]
    assert spans and all(s["type"] == 3 for s in spans)  # invisible: the picture shows the words


def test_born_digital_page_is_copied_as_it_is_and_input_never_overwritten(tmp_path):
    src = tmp_path / "report.pdf"
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Born digital text stays selectable", fontsize=12)
    doc.save(src)
    result = BuiltinEngine().parse(open_document(src), ParseOptions())
    (out,) = write_parse(result, tmp_path, "report", ["pdf"])  # the output folder is the input's
    assert out.name == "report.searchable.pdf"
    page = pymupdf.open(out)[0]
    assert "Born digital text stays selectable" in page.get_text()
    assert not page.get_images()  # copied as a PDF page, not turned into a picture
    assert pymupdf.open(src)[0].get_text() == page.get_text()


def test_image_input_becomes_a_page_with_invisible_words(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page(width=400, height=120)
    page.insert_text((20, 70), "Photograph caption words", fontsize=24)
    pix = page.get_pixmap(dpi=150)
    image = tmp_path / "photo.png"
    Image.frombytes("RGB", (pix.width, pix.height), pix.samples).save(image)
    result = BuiltinEngine().parse(open_document(image), ParseOptions())
    (out,) = write_parse(result, tmp_path / "o", "photo", ["pdf"])
    got = pymupdf.open(out)[0]
    assert "caption" in got.get_text()
    assert abs(got.rect.width - 400) < 2  # 150 dpi pixels back to the page size they came from
