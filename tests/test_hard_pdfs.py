"""Real-world PDF failure classes, on PDFs that PyMuPDF writes here: bad characters, rotated pages, runaway pages,
garbled text layers, lone lines, text past the page edge, tables, empty pages, misnamed inputs, unreadable folders."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from app.cli import main as dwb
from inference.documents import open_document
from inference.documents.pdf_tables import MAX_TABLE_PATHS
from inference.tasks import BuiltinEngine

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_ttf = pytest.mark.skipif(not FONT.is_file(), reason="needs DejaVuSans.ttf")


def parse(path: Path):
    return BuiltinEngine().parse(open_document(path))


def surrogate_pdf(path: Path) -> Path:
    """A font whose Unicode map sends two codes to lone surrogates (as broken ToUnicode CMaps do)."""
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 300), "hello A world B again", fontsize=12)
    xref = page.get_fonts()[0][0]
    cmap = pdf.get_new_xref()
    pdf.update_object(cmap, "<<>>")
    pdf.update_stream(
        cmap,
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
        b"1 begincodespacerange <00> <FF> endcodespacerange 2 beginbfchar <41> <D800> "
        b"<42> <DC01> endbfchar 1 beginbfrange <43> <7A> <0043> endbfrange endcmap "
        b"CMapName currentdict /CMap defineresource pop end end",
    )
    pdf.xref_set_key(xref, "ToUnicode", f"{cmap} 0 R")
    pdf.save(path)
    return path


def test_lone_surrogates_never_fail_a_document(tmp_path):
    src = surrogate_pdf(tmp_path / "surrogate.pdf")
    out = tmp_path / "out"
    assert dwb(["parse", str(src), "--out", str(out), "--format", "md,json,txt,html", "--per-page"]) == 0
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert {f.suffix for f in files} == {".md", ".json", ".txt", ".html"}
    for f in files:
        f.read_bytes().decode("utf-8")  # strict: every output is valid UTF-8
    md = (out / "surrogate_pg1.md").read_text(encoding="utf-8")
    # the two glyphs the broken map names as lone surrogates are read from the page by OCR of their boxes only
    assert "hello A world B again" in md and "\ufffd" not in md


def rotated_pdf(path: Path, rotations=(90, 180, 270)) -> Path:
    """Pages stored turned, displayed upright through /Rotate (slides, landscape tables)."""
    pdf = pymupdf.open()
    for rot in rotations:
        page = pdf.new_page(width=612, height=792)
        page.set_rotation(rot)
        m = page.derotation_matrix

        def text(x, y, s, size=11):
            page.insert_text(pymupdf.Point(x, y) * m, s, fontsize=size, rotate=rot)  # noqa: B023

        word = {90: "ninety", 180: "half", 270: "three quarters"}[rot]
        text(72, 60, f"Quarterly slide turned {word}", 24)
        text(72, 110, f"The first paragraph comes right after the {word} title.")
        for r in range(5):
            for c in range(3):
                text(80 + c * 180, 230 + r * 40, f"row{r} col{c}")
        for r in range(6):
            page.draw_line(pymupdf.Point(72, 200 + r * 40) * m, pymupdf.Point(612, 200 + r * 40) * m)
        for c in range(4):
            page.draw_line(pymupdf.Point(72 + c * 180, 200) * m, pymupdf.Point(72 + c * 180, 400) * m)
        text(72, 450, f"A closing remark about the {word} slide.")
        text(72 if rot == 180 else 640, 150, f"Side note {word}")
    pdf.save(path)
    return path


def test_rotated_pages_are_read_as_displayed(tmp_path):
    parsed = parse(rotated_pdf(tmp_path / "rotated.pdf"))
    for page, md in zip(parsed.document.pages, parsed.pages, strict=True):
        assert page.width > page.height or page.attrs["rotation"] == 180
        title = md.index("Quarterly slide turned")
        assert md.lstrip().startswith("<!--") and title < md.index("The first paragraph") < md.index("row0 col0")
        rows = [md.index(f"| row{r} col0 | row{r} col1 | row{r} col2 |") for r in range(5)]
        assert rows == sorted(rows)  # the table in order, rows and columns as displayed
        assert md.index("row4 col2") < md.index("A closing remark")
        assert "Side note" in md  # a column at the displayed right edge is no running footer


def map_pdf(path: Path, paths: int) -> Path:
    random.seed(7)
    pdf = pymupdf.open()
    page = pdf.new_page(width=1190, height=842)
    page.insert_text((72, 60), "Map of the district", fontsize=20)
    page.insert_text((72, 90), "Roads, rivers and parcels as surveyed.", fontsize=10)
    shape = page.new_shape()
    for _ in range(paths):
        x, y = random.uniform(0, 1180), random.uniform(100, 832)
        shape.draw_polyline([(x, y), (x + random.uniform(-8, 8), y + random.uniform(-8, 8)), (x + 5, y + 3)])
        shape.finish(color=(0, 0, 0), width=0.3)
    shape.commit()
    pdf.save(path)
    return path


def test_runaway_page_skips_table_detection_with_a_note(tmp_path):
    """More drawings than the budget: table detection is skipped (tests/benchmarks/ingest.py times 59,000)."""
    parsed = parse(map_pdf(tmp_path / "map.pdf", 2 * MAX_TABLE_PATHS))
    page = parsed.document.pages[0]
    assert page.attrs["paths"] > MAX_TABLE_PATHS
    assert any("table detection skipped" in n for n in page.attrs["notes"])
    assert "<!-- note: table detection skipped" in parsed.pages[0]
    assert "Map of the district" in parsed.pages[0] and "as surveyed" in parsed.pages[0]


def page_image(lines: list[tuple[int, str, int]], size=(1700, 2200), scribbles: int = 0) -> bytes:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for y, text, px in lines:
        draw.text((150, y), text, fill="black", font=ImageFont.truetype(str(FONT), px))
    rng = random.Random(3)
    for _ in range(scribbles):  # pen strokes: not printed text
        x, y = rng.randint(150, 1500), rng.randint(600, 1900)
        pts = [(x + rng.randint(-40, 40) * i // 3, y + rng.randint(-15, 15)) for i in range(8)]
        draw.line(pts, fill=(20, 20, 90), width=4, joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@needs_ttf
def test_garbled_text_layers_are_read_by_ocr(tmp_path):
    # a TrueType font without a Unicode map: its glyph codes are no text
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_font(fontname="dv", fontfile=str(FONT))
    page.insert_text((72, 300), "Quarterly results of the company", fontsize=20, fontname="dv")
    page.insert_text((72, 340), "The revenue grew in every region this year.", fontsize=12, fontname="dv")
    for xref, *_ in page.get_fonts():
        pdf.xref_set_key(xref, "ToUnicode", "null")
    # a scan whose invisible text layer is junk
    page = pdf.new_page()
    page.insert_image(
        page.rect,
        stream=page_image(
            [(400, "Minutes of the harbour board", 60), (520, "The board approved the new pier budget.", 44)]
        ),
    )
    rng = random.Random(5)
    junk = " ".join("".join(rng.choice("xqzjkvw;:~^1l|") for _ in range(rng.randint(2, 7))) for _ in range(80))
    page.insert_textbox(page.rect + (40, 40, -40, -40), junk, fontsize=11, render_mode=3)
    path = tmp_path / "garbled.pdf"
    pdf.save(path)
    parsed = parse(path)
    p1, p2 = parsed.document.pages
    assert p1.text_layer == "garbage" and p1.attrs["ocr"] == "tesseract" and "text layer" in p1.attrs["ocr_reason"]
    assert "revenue grew" in parsed.pages[0] and "Quarterly results" in parsed.pages[0]
    assert p2.attrs["ocr"] == "tesseract" and p2.attrs["ocr_reason"]
    assert "harbour board" in parsed.pages[1] and "pier budget" in parsed.pages[1]
    assert "xqz" not in parsed.markdown and "~^" not in parsed.markdown
    data = json.loads(json.dumps(parsed.document.to_dict()))
    assert data["pages"][0]["attrs"]["ocr_reason"] == p1.attrs["ocr_reason"]


def test_a_lone_line_is_content_not_a_running_header(tmp_path):
    one = pymupdf.open()
    one.new_page().insert_text((72, 40), "Notice: the office is closed on Friday.", fontsize=11)
    one.save(tmp_path / "one.pdf")
    assert "office is closed on Friday" in parse(tmp_path / "one.pdf").pages[0]
    # a one-page document with a body: its top line and its page number
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 40), "Meeting notes, spring term", fontsize=9)
    for i in range(12):
        page.insert_text((72, 120 + 14 * i), f"Body line {i} with several words of ordinary text.", fontsize=11)
    page.insert_text((300, 770), "3", fontsize=9)
    doc.save(tmp_path / "body.pdf")
    md = parse(tmp_path / "body.pdf").pages[0]
    assert "Meeting notes, spring term" in md and "\n3\n" not in md + "\n"
    # a longer document: a page whose only line sits near the top; a very large page's top sentence
    doc = pymupdf.open()
    for n in range(3):
        page = doc.new_page()
        page.insert_text((72, 40), "ACME annual report", fontsize=9)
        page.insert_text((72, 200), f"Page {n} body text of the report.", fontsize=11)
    doc.new_page().insert_text((72, 45), "The only sentence of this page sits near the top.", fontsize=11)
    big = doc.new_page(width=2000, height=3000)
    big.insert_text((100, 120), "Welcome to the open day of the institute", fontsize=40)
    big.insert_text((100, 900), "Posters are on the first floor.", fontsize=24)
    doc.save(tmp_path / "report.pdf")
    parsed = parse(tmp_path / "report.pdf")
    assert "ACME annual report" not in parsed.markdown  # repeats: a running header
    assert "The only sentence of this page" in parsed.pages[3]
    assert "Welcome to the open day" in parsed.pages[4]


def test_pages_whose_only_line_repeats_keep_it(tmp_path):
    """A generated document, one line per page, the same words with other numbers on every page (a trial's 300-page
    PDF): the line is each page's content, not a running header, so no page comes out empty with a note saying it has
    no text. A page that has only its running header and number says so, and what it holds."""
    doc = pymupdf.open()
    for n in range(1, 41):
        doc.new_page().insert_text((72, 40), f"Page {n} of the long document. Value {n * 7}.", fontsize=11)
    doc.save(tmp_path / "lines.pdf")
    parsed = parse(tmp_path / "lines.pdf")
    assert all(f"Page {n} of the long document. Value {n * 7}." in parsed.pages[n - 1] for n in range(1, 41))
    assert "no readable text" not in parsed.markdown
    doc = pymupdf.open()
    for n in range(1, 6):
        page = doc.new_page()
        page.insert_text((72, 40), "ACME annual report", fontsize=9)
        page.insert_text((300, 770), str(n), fontsize=9)
        if n != 3:  # page 3: left blank but for its running header and number
            for i in range(10):
                page.insert_text((72, 120 + 14 * i), f"Body line {i} of page {n}, ordinary words.", fontsize=11)
    doc.save(tmp_path / "report.pdf")
    parsed = parse(tmp_path / "report.pdf")
    assert "ACME annual report" not in parsed.pages[0] and "Body line 0 of page 1" in parsed.pages[0]
    assert "ACME annual report" in parsed.pages[2]  # the page's only words: kept, not a silently empty page


def test_bullets_set_apart_from_their_items_make_a_list(tmp_path):
    """A bullet glyph a little to the left of its item's text is a line of its own to PyMuPDF: the block read as one
    paragraph with the bullets inline ("... storage. \u2022 Wang Laboratories: ..." in docling's multi_page.pdf)."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Three machines changed writing:", fontsize=11)
    items = [
        "The typewriter let clerks write fast and clean copies for the office.",
        "The word processor kept text on tape and later on floppy disks.",
        "The personal computer put an editor on every desk.",
    ]
    for i, item in enumerate(items):
        page.insert_text((90, 110 + 16 * i), "\u2022", fontsize=11)
        page.insert_text((104, 110 + 16 * i), item, fontsize=11)
    doc.save(tmp_path / "bullets.pdf")
    md = parse(tmp_path / "bullets.pdf").markdown
    assert all(f"\n- {item}\n" in md for item in items), md


def test_bullets_in_a_document_written_by_others(shared_data):
    md = parse(shared_data / "docling" / "pdf" / "multi_page.pdf").markdown
    assert "\n- Wang Laboratories: In the 1970s" in md and "storage. \u2022" not in md


def test_text_past_the_edge_and_tables_once(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((400, 100), "This line runs past the right edge of the page and beyond", fontsize=12)
    cells = [["Item", "Qty", "Price"], ["Apples", "4", "1.20"], ["Pears", "7", "2.10"], ["Plums", "9", "3.40"]]
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            page.insert_text((80 + c * 120, 220 + r * 20), cell, fontsize=10)
    for r in range(5):
        page.draw_line((72, 206 + r * 20), (432, 206 + r * 20))
    for c in range(4):
        page.draw_line((72 + c * 120, 206), (72 + c * 120, 286))
    page.insert_text((80, 300), "After the table: a closing sentence.", fontsize=10)
    path = tmp_path / "edge.pdf"
    pdf.save(path)
    md = parse(path).pages[0]
    assert "runs past the right edge of the page and beyond" in md
    assert "| Apples | 4 | 1.20 |" in md and md.count("Apples") == 1 and md.count("Plums") == 1
    assert "After the table" in md


@needs_ttf
def test_pages_without_readable_text_say_so(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()  # a handwritten letter on printed letterhead
    page.insert_image(
        page.rect,
        stream=page_image(
            [(120, "Northfield Parish Council", 64), (220, "12 Mill Lane, Northfield", 40)], scribbles=60
        ),
    )
    pdf.new_page().insert_image(pdf[1].rect, stream=page_image([], scribbles=40))  # only handwriting
    path = tmp_path / "letter.pdf"
    pdf.save(path)
    parsed = parse(path)
    first, second = parsed.document.pages
    assert "Northfield Parish Council" in parsed.pages[0]
    assert "readable" not in first.attrs and "no readable text" not in parsed.pages[0]  # only unreadable pages say so
    assert second.attrs["readable"] is False and any("no readable text" in n for n in second.attrs["notes"])
    assert "<!-- note: no readable text" in parsed.pages[1]


def test_inputs_are_sniffed_and_unreadable_folders_fail(tmp_path):
    png = tmp_path / "in" / "scan.pdf"
    png.parent.mkdir()
    png.write_bytes(_png())
    doc = open_document(png)
    assert doc.kind == "image" and not doc.errors
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv to read as a user without the right to override permissions")
    locked = tmp_path / "in" / "locked"
    locked.mkdir()
    shutil.copy(png, locked / "inner.png")
    locked.chmod(0)
    try:  # without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH even root cannot list the folder
        run = subprocess.run(
            [
                "setpriv",
                "--bounding-set=-all",
                "--inh-caps=-all",
                sys.executable,
                "-m",
                "app.cli",
                "parse",
                str(locked),
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
    finally:
        locked.chmod(0o755)
    assert run.returncode == 1, run.stderr
    assert f"failed:  {locked}: cannot read the folder (Permission denied)" in run.stderr
    assert "1 parsed" in run.stderr  # scan.pdf; the locked folder, named and inside in/, is one failure


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 40), "white").save(buf, format="PNG")
    return buf.getvalue()


def test_a_pdf_whose_pages_are_lost_in_repair_is_called_damaged_not_empty(tmp_path):
    """A file with a broken cross-reference table that MuPDF's repair finds no page in: the error says the PDF is
    damaged (a user looks for the damage), not that it has no pages (a user looks for nothing)."""
    from inference.errors import IngestError

    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
    with pytest.raises(IngestError, match="damaged: no page could be recovered"):
        open_document(path)
