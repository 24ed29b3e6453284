"""Text layers read as the font says, page structure, and builtin ask quotes, on PDFs made here with PyMuPDF.

Each PDF reproduces one class of damage seen on real files: ligature glyphs (shaped by HarfBuzz, and mapped to
several letters by a ToUnicode map), soft hyphens, kerned capitals in a layer that writes its spaces, dot leaders
and words in a font with no Unicode map, slides with bullets set large and a sidebar on every slide, notes at the
bottom of pages, an invoice whose total sits at the end of a long page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pymupdf
import pytest

from inference.documents import open_document
from inference.documents.model import Block, Document, Page
from inference.documents.pdf_text import chars_text
from inference.tasks import BuiltinEngine
from inference.tasks.layout import analyse

SERIF = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
needs_serif = pytest.mark.skipif(not Path(SERIF).exists(), reason="DejaVu Serif (fonts-dejavu) is not installed")


def texts(path: Path, page: int = 0) -> list[str]:
    return [b.text for b in open_document(path).pages[page].blocks if b.text]


def story_pdf(path: Path, html: str, pages: int = 1) -> Path:
    """``html`` set by PyMuPDF's Story (HarfBuzz: real ligature glyphs) on A5 pages."""
    writer = pymupdf.DocumentWriter(str(path))
    story = pymupdf.Story(html=html, user_css="body {font-family: serif; font-size: 11pt;}")
    more = True
    while more:
        device = writer.begin_page(pymupdf.paper_rect("a5"))
        more, _ = story.place(pymupdf.paper_rect("a5") + (40, 40, -40, -40))
        story.draw(device)
        writer.end_page()
    writer.close()
    return path


def without_unicode_map(path: Path) -> None:
    """Every embedded font's ToUnicode map removed, in place: its glyphs extract as U+FFFD."""
    pdf = pymupdf.open(path)
    for xref in range(1, pdf.xref_length()):
        if pdf.xref_get_key(xref, "ToUnicode")[0] != "null":
            pdf.xref_set_key(xref, "ToUnicode", "null")
    pdf.save(path.with_suffix(".tmp"))
    pdf.close()
    path.with_suffix(".tmp").replace(path)


# 1. text layers ------------------------------------------------------------------------------------------------------


def test_ligature_glyphs_come_out_as_their_letters(tmp_path):
    path = story_pdf(tmp_path / "lig.pdf", "<p>The efforts were significant; the office offered a different flow.</p>")
    assert "\ufb00" in pymupdf.open(path)[0].get_text()  # the layer really has ligature characters
    assert texts(path) == ["The efforts were significant; the office offered a different flow."]


def test_letters_of_one_ligature_glyph_stay_in_extraction_order():
    """A glyph mapped to ``ff`` gives both letters; the second has no width and sits where the next glyph starts
    (or a hair after it): sorting by position alone gives ``efof rts``."""

    def char(c: str, x0: float, x1: float) -> tuple[dict, float]:
        return {"c": c, "bbox": (x0, 0, x1, 10), "origin": (x0, 8)}, 10.0

    line = [char("e", 0, 5), char("f", 5, 12), char("f", 12.3, 12.3), char("o", 12, 17)]
    line += [char("r", 17, 20), char("t", 20, 23), char("s", 23, 27)]
    assert chars_text(line) == "efforts"
    drawn_out_of_order = [char("3", 0, 5), char("7", 7, 12), char("1", 12, 17), char("T", 17, 23), char(".", 5, 7)]
    assert chars_text(drawn_out_of_order) == "3.71T"


@needs_serif
def test_soft_hyphens_and_hyphenated_line_ends_are_joined(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    for i, line in enumerate(
        ["Ein wichtiger Be\u00ad", "standteil der Sache ist die Ge\u00ad", "schichte, ein Zu\u00adsam-"]
    ):
        page.insert_text((72, 100 + 13 * i), line, fontsize=11, fontname="dv", fontfile=SERIF)
    page.insert_text((72, 139), "menhang.", fontsize=11, fontname="dv", fontfile=SERIF)
    pdf.save(tmp_path / "soft.pdf")
    assert "\u00ad" in pymupdf.open(tmp_path / "soft.pdf")[0].get_text()
    assert texts(tmp_path / "soft.pdf") == ["Ein wichtiger Bestandteil der Sache ist die Geschichte, ein Zusammenhang."]


def test_a_hyphen_before_a_digit_or_a_capital_is_text_not_a_line_break(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    for i, line in enumerate(["Cases of COVID-", "19 rose; the Jean-", "Paul report was hyphen-", "ated."]):
        page.insert_text((72, 100 + 13 * i), line, fontsize=11, fontname="dv", fontfile=SERIF)
    pdf.save(tmp_path / "hard.pdf")
    assert texts(tmp_path / "hard.pdf") == ["Cases of COVID-19 rose; the Jean-Paul report was hyphenated."]


def test_right_to_left_lines_with_numbers_and_latin_words_read_in_logical_order(tmp_path):
    """Hebrew and Arabic set by PyMuPDF's HTML layout (bidi and shaping by HarfBuzz): the text comes out in the
    order it is read, numbers and Latin words in place, Arabic presentation forms as their letters."""
    pdf = pymupdf.open()
    page = pdf.new_page()
    html = (
        '<div dir="rtl"><p>יש לי 47 חתולים ו-3 כלבים.</p><p>عندي 47 قطط في البيت.</p>'
        "<p>השם שלי הוא David ואני גר בתל אביב.</p></div>"
    )
    css = "@font-face {font-family: sans-serif; src: url(DejaVuSans.ttf);} div {font-family: sans-serif;}"
    page.insert_htmlbox(pymupdf.Rect(50, 50, 550, 400), html, css=css, archive=pymupdf.Archive(str(Path(SERIF).parent)))
    pdf.save(tmp_path / "rtl.pdf")
    assert texts(tmp_path / "rtl.pdf") == [
        "יש לי 47 חתולים ו-3 כלבים.",
        "عندي 47 قطط في البيت.",
        "השם שלי הוא David ואני גר בתל אביב.",
    ]


def test_kerned_capitals_in_a_spaced_layer_get_no_space(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    x = 72.0
    for ch in "{Paris, Marseille} and the other ports of France":
        page.insert_text((x, 100), ch, fontsize=11)
        x += pymupdf.get_text_length(ch, fontsize=11) + (1.4 if ch in "PM" else 0)  # loose kerning after capitals
    pdf.save(tmp_path / "kern.pdf")
    assert texts(tmp_path / "kern.pdf") == ["{Paris, Marseille} and the other ports of France"]


@needs_serif
def test_unmapped_leaders_are_leaders_and_the_layer_is_kept(tmp_path):
    """A table of contents whose leader dots (and one word) are in a font with no Unicode map: most of its glyphs
    are U+FFFD, yet the layer is read (never replaced by OCR), the leaders come out as leaders, the word by OCR."""
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 60), "Contents", fontsize=16)
    for i, title in enumerate(["Introduction", "Methods of survey", "Results by parish", "Discussion"]):
        y = 100 + 20 * i
        page.insert_text((72, y), title, fontsize=11)
        page.insert_text((200, y), "." * 50, fontsize=11, fontname="dv", fontfile=SERIF)
        page.insert_text((480, y), str(3 + 7 * i), fontsize=11)
    page.insert_text((72, 200), "The", fontsize=11)
    page.insert_text((95, 200), "Bestandteil", fontsize=14, fontname="dv", fontfile=SERIF)
    page.insert_text((180, 200), "of the survey is described in chapter two.", fontsize=11)
    pdf.save(tmp_path / "toc.pdf")
    pdf.close()
    without_unicode_map(tmp_path / "toc.pdf")
    assert pymupdf.open(tmp_path / "toc.pdf")[0].get_text(flags=3).count("\ufffd") > 200
    doc = open_document(tmp_path / "toc.pdf")
    page = doc.pages[0]
    assert page.text_layer == "visible"
    text = "\n".join(b.text for b in page.blocks)
    assert "\ufffd" not in text
    assert "Introduction ... 3" in text and "Discussion ... 24" in text
    pytest.importorskip("tesserocr")
    assert "Bestandteil of the survey" in text


# 4. structure --------------------------------------------------------------------------------------------------------


def slides(path: Path, count: int = 4) -> Path:
    """Slides with a sidebar (the same three lines at the same place on each), a title, and bullets set in
    large bold type, one item wrapping onto a line of its own."""
    pdf = pymupdf.open()
    for n in range(count):
        page = pdf.new_page(width=960, height=540)
        for i, item in enumerate(["Overview", "Storage design", "Questions"]):
            page.insert_text((20, 120 + 24 * i), item, fontsize=13, fontname="hebo")
        page.insert_text((220, 70), f"Storage design, part {n + 1}", fontsize=30, fontname="hebo")
        page.insert_text((220, 150), "\u25a0", fontsize=20, fontname="dv", fontfile=SERIF)
        page.insert_text((250, 150), f"Law conformance, rule {n + 1}", fontsize=20, fontname="hebo")
        page.insert_text((220, 190), "\u25a0", fontsize=20, fontname="dv", fontfile=SERIF)
        page.insert_text((250, 190), f"Two copies of every record {n + 1}, kept", fontsize=20, fontname="hebo")
        page.insert_text((250, 214), "per disk!", fontsize=20, fontname="hebo")
        page.insert_text((220, 400), f"Slide notes for part {n + 1}: ask about the budget.", fontsize=11)
    pdf.save(path)
    return path


@needs_serif
def test_bullets_and_wrapped_items_are_never_headings_and_a_sidebar_comes_out_once(tmp_path):
    markdown = BuiltinEngine().parse(open_document(slides(tmp_path / "slides.pdf"))).markdown
    assert not re.search(r"^#+ .*(Law conformance|per disk|\u25a0)", markdown, flags=re.M), markdown
    assert markdown.count("- Law conformance, rule") == 4
    assert len(re.findall(r"^- Two copies of every record \d, kept per disk!$", markdown, flags=re.M)) == 4
    assert markdown.count("Storage design\n") + markdown.count("Storage design\n\n") >= 1
    assert markdown.count("Overview") == 1 and markdown.count("Questions") == 1
    assert markdown.count("# Storage design, part") == 4


def test_notes_at_the_bottom_are_kept_unless_they_repeat(tmp_path):
    pdf = pymupdf.open()
    for n in range(6):
        page = pdf.new_page()
        page.insert_text((72, 40), "Annual report of the harbour board", fontsize=8)  # running head
        page.insert_textbox(pymupdf.Rect(72, 80, 520, 600), f"Page {n + 1} of the report. " * 30, fontsize=11)
        if n == 2:
            page.insert_text((72, 790), "Signed for the board by the harbour master.", fontsize=11)
        page.insert_text((72, 815), "Harbour board, confidential", fontsize=8)  # running foot
    pdf.save(tmp_path / "report.pdf")
    markdown = BuiltinEngine().parse(open_document(tmp_path / "report.pdf")).markdown
    assert "Signed for the board by the harbour master." in markdown
    assert "confidential" not in markdown and "Annual report of the harbour board" not in markdown


def test_an_ocr_pages_title_and_first_lines_are_kept():
    """On a page read by OCR, a short first line set apart above the body (the page's title) is not a running
    head, whatever its size: OCR blocks carry no type size to tell."""
    pages = []
    for n, name in enumerate(["Minutes of the spring meeting", "Harbour works", "Budget for the year"], 1):
        title = Block("text", name, (200, 40, 400, 60), 0)
        body = [
            Block("text", f"Item {i}: the board agreed to the plan. " * 5, (72, 120 + 60 * i, 520, 160 + 60 * i), i)
            for i in range(1, 6)
        ]
        pages.append(
            Page(number=n, label=str(n), width=595, height=842, blocks=[title, *body], attrs={"ocr": "tesseract"})
        )
    doc = analyse(Document(source="minutes.pdf", sha256="0", kind="pdf", pages=pages))
    assert [b.kind for b in doc.pages[0].blocks][0] == "text"


# 8. ask ---------------------------------------------------------------------------------------------------------------


def test_ask_quotes_the_lines_that_answer_with_the_terms_marked(tmp_path):
    html = "<h1>Invoice 2024-117</h1>" + "<p>" + "Delivery of harbour survey services as agreed in the contract. " * 12
    html += "</p><table border='1'><tr><th>Item</th><th>Amount</th></tr><tr><td>Survey</td><td>1,200.00</td></tr>"
    html += "<tr><td>Travel</td><td>310.50</td></tr><tr><td>Total due</td><td>1,510.50 EUR</td></tr></table>"
    html += "<p>Payment within thirty days to the account named on the contract.</p>"
    path = story_pdf(tmp_path / "invoice.pdf", html)
    answer = BuiltinEngine().ask([open_document(path)], "What is the total due on the invoice?")
    quote = answer.text.splitlines()[1]
    assert re.search(r"\*\*Total due\*\*( \|)? 1,510\.50 EUR", quote), quote
    assert "Delivery of harbour" not in quote
