"""Document tasks on the builtin engine: parse quality on real pages, OCR accuracy, ask with page citations, extract."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from rapidfuzz.distance import Levenshtein

from app.cli import main as dwb
from inference.documents import open_document
from inference.errors import ConfigError
from inference.tasks import BuiltinEngine, ParseOptions
from inference.tasks.layout import FURNITURE, find_gutters
from inference.tasks.markdown import table_html
from tests.helpers import DATA, SHARED, needs_shared

ROOT = Path(__file__).resolve().parents[1]
needs_data = needs_shared("data")


def last_number(output: str, key: str) -> float:
    m = re.search(rf"{key}=([0-9.]+)\s*$", output.strip())
    assert m, output[-500:]
    return float(m.group(1))


# Floors a stated margin under the figures measured on this data (``pytest -s`` prints them): a change that loses
# more than the margin fails, and noise of a page or two does not.
OLMOCR_SCORE = 0.50  # measured 0.521: 0.021 under, and "at least half" as the test's name says
DOCLING_MEAN = 0.93  # measured 0.949: 0.019 under
DOCLING_WORST = 0.82  # measured 0.845 (right_to_left_01): 0.025 under


@needs_data
def test_olmocr_checks_score_at_least_half(tmp_path):
    out = tmp_path / "olm"
    assert dwb(["parse", str(DATA / "olmocr-sample/pdfs"), "--per-page", "--engine", "builtin", "--out", str(out)]) == 0
    run = subprocess.run(
        [sys.executable, str(SHARED / "tools/olmocr_checks.py"), str(DATA / "olmocr-sample/dataset.jsonl"), str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    score = last_number(run.stdout, "score")
    print(run.stdout)
    assert score >= OLMOCR_SCORE


@needs_data
def test_docling_markdown_is_similar_to_the_ground_truth_on_average_and_on_every_document(tmp_path):
    out = tmp_path / "docling"
    assert dwb(["parse", str(DATA / "docling/pdf"), "--out", str(out)]) == 0
    run = subprocess.run(
        [sys.executable, str(SHARED / "tools/md_similarity.py"), str(DATA / "docling/groundtruth"), str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    scores = [float(v) for v in re.findall(r"^\S+: ([0-9.]+)$", run.stdout, flags=re.M)]
    assert len(scores) == 9
    assert last_number(run.stdout, "mean_similarity") >= DOCLING_MEAN
    assert min(scores) >= DOCLING_WORST


@needs_data
def test_ocr_character_error_rate_on_linn():
    doc = open_document(DATA / "ocrmypdf/linn.png")
    parsed = BuiltinEngine().parse(doc)
    text = " ".join(b.text for b in parsed.document.pages[0].blocks)
    reference = (DATA / "ocrmypdf/linn.txt").read_text(encoding="utf-8")

    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s).strip()

    cer = Levenshtein.distance(norm(reference), norm(text)) / len(norm(reference))
    print(f"CER {cer:.4f}")
    assert cer <= 0.03
    assert parsed.document.pages[0].attrs["ocr"] == "tesseract"


QUESTIONS = [  # written after reading the document; the page is where the answer is
    ("How many data breaches does the Identity Theft Resource Center report?", 5),
    ("Which CL commands work with, display or change function usage IDs?", 8),
    ("Which global variable holds the IP address of the current client?", 12),
    ("What value does the special register CURRENT_USER hold?", 11),
    ("What are the two fundamental steps in securing information assets?", 6),
]


@needs_data
def test_ask_builtin_cites_the_answering_page_first():
    engine = BuiltinEngine()
    doc = engine.parse(open_document(DATA / "docling/pdf/redp5110_sampled.pdf")).document
    for question, page in QUESTIONS:
        answer = engine.ask([doc], question)
        assert answer.kind == "retrieved" and "not an answer" in answer.text
        assert answer.citations[0].page == page, (question, answer.pages)
        assert answer.citations[0].text
    nothing = engine.ask([doc], "zzzz qqqq")
    assert nothing.citations == [] and "No passage" in nothing.text


def make_pdf(path: Path, pages: list[list[tuple[tuple[float, float], str, float]]]) -> Path:
    pdf = pymupdf.open()
    for items in pages:
        page = pdf.new_page(width=612, height=792)
        for (x, y), text, size in items:
            page.insert_text((x, y), text, fontsize=size)
    pdf.save(path)
    return path


def two_column_pages(n: int) -> list[list[tuple[tuple[float, float], str, float]]]:
    pages = []
    for p in range(n):
        items = [
            ((72, 40), "ACME Quarterly Report", 9),
            ((300, 760), str(p + 1), 9),
            ((72, 90), f"Title of page {p + 1}", 20),
        ]
        for col, x in enumerate((72, 330)):
            for para in range(3):
                for line in range(4):
                    y = 140 + para * 90 + line * 14
                    items.append(((x, y), f"col{col} para{para} line{line} words words", 10))
        pages.append(items)
    return pages


def test_layout_reads_columns_in_order_and_drops_furniture(tmp_path):
    doc = open_document(make_pdf(tmp_path / "cols.pdf", two_column_pages(3)))
    assert find_gutters(doc.pages[0].blocks, doc.pages[0].width)
    parsed = BuiltinEngine().parse(doc)
    md = parsed.pages[1]
    assert md.startswith("<!-- page 2 -->")
    order = [md.index(f"col{c} para{p}") for c in (0, 1) for p in range(3)]
    assert order == sorted(order)  # left column top to bottom, then the right column
    assert md.index("Title of page 2") < order[0]
    assert "ACME Quarterly Report" not in md and not re.search(r"^2$", md, flags=re.M)
    kinds = {b.text: b.kind for b in parsed.document.pages[1].blocks}
    assert kinds["ACME Quarterly Report"] == "header" and kinds["2"] == "page_number"
    kept = BuiltinEngine().parse(doc, ParseOptions(furniture=True)).pages[1]
    assert "ACME Quarterly Report" in kept
    assert doc.pages[1].blocks[0].kind != "header"  # the caller's document is not modified


def test_a_transcription_leaves_out_the_furniture_its_text_layer_marks(tmp_path):
    """A model may copy the running header and page number it was told to leave out: the lines at the start and end
    of its transcription that are the page's furniture (as the text layer has it) go, as in the builtin parse; the
    same words inside the text stay."""
    from inference.tasks.layout import analyse
    from inference.tasks.markdown import without_furniture

    doc = analyse(open_document(make_pdf(tmp_path / "cols.pdf", two_column_pages(3))))
    page = doc.pages[1]
    body = "# Title of page 2\n\ncol0 para0 line0 words words\n2\nACME Quarterly Report was filed."
    copied = f"## ACME  quarterly report\n\n{body}\n\n**2**\n"
    assert without_furniture(copied, page) == body
    assert without_furniture(body, page) == body
    assert without_furniture("ACME Quarterly Report\n2", page) == ""
    titled = "ACME Quarterly Report\n# ACME Quarterly Report\n\ntext"
    assert without_furniture(titled, page) == "# ACME Quarterly Report\n\ntext"  # the header goes, the title stays
    body_only = [((72, 300 + 14 * i), f"line {i} of a page that has no header", 11) for i in range(6)]
    plain = analyse(open_document(make_pdf(tmp_path / "one.pdf", [body_only]))).pages[0]
    assert not [b for b in plain.blocks if b.kind in FURNITURE]
    assert without_furniture("2\nline 0 of a page", plain) == "2\nline 0 of a page"  # nothing marked: all kept


def test_merged_cells_become_html():
    html = table_html([["Name", "Q1", "Q2"], ["Total", "7", ""]], [[1, 1, 1], [1, 2, 0]])
    assert '<td colspan="2">7</td>' in html and html.count("<tr>") == 2


def test_extract_builtin_from_key_values_and_tables(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 72), "Invoice number: INV-2041", fontsize=11)
    page.insert_text((72, 90), "Customer: Blue Heron Ltd", fontsize=11)
    page = pdf.new_page()
    page.insert_text((72, 72), "Total amount: 1,250.40 EUR", fontsize=11)
    page.insert_text((72, 90), "Paid: yes", fontsize=11)
    path = tmp_path / "invoice.pdf"
    pdf.save(path)
    schema = {
        "type": "object",
        "required": ["invoice_number", "total_amount", "due_date"],
        "properties": {
            "invoice_number": {"type": "string"},
            "customer": {"type": "string"},
            "total_amount": {"type": "number"},
            "paid": {"type": "boolean"},
            "due_date": {"type": "string"},
        },
    }
    engine = BuiltinEngine()
    doc = engine.parse(open_document(path)).document
    result = engine.extract([doc], schema)
    assert result.kind == "best-effort"
    assert result.value == {
        "invoice_number": "INV-2041",
        "customer": "Blue Heron Ltd",
        "total_amount": 1250.4,
        "paid": True,
    }
    assert result.sources["/total_amount"].page == 2 and result.sources["/invoice_number"].page == 1
    assert not result.valid and any("due_date" in e for e in result.errors)
    with pytest.raises(ConfigError):
        engine.extract([doc], {"type": "object", "properties": {"a": {"type": "no-such-type"}}})
