"""Every script read or named: each page's script picks an installed model that reads it (RapidOCR's bundled models
for Chinese and Japanese, Tesseract for Latin, ``deu`` for German text), CJK comes out without spaces, vertical
Japanese reads right to left, and a script no installed model reads is named on the page, never read as Latin junk.
Pages are drawn here (tests/ocr_pages.py) with fonts from Debian packages; a page whose font is absent is skipped."""

from __future__ import annotations

import json

import pytest

from inference.documents import open_document
from inference.documents.model import Block, Document, Page
from inference.ocr import rapid
from inference.ocr.scripts import choose, german, unspaced
from inference.tasks import BuiltinEngine
from inference.tasks.markdown import page_markdown
from tests.ocr_pages import has_font, script_lines, script_page

needs_rapid = pytest.mark.skipif(not rapid.available(), reason="rapidocr is not installed")


def parse(name, tmp_path, **kw):
    if not has_font(name):
        pytest.skip(f"no font for {name}")
    path = tmp_path / f"{name}.png"
    script_page(name, **kw).save(path)
    return BuiltinEngine().parse(open_document(path))


def test_each_script_goes_to_a_model_that_reads_it_or_is_named():
    installed = ["deu", "eng", "jpn"]
    assert choose("Han", 1.0, installed, rapid=True).engine == "rapidocr"
    assert choose("Han", 1.0, installed, rapid=False).lang == "jpn"  # without RapidOCR, the nearest Tesseract model
    assert choose("Latin", 2.0, installed, rapid=True) == choose("Latin", 2.0, installed, rapid=True)
    assert choose("Latin", 2.0, installed, rapid=True).lang == "eng"
    korean = choose("Korean", 1.3, installed, rapid=True)
    assert korean.engine == "none"
    assert korean.note == (
        "Korean text on this page was not read: no OCR model for Hangul is installed; see docs/parsing.md"
    )
    assert choose("Hebrew", 3.0, installed, rapid=True).engine == "none"
    assert choose("Cyrillic", 1.0, installed + ["rus"], rapid=True).lang == "rus"
    assert choose(None, 0.0, installed, rapid=True).lang == "eng"  # too little text to tell: English, flagged later


def test_cjk_text_loses_the_spaces_between_its_characters_only():
    assert unspaced("い つ も 応 援 あ り が と う") == "いつも応援ありがとう"
    assert unspaced("東 京 Tower 2 0 2 4 年") == "東京 Tower 2 0 2 4 年"


def test_german_is_told_by_its_common_words():
    assert german("Die Grofe der Apfel ist nicht mit dem Auto und das Haus", ["deu", "eng"])
    assert not german("The size of the apples is not with the car and the house", ["deu", "eng"])
    assert not german("Die Grofe der Apfel ist nicht mit dem Auto und das Haus", ["eng"])


@pytest.mark.parametrize("name", ["ko", "ru"])
def test_a_script_without_an_installed_model_is_named_not_read_as_junk(tmp_path, name):
    result = parse(name, tmp_path)
    page = result.document.pages[0]
    script = {"ko": "Hangul", "ru": "Cyrillic"}[name]
    assert page.blocks == []
    note = next(n for n in page.attrs["notes"] if "was not read" in n)
    assert f"no OCR model for {script} is installed" in note
    assert "was not read" in result.markdown
    data = json.loads(json.dumps(result.document.to_dict()))
    assert data["pages"][0]["provenance"]["method"] == "not read"


@needs_rapid
def test_chinese_is_read_by_rapidocr_without_spaces(tmp_path):
    result = parse("zh", tmp_path)
    page = result.document.pages[0]
    assert page.reading["engine"] == "rapidocr" and page.reading["script"] == "Han"
    assert page.text.replace("\n", "") == "".join(script_lines("zh"))


@needs_rapid
def test_vertical_japanese_reads_top_to_bottom_right_to_left(tmp_path):
    result = parse("ja", tmp_path, vertical=True)
    text = "".join(result.document.pages[0].text.split())
    assert text.replace("。", "") == "".join(script_lines("ja")).replace("。", "")  # a full stop may be lost, not order


def test_german_page_is_read_with_its_umlauts(tmp_path):
    result = parse("de", tmp_path)
    page = result.document.pages[0]
    assert page.reading["lang"] == "deu"
    assert "Größe der Äpfel übertrifft" in page.text and "Grüße aus München" in page.text


def test_low_confidence_page_is_marked_in_markdown_json_and_document():
    block = Block(kind="text", text="Rnrl 1ls", bbox=(0, 0, 10, 10), order=0)
    page = Page(number=2, label="2", width=10, height=10, blocks=[block], scanned=True)
    page.provenance = {"method": "ocr", "engine": "tesseract", "lang": "eng", "model": "tessdata eng"}
    page.confidence = 0.41
    sure = Page(number=1, label="1", width=10, height=10, blocks=[block], text_layer="visible")
    doc = Document(source="x.pdf", sha256="0", kind="pdf", pages=[sure, page])
    assert doc.low_confidence_pages == [2]
    assert "<!-- low confidence: OCR (tesseract, eng) at 0.41" in page_markdown(page)
    assert "low confidence" not in page_markdown(sure)
    data = doc.to_dict()
    assert data["pages"][0]["provenance"] == {"method": "text layer"}
    assert data["pages"][1]["confidence"] == 0.41 and data["pages"][1]["provenance"]["engine"] == "tesseract"
    back = Document.from_dict(json.loads(json.dumps(data)))
    assert back.pages[1].reading == page.reading and back.pages[1].low_confidence


def test_ocr_page_records_engine_language_and_confidence(tmp_path):
    result = parse("en", tmp_path)
    page = result.document.pages[0]
    assert page.reading == {
        "method": "ocr",
        "engine": "tesseract",
        "script": page.reading["script"],
        "lang": "eng",
        "model": "tessdata eng",
    }
    assert 0.8 <= page.confidence <= 1.0
    assert all(0.0 <= b.attrs["confidence"] <= 1.0 for b in page.blocks if b.kind == "text")


def test_accented_latin_languages_are_told_by_their_common_words():
    from inference.ocr.scripts import accented

    assert accented("Nao ha nada de errado na acao. O carro e a casa da familia estao no centro") == "Portuguese"
    assert accented("Le chat est dans la maison et les enfants sont avec une amie pour le jour") == "French"
    assert accented("The cat is in the house and the children are with a friend for the day") is None


@needs_rapid
def test_accented_latin_page_is_read_with_its_accents(tmp_path):
    result = parse("pt-cs", tmp_path)
    page = result.document.pages[0]
    assert page.reading["engine"] == "rapidocr"
    assert "Não há nada de errado na ação" in page.text and "Élève" in page.text


def test_a_page_osd_cannot_tell_that_reads_as_junk_is_named_not_written(tmp_path):
    result = parse("hi", tmp_path)  # Devanagari: too little for OSD, English reads it at about 0.2
    page = result.document.pages[0]
    assert page.blocks == [] and page.reading["method"] == "not read"
    assert any("was not read" in n for n in page.attrs["notes"]) and "was not read" in result.markdown


RTL_PARAGRAPHS = {
    "Hebrew": "ישראל היא מדינה במזרח התיכון, השוכנת על החוף המזרחי של הים התיכון. יש בה 47 ערים ו-3 ימים. ",
    "Arabic": "اللغة العربية هي أكثر اللغات السامية تحدثًا، ويتحدثها أكثر من 467 مليون نسمة في العالم. ",
}


def rtl_scan(script: str):
    """A page of right-to-left text set by PyMuPDF (bidi and shaping by HarfBuzz), rendered and scanned."""
    import pymupdf
    from PIL import Image

    from tests.ocr_pages import FONTS, scanned

    pdf = pymupdf.open()
    page = pdf.new_page()
    css = "@font-face {{font-family: s; src: url(DejaVuSans.ttf);}} div {{font-family: s; font-size: 13px}}"
    html = f'<div dir="rtl"><p>{RTL_PARAGRAPHS[script] * 6}</p><p>{RTL_PARAGRAPHS[script] * 5}</p></div>'
    page.insert_htmlbox(pymupdf.Rect(50, 50, 550, 700), html, css=css, archive=pymupdf.Archive(str(FONTS)))
    pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
    return scanned(Image.frombytes("L", (pix.width, pix.height), pix.samples), angle=0.3, noise=4.0)


@pytest.mark.parametrize("script", ["Hebrew", "Arabic"])
def test_right_to_left_pages_are_turned_only_when_upside_down(tmp_path, script):
    """Tesseract's orientation check made for Latin letters takes an upright Hebrew or Arabic page for an upside-down
    Latin one; the page is turned only when it is upside down, and named (no model reads it here) either way."""
    from PIL import Image

    from inference.ocr.scan import ScanOptions, clean_scan

    upright = rtl_scan(script)
    assert clean_scan(upright, ScanOptions()).rotation == 0
    assert clean_scan(upright.transpose(Image.Transpose.ROTATE_180), ScanOptions()).rotation == 180
    upright.save(tmp_path / "rtl.png")
    page = BuiltinEngine().parse(open_document(tmp_path / "rtl.png")).document.pages[0]
    assert page.provenance["script"] == script
    if page.provenance["method"] == "not read":  # no model for the script here (the packaged ones read neither)
        assert [n for n in page.attrs["notes"] if "no readable text" in n] == []  # one note, not two that disagree


def ui_screenshot(face: str, px: int = 10):
    """A dark-themed window as a screenshot: a white title on a dark grey bar and three lines of small light text."""
    from PIL import Image, ImageDraw

    from tests.ocr_pages import font

    image = Image.new("RGB", (700, 140), (30, 30, 30))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 700, 40], fill=(52, 56, 64))
    draw.text((14, 10), "Device Manager", font=font("DejaVuSans-Bold.ttf", 16), fill=(255, 255, 255))
    lines = ["Flash the firmware to the board at address", "Board revision C, status connected", "Open the log"]
    for i, line in enumerate(lines):
        draw.text((16, 52 + (px + 8) * i), line, font=font(face, px), fill=(220, 220, 220))
    return image


def test_an_english_screenshot_osd_takes_for_another_script_is_read_as_english(tmp_path):
    """On small UI fonts, light on dark, OSD names Cyrillic or Fraktur with confidence (no model reads either);
    English reads the text as words, so it is kept (the provenance names OSD's script), never named as not read."""
    from tests.ocr_pages import needs_fonts

    if needs_fonts.args[0]:
        pytest.skip("DejaVu fonts are not installed")
    named = []
    for face in ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSansCondensed.ttf"):
        ui_screenshot(face).save(tmp_path / "shot.png")
        result = BuiltinEngine().parse(open_document(tmp_path / "shot.png"))
        page = result.document.pages[0]
        assert page.reading["method"] == "ocr" and page.reading["lang"] == "eng", (face, page.reading)
        assert "Device Manager" in page.text and "status connected" in page.text, (face, page.text)
        assert "was not read" not in result.markdown and not page.attrs.get("notes"), (face, result.markdown)
        named.append(page.reading.get("osd_script"))
    assert any(s not in (None, "Latin") for s in named), named  # OSD did name another script: the case is met


def test_english_stands_against_osds_script_only_when_it_reads_as_words():
    from inference.ocr.scripts import latin_first, reads_as_latin

    assert reads_as_latin("Flash the firmware to the board at address OxE0000. STM32F3DISCOVERY rev C", 0.87)
    assert not reads_as_latin("Flash the firmware to the board at address", 0.55)  # too little confidence
    assert not reads_as_latin("Mapc — yeTBEpTas nNaaHeTa. BeceHHM napk 6bia NOMOH N0aEeNn", 0.8)  # Cyrillic as Latin
    named = choose("Cyrillic", 2.1, ["eng"], rapid=False)
    first = latin_first(named, ["eng"])
    assert named.engine == "none" and (first.engine, first.lang, first.doubt) == ("tesseract", "eng", "Cyrillic")
    assert first.note == named.note and latin_first(choose("Latin", 3.0, ["eng"], False), ["eng"]).doubt == ""
