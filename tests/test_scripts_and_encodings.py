"""Text in every script, text files in every Unicode encoding, images of every mode and depth."""

from __future__ import annotations

import numpy as np
import pymupdf
import pytest
from PIL import Image

from inference.documents import open_document
from inference.documents.images import to_rgb
from inference.documents.model import clean_text
from inference.documents.pdf import wordlike_ratio
from inference.tasks.base import ParseOptions
from inference.tasks.builtin import BuiltinEngine

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CHINESE = "这是一个中文文档，用于测试文本层的识别。我们希望所有的汉字都能被保留下来，而不是被光学字符识别替换。"
JAPANESE = "これは日本語の文書です。「テキスト層」は、そのまま読まれるべきです。東京、大阪、京都。"

TEXT = "Grüße aus Köln: naïve café, 東京 and Ωmega.\n\nA second paragraph."


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_text_files_in_utf16_and_utf32_are_read_with_and_without_bom(tmp_path, encoding):
    path = tmp_path / "note.txt"
    path.write_bytes(TEXT.encode(encoding))  # the plain codec names write a BOM; -le/-be ones do not
    doc = open_document(path)
    assert [b.text for b in doc.pages[0].blocks] == TEXT.split("\n\n")


def test_binary_file_named_txt_is_still_refused(tmp_path):
    path = tmp_path / "blob.txt"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(Exception, match="binary"):
        open_document(path)


def _gradient_words(mode_scale: int) -> np.ndarray:
    """A grey ramp with a dark band: the ramp must stay a ramp (not black and white) after conversion."""
    ramp = np.tile(np.linspace(0, mode_scale, 256), (64, 1))
    ramp[20:40, 100:160] = 0
    return ramp


def test_sixteen_bit_grey_keeps_its_levels():
    img = Image.fromarray(_gradient_words(65535).astype(np.uint16))
    grey = np.asarray(to_rgb(img).convert("L"))
    assert len(np.unique(grey)) > 200  # a full ramp, not a two-level image
    assert grey[0, 255] == 255 and grey[0, 0] == 0 and grey[30, 120] == 0
    assert abs(int(grey[0, 128]) - 128) <= 2


def test_cmyk_palette_alpha_and_bilevel_images_become_rgb_on_white_paper():
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 255))  # full black ink
    assert to_rgb(cmyk).getpixel((0, 0)) == (0, 0, 0)
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent background: paper, not black
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    assert to_rgb(pal).getpixel((3, 3)) == (200, 30, 30)
    pal.info["transparency"] = 1
    assert to_rgb(pal).getpixel((3, 3)) == (255, 255, 255)
    grey_alpha = Image.new("LA", (8, 8), (0, 0))
    assert to_rgb(grey_alpha).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("1", (8, 8), 1)).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_png_file_opens_with_its_grey_levels(tmp_path):
    path = tmp_path / "scan16.png"
    Image.fromarray(_gradient_words(65535).astype(np.uint16)).save(path)
    doc = open_document(path)
    grey = np.asarray(doc.render(1).convert("L"))
    assert len(np.unique(grey)) > 200


def test_control_characters_in_fields_become_spaces_never_replacement_marks():
    assert clean_text("Name:\tJohn\r\nSmith\x0b\x07end") == "Name: John Smith end"
    assert "\ufffd" in clean_text("lone \ud800 surrogate")  # real damage stays visible


def test_arabic_presentation_forms_become_letters():
    assert clean_text("\ufefb") == "\u0644\u0627"  # lam-alef ligature: lam then alef
    assert clean_text("\ufe8d\ufedf") == "\u0627\u0644"
    assert clean_text("x² ½ Ａ") == "x² ½ Ａ"  # NFKC only where it is safe: other compatibility forms kept


@pytest.mark.parametrize(
    "text",
    [
        CHINESE * 3,
        JAPANESE * 3,
        "नमस्ते दुनिया यह एक परीक्षा है और हम देखते हैं कि शब्द पढ़े जाते हैं या नहीं " * 2,
        "مرحبا بالعالم هذا اختبار، ونرى إن كانت الكلمات تُقرأ أم لا؛ النص العربي " * 2,
        "שלום עולם, זהו מבחן. אנחנו בודקים אם המילים נקראות או לא: טקסט עברי " * 2,
        "สวัสดีชาวโลก นี่คือการทดสอบ เราดูว่าคำถูกอ่านหรือไม่ ภาษาไทย " * 3,
    ],
)
def test_non_latin_scripts_read_as_words(text):
    spaced = " ".join(text) if text.startswith(CHINESE[:4]) else text  # some layers space every ideograph
    assert wordlike_ratio(text, min_tokens=1) > 0.9
    assert wordlike_ratio(spaced, min_tokens=1) > 0.9


def _cjk_pdf(path, lines: list[str], font: str, spaced: bool = False) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    for i, line in enumerate(lines):
        page.insert_text((72, 72 + 22 * i), " ".join(line) if spaced else line, fontname=font, fontsize=11)
    doc.save(path)


@pytest.mark.parametrize(("text", "font", "spaced"), [(CHINESE, "china-s", False), (JAPANESE, "japan", True)])
def test_cjk_text_layer_is_kept_and_never_called_unreadable(tmp_path, text, font, spaced):
    lines = [text[i : i + 28] for i in range(0, len(text), 28)] * 3
    path = tmp_path / "cjk.pdf"
    _cjk_pdf(path, lines, font, spaced)
    doc = open_document(path)
    page = doc.pages[0]
    assert page.text_layer == "visible"
    result = BuiltinEngine().parse(doc, ParseOptions())
    kept = sum(1 for ch in set(text) if ch in result.markdown)
    assert kept == len(set(text))
    assert "readable" not in result.document.pages[0].attrs  # only a page with no readable text is marked
    assert not any("no readable text" in n for n in result.document.pages[0].attrs.get("notes", []))


def test_right_to_left_lines_come_out_in_logical_order_with_lam_alef_as_letters(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_font(fontname="dv", fontfile=DEJAVU)
    arabic = "\ufefbسلام عليكم"  # lam-alef ligature, then words
    page.insert_text((72, 100), arabic[::-1], fontname="dv", fontsize=14)  # drawn in visual order, as PDFs do
    page.insert_text((72, 140), "שלום עולם"[::-1], fontname="dv", fontsize=14)
    path = tmp_path / "rtl.pdf"
    doc.save(path)
    texts = [b.text for b in open_document(path).pages[0].blocks]
    assert texts == ["لاسلام عليكم", "שלום עולם"]
