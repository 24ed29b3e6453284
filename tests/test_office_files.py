"""Word, PowerPoint and Excel files made here with python-docx, python-pptx and openpyxl, read into the document
model: structure kept (headings, lists, tables, pages), hostile files refused clearly without losing the others."""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile

import pytest

from inference.documents import Status, ingest, open_document, sniff
from inference.errors import IngestError
from inference.tasks.builtin import BuiltinEngine

docx = pytest.importorskip("docx")
pptx = pytest.importorskip("pptx")
openpyxl = pytest.importorskip("openpyxl")

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def markdown(doc) -> str:
    return BuiltinEngine().parse(doc).markdown


def make_docx(path):
    from docx.oxml import parse_xml

    d = docx.Document()
    d.add_heading("Annual report", 0)
    d.add_heading("Summary", 1)
    d.add_paragraph("Revenue grew by 12.5% to €4,650.")
    d.add_paragraph("First point", style="List Bullet")
    d.add_paragraph("Nested point", style="List Bullet 2")
    d.add_paragraph("Step one", style="List Number")
    d.add_paragraph("Step two", style="List Number")
    table = d.add_table(rows=3, cols=3)
    for c, text in enumerate(("Item", "Qty", "Price")):
        table.cell(0, c).text = text
    for c, text in enumerate(("Tea", "2", "2.95")):
        table.cell(1, c).text = text
    table.cell(2, 0).merge(table.cell(2, 1)).text = "Total"
    table.cell(2, 2).text = "5.90"
    revised = d.add_paragraph("Kept ")
    revised._p.append(parse_xml(f'<w:ins xmlns:w="{W}" w:id="1" w:author="a"><w:r><w:t>inserted</w:t></w:r></w:ins>'))
    revised._p.append(
        parse_xml(f'<w:del xmlns:w="{W}" w:id="2" w:author="a"><w:r><w:delText>gone</w:delText></w:r></w:del>')
    )
    d.add_page_break()
    d.add_heading("Details", 1)
    d.add_paragraph("Soft\u00adhyphen and second page text.")
    d.sections[0].footer.paragraphs[0].text = "Confidential"
    d.save(path)
    return path


def test_docx_keeps_headings_lists_tables_and_pages(tmp_path):
    doc = open_document(make_docx(tmp_path / "report.docx"))
    assert doc.kind == "text" and doc.metadata["format"] == "docx" and doc.status is Status.COMPLETE
    assert len(doc.pages) == 2
    kinds = [(b.kind, b.level, b.text) for b in doc.pages[0].blocks]
    assert ("heading", 1, "Annual report") in kinds and ("heading", 1, "Summary") in kinds
    lists = [b.text for b in doc.pages[0].blocks if b.kind == "list"]
    assert lists == ["- First point\n  - Nested point\n1. Step one\n2. Step two"]
    table = next(b for b in doc.pages[0].blocks if b.kind == "table")
    assert table.rows == [["Item", "Qty", "Price"], ["Tea", "2", "2.95"], ["Total", "", "5.90"]]
    assert table.attrs["spans"][2] == [2, 0, 1]
    assert "Kept inserted" in doc.pages[0].text and "gone" not in doc.pages[0].text
    assert doc.pages[1].blocks[0].text == "Details" and "Softhyphen and second page" in doc.pages[1].text
    footer = [b for b in doc.pages[0].blocks if b.kind == "footer"]
    assert [b.text for b in footer] == ["Confidential"]
    md = markdown(doc)
    assert '<td colspan="2">Total</td>' in md and "  - Nested point" in md and "2. Step two" in md
    assert "Confidential" not in md  # furniture: left out of the Markdown, kept in the JSON


def test_office_kind_comes_from_the_content_not_the_suffix(tmp_path):
    make_docx(tmp_path / "report.docx")
    renamed = tmp_path / "report.bin"
    renamed.write_bytes((tmp_path / "report.docx").read_bytes())
    assert sniff(renamed) == "docx"
    assert open_document(renamed).pages[0].blocks[0].text == "Annual report"
    png = tmp_path / "photo.docx"
    from PIL import Image

    Image.new("RGB", (20, 10), "white").save(png, "PNG")
    assert sniff(png) == "image"


def test_a_damaged_docx_fails_clearly_and_the_batch_loses_nothing(tmp_path):
    good = make_docx(tmp_path / "a_good.docx")
    raw = good.read_bytes()
    (tmp_path / "b_truncated.docx").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "c_not_a_zip.docx").write_bytes(b"this is not a Word file at all\n" * 10)
    bitflip = bytearray(raw)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        info = archive.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    bitflip[start + 40 : start + 60] = bytes(20)
    (tmp_path / "d_bad_crc.docx").write_bytes(bytes(bitflip))
    results = {r.path.rsplit("/", 1)[-1]: r for r in ingest([tmp_path])}
    assert results["a_good.docx"].status is Status.COMPLETE
    for name in ("b_truncated.docx", "c_not_a_zip.docx", "d_bad_crc.docx"):
        assert results[name].document is None, name
        assert "Word file is damaged" in results[name].error, results[name].error
        assert "Traceback" not in results[name].error


def test_password_protected_docx_asks_for_its_password(tmp_path):
    msoffcrypto = pytest.importorskip("msoffcrypto")
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = make_docx(tmp_path / "plain.docx")
    locked = tmp_path / "locked.docx"
    with open(plain, "rb") as src, open(locked, "wb") as out:
        OOXMLFile(src).encrypt("s3cret", out)
    assert msoffcrypto.OfficeFile(open(locked, "rb")).is_encrypted()
    with pytest.raises(IngestError, match="encrypted and no password was given") as err:
        open_document(locked)
    assert "--password" in err.value.user_message()
    with pytest.raises(IngestError, match="password is wrong"):
        open_document(locked, password=lambda _p: "nope")
    doc = open_document(locked, password=lambda _p: "s3cret")
    assert doc.metadata["encrypted"] and doc.pages[0].blocks[0].text == "Annual report"


def test_legacy_binary_office_file_is_refused_with_what_to_do(tmp_path):
    legacy = tmp_path / "old.doc"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000))
    with pytest.raises(IngestError) as err:
        open_document(legacy)
    assert "Office file" in err.value.message or ".docx" in err.value.message


def make_pptx(path):
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Law conformance"
    body = slide.placeholders[1].text_frame
    body.text = "First bullet"
    nested = body.add_paragraph()
    nested.text, nested.level = "Nested bullet", 1
    box = slide.shapes.add_textbox(Inches(1), Inches(6.5), Inches(4), Inches(0.5))
    box.text_frame.text = "A plain text box"
    slide.notes_slide.notes_text_frame.text = "Say hello first"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Figures"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(1.5), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Quarter", (0, 1): "Sales", (1, 0): "Q1", (1, 1): "4.65"}.items():
        table.cell(r, c).text = text
    data = CategoryChartData()
    data.categories = ["Q1", "Q2"]
    data.add_series("Units", (12, 7.5))
    second.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(3), Inches(4), Inches(3), data)
    second._element.set("show", "0")
    deck.save(path)
    return path


def test_pptx_slides_are_pages_with_titles_bullets_tables_and_notes(tmp_path):
    doc = open_document(make_pptx(tmp_path / "deck.pptx"))
    assert doc.metadata["format"] == "pptx" and [p.label for p in doc.pages] == ["1", "2"]
    first = [(b.kind, b.text) for b in doc.pages[0].blocks]
    assert first[0] == ("heading", "Law conformance")
    assert ("list", "- First bullet\n  - Nested bullet") in first
    assert ("text", "A plain text box") in first
    assert first[-1] == ("text", "Speaker notes: Say hello first")
    tables = [b.rows for b in doc.pages[1].blocks if b.kind == "table"]
    assert [["Quarter", "Sales"], ["Q1", "4.65"]] in tables and [["", "Units"], ["Q1", "12"], ["Q2", "7.5"]] in tables
    assert "a hidden slide" in doc.pages[1].attrs["notes"]
    md = markdown(doc)
    assert "## Law conformance" in md and "# - " not in md and "## per" not in md
    assert md.count("## ") == 2  # only the titles are headings, never a bullet


def test_xlsx_sheets_are_pages_with_exact_numbers(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["Month", "Amount", "Share", "When"])
    sheet.append(["Jan", 2.95, 0.125, dt.date(2024, 3, 1)])
    sheet.append(["Feb", 0.1 + 0.2, 0.5, dt.datetime(2024, 3, 2, 14, 30)])
    sheet.append(["Mar", 5, None, True])
    sheet.append(["Apr", 2.9, 1234.5, -4.65, 4.89290024005183e17])
    sheet["C2"].number_format = "0.0%"
    sheet["C3"].number_format = "0%"
    sheet["B5"].number_format = "0.00"
    sheet["C5"].number_format = "#,##0.00"
    sheet["D5"].number_format = "#,##0.00 [$€-407];[Red]-#,##0.00 [$€-407]"
    book.create_sheet("Notes")["B2"] = "see Sales"
    path = tmp_path / "sales.xlsx"
    book.save(path)
    doc = open_document(path)
    assert [p.label for p in doc.pages] == ["Sales", "Notes"] and doc.status is Status.COMPLETE
    rows = next(b.rows for b in doc.pages[0].blocks if b.kind == "table")
    assert rows[1][:4] == ["Jan", "2.95", "12.5%", "2024-03-01"]
    assert rows[2][:4] == ["Feb", "0.3", "50%", "2024-03-02 14:30:00"]
    assert rows[3][:4] == ["Mar", "5", "", "TRUE"]
    assert rows[4] == ["Apr", "2.90", "1,234.50", "-4.65 €", "489290024005183000"]  # as Excel shows them
    assert next(b.rows for b in doc.pages[1].blocks if b.kind == "table") == [["", ""], ["", "see Sales"]]


def test_a_huge_sheet_is_read_to_a_bound_and_says_so(tmp_path, monkeypatch):
    from inference.documents import sheets

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("big")
    sheet.append([None] * 300 + ["far right"])
    for i in range(300):
        sheet.append([i, i * 1.5])
    book.create_sheet("after").append(["still read"])
    path = tmp_path / "big.xlsx"
    book.save(path)
    with zipfile.ZipFile(path, "a") as archive:  # a cell at the very last row Excel allows, after a million-row gap
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    xml = xml.replace(
        "</sheetData>", '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>last</t></is></c></row></sheetData>'
    )
    rebuilt = tmp_path / "huge.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            out.writestr(item, xml if item.filename == "xl/worksheets/sheet1.xml" else src.read(item))
    monkeypatch.setattr(sheets, "MAX_ROWS", 100)
    start = time.perf_counter()
    doc = open_document(rebuilt)
    assert time.perf_counter() - start < 30
    rows = next(b.rows for b in doc.pages[0].blocks if b.kind == "table")
    assert len(rows) == 100 and rows[99][:2] == ["98", "147"]
    assert doc.status is Status.PARTIAL and "first 100 rows" in doc.pages[0].attrs["notes"][0]
    assert "columns" in doc.pages[0].attrs["notes"][0]  # the cell past column 200
    assert doc.pages[1].text.endswith("still read")  # the next sheet is not lost


def test_a_narrow_sheet_is_read_to_its_row_bound_and_the_cell_budget_counts_cells_read(tmp_path):
    """Three columns by 6,000 rows: every row read (the row bound is 10,000; a bound of cells per widest possible row
    stopped it at 2,500); with a budget of 900 cells, 300 rows of three, and a note saying so."""
    from inference.documents import sheets
    from inference.documents.model import Document

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("long")
    for i in range(6000):
        sheet.append([i, f"item {i}", i * 2])
    path = tmp_path / "long.xlsx"
    book.save(path)
    rows = next(b.rows for b in open_document(path).pages[0].blocks if b.kind == "table")
    assert len(rows) == 6000 and rows[-1] == ["5999", "item 5999", "11998"]
    doc = sheets.read_workbook(Document(source=str(path), sha256="", kind="xlsx"), path, max_cells=900)
    rows = next(b.rows for b in doc.pages[0].blocks if b.kind == "table")
    assert len(rows) == 300 and "first 300 rows" in doc.pages[0].attrs["notes"][0]


def test_a_workbook_listing_a_part_it_lacks_is_read_without_it(tmp_path):
    book = openpyxl.Workbook()
    book.active.append([48929, 0.005, 2.675])
    book.active["A1"].number_format = "00000000"  # an ID padded to eight digits
    book.active["B1"].number_format = "0%"  # Excel rounds half away from zero: 1%
    book.active["C1"].number_format = "0.00"  # 2.675 is stored as 2.67499999...: Excel shows 2.68
    whole = tmp_path / "whole.xlsx"
    book.save(whole)
    lacking = tmp_path / "lacking.xlsx"
    listed = '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    listed += 'spreadsheetml.sharedStrings+xml"/></Types>'
    with zipfile.ZipFile(whole) as src, zipfile.ZipFile(lacking, "w") as out:
        for item in src.infolist():  # [Content_Types].xml names a shared-strings part that is not there
            data = src.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", listed.encode())
            out.writestr(item, data)
    with pytest.raises(KeyError):
        openpyxl.load_workbook(lacking, read_only=True)
    doc = open_document(lacking)
    assert doc.metadata["missing_parts"] == ["xl/sharedStrings.xml"]
    assert doc.pages[0].blocks[1].rows == [["00048929", "1%", "2.68"]]


def test_a_presentation_without_slides_says_so(tmp_path):
    empty = tmp_path / "empty.pptx"
    pptx.Presentation().save(empty)
    with pytest.raises(IngestError, match="no slides"):
        open_document(empty)


def test_dwb_parse_reads_a_locked_docx_with_its_password_file_and_reports_a_damaged_one(tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("msoffcrypto")
    from msoffcrypto.format.ooxml import OOXMLFile

    inbox = tmp_path / "in"
    inbox.mkdir()
    plain = make_docx(tmp_path / "plain.docx")
    with open(plain, "rb") as src, open(inbox / "locked.docx", "wb") as out:
        OOXMLFile(src).encrypt("s3cret", out)
    (inbox / "broken.docx").write_bytes(plain.read_bytes()[:3000])
    make_pptx(inbox / "deck.pptx")
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "app.cli", "parse", str(inbox), "--out", str(out), "--password-file", str(secret)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0  # one document failed
    assert "broken.docx: the Word file is damaged" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "# Annual report" in (out / "locked.md").read_text()
    assert "## Law conformance" in (out / "deck.md").read_text()
