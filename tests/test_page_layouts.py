"""Page layouts the builtin engine reads in reading order: two to four columns (born-digital and scanned), text and
tables printed sideways on a portrait page, and pages with ``/Rotate``."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from inference.batch.kept import PageStore
from inference.documents import open_document
from inference.documents.pdf import open_pdf
from inference.tasks import BuiltinEngine

WORDS = (
    "the of and to in is was for on that with as by at from it an be this which or are have not has but were had "
    "their been one all its more also can into other than some when time only may two new first these such after"
).split()
MARK = re.compile(r"mark(\d{3})")


def columns_pdf(path: Path, columns: int, seed: int, gutter: float = 10, justify: bool = True) -> list[str]:
    """A page of ``columns`` columns of 9-point text under a full-width title, numbered ``markNNN`` in reading order,
    with bold 12-point section headings set close to the paragraphs (PyMuPDF groups some into them), each column
    starting with a short line; a heading always has a paragraph after it. Returns the section headings drawn."""
    rnd = random.Random(seed)
    pdf = pymupdf.open()
    page = pdf.new_page()
    width = (page.rect.width - 80 - (columns - 1) * gutter) / columns
    page.insert_text((40, 60), "Annual Report Of The Society", fontsize=20)
    mark, headings = 0, []
    for c in range(columns):
        x, y, first, after_heading = 40 + c * (width + gutter), 90.0, True, False
        while y < 740:
            if not first and not after_heading and rnd.random() < 0.25:
                title = f"Section {len(headings):02d}"
                left = page.insert_textbox(pymupdf.Rect(x, y, x + width, 760), title, fontsize=12, fontname="hebo")
                if left < 0:
                    break
                headings.append(title)
                y, after_heading = 760 - left + 3, True
                continue
            words = []
            for i in range(rnd.randint(3, 8) if first else rnd.randint(15, 50)):
                words.append(f"mark{mark + i // 3:03d}" if i % 3 == 0 else rnd.choice(WORDS))
            box = pymupdf.Rect(x, y, x + width, 760)
            left = page.insert_textbox(
                box, " ".join(words) + ".", fontsize=9, fontname="helv", align=3 if justify else 0
            )
            if left < 0:
                break
            mark += (len(words) + 2) // 3
            first = after_heading = False
            y = 760 - left + 5.4
    pdf.save(path)
    return headings


def assert_columns_read_in_order(markdown: str, headings: list[str], every_heading: bool = True) -> None:
    marks = [int(m) for m in MARK.findall(markdown)]
    assert len(marks) > 150
    assert marks == sorted(marks), "columns interleaved"
    found = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    expected = ["Annual Report Of The Society", *headings]
    if every_heading:
        assert found == expected  # no false headings, none missed
    else:  # OCR tells headings by line height: a 12-point one over 9-point text can pass as text, never the reverse
        assert set(found) <= set(expected) and len(found) * 3 >= len(expected) * 2


@pytest.mark.parametrize(("columns", "gutter"), [(2, 7), (3, 7), (3, 14), (4, 10)])
def test_columns_are_read_one_after_the_other(tmp_path, columns, gutter):
    for seed in range(2):  # justified, ragged
        path = tmp_path / f"c{columns}_{seed}.pdf"
        headings = columns_pdf(path, columns, seed, gutter=gutter, justify=seed == 0)
        assert_columns_read_in_order(BuiltinEngine().parse(open_document(path)).markdown, headings)


@pytest.mark.slow
def test_a_scanned_three_column_page_is_read_column_by_column(tmp_path):
    headings = columns_pdf(tmp_path / "digital.pdf", 3, seed=4, gutter=14)
    pdf = pymupdf.open(tmp_path / "digital.pdf")
    scan = tmp_path / "scan.png"
    pdf[0].get_pixmap(dpi=200).save(scan)
    parsed = BuiltinEngine().parse(open_document(scan))
    assert parsed.document.pages[0].attrs["ocr"] == "tesseract"
    assert_columns_read_in_order(parsed.markdown, headings, every_heading=False)


ROWS = [["Region", "Sales", "Costs", "Margin"], ["North", "120", "80", "40"], ["South", "200", "150", "50"]]
ROWS += [["East", "90", "70", "20"], ["West", "310", "200", "110"], ["Central", "75", "60", "15"]]


def landscape_source(ruled: bool) -> pymupdf.Document:
    src = pymupdf.open()
    page = src.new_page(width=842, height=595)
    page.insert_text((60, 60), "Quarterly Results", fontsize=18)
    page.insert_textbox(pymupdf.Rect(60, 80, 780, 140), "The board reviewed the figures below.", fontsize=11)
    for i, row in enumerate(ROWS):
        for j, cell in enumerate(row):
            page.insert_text((64 + j * 120, 175 + i * 22), cell, fontsize=11)
    if ruled:
        for i in range(len(ROWS) + 1):
            page.draw_line((60, 160 + i * 22), (540, 160 + i * 22))
        for j in range(5):
            page.draw_line((60 + j * 120, 160), (60 + j * 120, 160 + len(ROWS) * 22))
    return src


def sideways_pdf(path: Path, turn: int, ruled: bool, rotate_page: bool) -> Path:
    """A landscape page with a table, drawn turned by ``turn`` degrees on a portrait page; with ``rotate_page`` the
    page's ``/Rotate`` turns it back for display, without it a reader turns the sheet."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    if rotate_page:
        page.set_rotation(turn)
    page.show_pdf_page(page.rect, landscape_source(ruled), 0, rotate=turn)
    pdf.save(path)
    return path


@pytest.mark.parametrize("turn", [90, 270])
@pytest.mark.parametrize("rotate_page", [False, True])
def test_sideways_tables_come_out_in_reading_orientation(tmp_path, turn, rotate_page):
    path = sideways_pdf(tmp_path / "t.pdf", turn, ruled=True, rotate_page=rotate_page)
    parsed = BuiltinEngine().parse(open_document(path))
    page = parsed.document.pages[0]
    assert page.width > page.height  # landscape, as read
    assert page.attrs.get("turned", 0) == (0 if rotate_page else turn)
    tables = [b for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1 and tables[0].rows == ROWS  # not transposed, rows neither reversed nor merged
    md = parsed.markdown
    assert md.index("# Quarterly Results") < md.index("The board reviewed") < md.index("| Region | Sales |")


@pytest.mark.parametrize("turn", [90, 270])
def test_sideways_unruled_tables_keep_their_rows_apart(tmp_path, turn):
    path = sideways_pdf(tmp_path / "t.pdf", turn, ruled=False, rotate_page=False)
    md = BuiltinEngine().parse(open_document(path)).markdown
    rows = [md.index(" ".join(row)) for row in ROWS]  # each row's cells together, in reading order
    assert rows == sorted(rows)
    assert md.index("Quarterly Results") < rows[0]


def scanned_sideways_table(folder: Path, how: str) -> Path:
    """The ruled landscape table as a 200 dpi scan: an image turned a quarter, or a PDF page with ``/Rotate 90``
    whose image is stored turned (displayed upright)."""
    pix = landscape_source(ruled=True)[0].get_pixmap(dpi=200)
    turned = Image.frombytes("RGB", (pix.width, pix.height), pix.samples).rotate(90, expand=True)
    if how == "image":
        turned.save(folder / "table.png")
        return folder / "table.png"
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    page.set_rotation(90)
    buf = io.BytesIO()
    turned.save(buf, format="PNG")
    page.insert_image(page.rect, stream=buf.getvalue())
    pdf.save(folder / "table.pdf")
    return folder / "table.pdf"


@pytest.mark.parametrize("how", ["image", "pdf"])
def test_a_scanned_sideways_ruled_table_comes_out_upright_row_by_row(tmp_path, how):
    parsed = BuiltinEngine().parse(open_document(scanned_sideways_table(tmp_path, how)))
    page = parsed.document.pages[0]
    assert page.attrs["ocr"] == "tesseract"
    tables = [b for b in page.blocks if b.kind == "table"]  # Tesseract reads its columns (or rows) as paragraphs
    assert len(tables) == 1 and tables[0].rows == ROWS
    assert parsed.markdown.index("The board reviewed") < parsed.markdown.index("| Region | Sales |")
    assert {w[0] for w in tables[0].attrs["words"]} >= {"Region", "Central", "310"}  # searchable PDF words kept


def test_a_page_read_turned_is_rendered_turned(tmp_path):
    doc = open_document(sideways_pdf(tmp_path / "t.pdf", 90, ruled=True, rotate_page=False))
    page = doc.pages[0]
    image = doc.render(1, 72)
    assert abs(image.width - page.width) <= 1 and abs(image.height - page.height) <= 1


def test_a_page_read_turned_and_kept_is_rendered_turned_in_the_rerun(tmp_path):
    path = sideways_pdf(tmp_path / "t.pdf", 90, ruled=True, rotate_page=False)
    first = open_pdf(path, pages=PageStore.open(tmp_path / "kept", {"input": "t"}))
    store = PageStore.open(tmp_path / "kept", {"input": "t"})
    again = open_pdf(path, pages=store)  # the page taken from the earlier run, not read again
    assert store.kept == 1 and again.pages[0].attrs["turned"] == 90
    assert again.render(1, 72).size == first.render(1, 72).size
    assert again.render(1, 72).width > again.render(1, 72).height


def test_sideways_lines_on_an_upright_page_read_along_their_direction(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 500, 400), "An upright paragraph of ordinary text. " * 12, fontsize=11)
    page.insert_text((540, 700), "Printed up the margin", fontsize=10, rotate=90)
    page.insert_text((40, 450), "Printed down the margin", fontsize=10, rotate=270)
    pdf.save(tmp_path / "margin.pdf")
    parsed = BuiltinEngine().parse(open_document(tmp_path / "margin.pdf"))
    assert "turned" not in parsed.document.pages[0].attrs  # most of the text is upright: the page is not turned
    assert "Printed up the margin" in parsed.markdown and "Printed down the margin" in parsed.markdown


OPTIONS = [
    (
        "--bind ADDR",
        "Listen on this address instead of the loopback interface, primarily for interoperability with "
        "existing applications that expect the server on every interface.",
    ),
    (
        "--workers N",
        "Start this many worker processes; each one keeps its own connection pool and its own cache of "
        "compiled templates.",
    ),
    (
        "--timeout S",
        "Close a connection that has been idle for this many seconds, which frees its worker for the next "
        "client in the queue.",
    ),
    (
        "--log FILE",
        "Write the access log to this file rather than to the journal; the file is reopened when the "
        "process receives a hangup.",
    ),
    ("--quiet", "Print nothing but errors on the terminal, which is what most init systems expect from a service."),
]


def test_a_ruled_definition_list_keeps_each_description_whole_in_its_row(tmp_path):
    """Terms on the left, descriptions wrapped over two or three lines on the right, a rule between entries: the
    table finder makes a row of every description line; the wrapped lines join their description again, so no
    sentence is cut into cells."""
    import textwrap

    pdf = pymupdf.open()
    page = pdf.new_page()
    y = 60.0
    for term, description in OPTIONS:
        page.draw_line((40, y - 12), (555, y - 12), color=(0.6, 0.6, 0.6), width=0.5)
        page.insert_text((40, y), term, fontsize=9, fontname="cour")
        lines = textwrap.wrap(description, 70)
        for i, line in enumerate(lines):
            page.insert_text((170, y + 12 * i), line, fontsize=9, fontname="helv")
        y += 12 * len(lines) + 10
    page.draw_line((40, y - 12), (555, y - 12), color=(0.6, 0.6, 0.6), width=0.5)
    pdf.save(tmp_path / "options.pdf")
    doc = open_document(tmp_path / "options.pdf")
    tables = [b for b in doc.pages[0].blocks if b.kind == "table"]
    assert len(tables) == 1
    assert tables[0].rows == [[term, description] for term, description in OPTIONS]


def test_grouped_rows_with_an_empty_first_cell_stay_rows_of_their_own():
    """A table whose group label is left blank on the rows after it (short cells, or whole sentences) keeps them."""
    from inference.documents.pdf_tables import join_wrapped_rows

    grouped = [["Fruit", "apple", "3"], ["", "pear", "5"], ["", "plum", "2"], ["Vegetable", "leek", "1"]]
    assert join_wrapped_rows(grouped) == grouped
    sentences = [
        ["2023", "The harbour was dredged to a depth of twelve metres."],
        ["", "A second quay opened for the ferries in the spring."],
    ]
    assert join_wrapped_rows(sentences) == sentences
