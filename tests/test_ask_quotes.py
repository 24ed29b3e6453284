"""Builtin Ask quotes the lines that answer: on an invoice with a long header and fifteen items, and on a receipt,
both set as text (no table rules, so each is one paragraph of PyMuPDF's lines), a question about the total quotes
the total line, and one about an item quotes that item's row, the question's terms in ``**bold**``."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from inference.documents import open_document
from inference.documents.model import Block
from inference.tasks import BuiltinEngine
from inference.tasks.quotes import asked_value, best_quote, block_units

HEADER = [
    "12 Harbour Road, Portsmouth PO1 2AB, United Kingdom",
    "VAT number GB 123 4567 89, company number 0456789",
    "Phone +44 23 9212 3456, accounts@acme.example",
    "Invoice number INV-2024-0173, invoice date 14 March 2024",
    "Customer: Borealis Engineering GmbH, Lindenstrasse 4, 10969 Berlin",
    "Payment terms: 30 days net, the total amount payable by bank transfer",
    "Bank: Example Bank plc, IBAN GB29 NWBK 6016 1331 9268 19",
]
ITEMS = [
    "Steel bolts M8 x 40",
    "Hex nuts M8",
    "Washers 8 mm",
    "Cable ties 200 mm",
    "Insulation tape",
    "Wire 2.5 mm2 red",
    "Wire 2.5 mm2 blue",
    "Junction box IP65",
    "Cable glands M20",
    "Terminal blocks",
    "DIN rail 1 m",
    "Circuit breaker 16 A",
    "RCD 40 A 30 mA",
    "Labels pack",
    "Delivery",
]
RECEIPT = [("Flat white", "3.40"), ("Croissant", "2.80"), ("Orange juice", "3.95"), ("Bagel with salmon", "7.70")]


def invoice_pdf(path: Path) -> Path:
    """Page 1: an invoice whose header, item rows (a "Total" column) and totals are one block of lines, its
    "Total due" near the bottom; page 2: a café receipt, names on the left and prices ranged right."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    page.insert_text((50, 60), "ACME Supplies Ltd.", fontsize=18)
    y = 90
    for line in HEADER:
        page.insert_text((50, y), line, fontsize=10)
        y += 14
    for x, head in ((50, "Description"), (330, "Qty"), (400, "Unit price"), (500, "Total")):
        page.insert_text((x, y + 10), head, fontsize=10)
    y += 24
    for i, name in enumerate(ITEMS):
        cells = ((50, name), (330, str(i + 1)), (400, f"{10 + i}.50"), (500, f"{(10 + i) * (i + 1)}.00"))
        for x, cell in cells:
            page.insert_text((x, y), cell, fontsize=10)
        y += 14
    for label, amount in (("Subtotal", "1,028.80"), ("VAT 20%", "205.76"), ("Total due:", "1,234.56")):
        page.insert_text((400, y), label, fontsize=10)
        page.insert_text((480, y), amount, fontsize=10)
        y += 14
    page.insert_text((50, y + 30), "Thank you for your business. Please quote the invoice number.", fontsize=10)
    page = pdf.new_page(width=300, height=500)
    y = 40
    for line in ("HARBOUR CAFE", "Quay Street 3, Portsmouth", "Receipt 000481, 2024-03-14 09:12", "Table 4"):
        page.insert_text((30, y), line, fontsize=10)
        y += 14
    for name, price in [*RECEIPT, ("TOTAL", "17.85"), ("Card", "17.85")]:
        page.insert_text((30, y + 10), name, fontsize=10)
        page.insert_text((270 - pymupdf.get_text_length(price, fontsize=10), y + 10), price, fontsize=10)
        y += 14
    page.insert_text((30, y + 30), "Thank you, see you soon!", fontsize=10)
    pdf.save(path)
    return path


def quotes(answer) -> list[str]:
    return [line.split(": \u201c", 1)[1] for line in answer.text.splitlines()[1:]]


def test_a_total_question_quotes_the_total_line_not_the_page_start(tmp_path):
    doc = open_document(invoice_pdf(tmp_path / "invoice.pdf"))
    engine = BuiltinEngine()
    assert engine.ask([doc], "What is the total due?").citations[0].page == 1
    for question in ("What is the total due?", "What is the total?"):  # the receipt has a total too
        answer = engine.ask([doc], question)
        first = next(q for c, q in zip(answer.citations, quotes(answer), strict=True) if c.page == 1)
        assert "1,234.56" in first, (question, answer.text)
        assert "**Total" in first
        assert "ACME" not in first and "Description" not in first and "Steel bolts" not in first


def test_a_receipt_total_is_quoted_with_its_amount(tmp_path):
    doc = open_document(invoice_pdf(tmp_path / "invoice.pdf"))
    answer = BuiltinEngine().ask([doc], "What was the total on the Harbour Cafe receipt?")
    receipt = [q for c, q in zip(answer.citations, quotes(answer), strict=True) if c.page == 2]
    assert receipt and "**TOTAL** 17.85" in receipt[0], answer.text


def test_a_question_about_an_item_quotes_its_row(tmp_path):
    doc = open_document(invoice_pdf(tmp_path / "invoice.pdf"))
    answer = BuiltinEngine().ask([doc], "How much did the circuit breakers cost?")
    assert quotes(answer)[0] == "**Circuit breaker** 16 A 12 21.50 252.00\u201d"


def test_prose_keeps_its_sentences_and_rows_set_as_text_are_cut_at_their_lines():
    prose = "The survey covered the harbour. It found three wrecks near the quay wall and a cable. Nothing else."
    blk = Block("text", prose, (0, 0, 1, 1), 0, attrs={"line_starts": [3, 9]})  # sentences over at most 2 lines
    assert block_units(blk) == [
        "The survey covered the harbour.",
        "It found three wrecks near the quay wall and a cable.",
        "Nothing else.",
    ]
    rows = "Item Qty Price Bolts 2 1.50 Nuts 4 0.80 Total 3.20"
    blk = Block("text", rows, (0, 0, 1, 1), 0, attrs={"line_starts": [3, 6, 9]})
    assert block_units(blk) == ["Item Qty Price", "Bolts 2 1.50", "Nuts 4 0.80", "Total 3.20"]


def test_a_question_for_an_amount_prefers_the_line_that_holds_one():
    passage = "Invoice total and terms: see below\nDescription | Total\nBolts | 3.00\nTotal | 12.40 EUR\nThanks"
    assert asked_value("What is the invoice total?") is not None and asked_value("Who signed it?") is None
    found = best_quote(passage, "What is the invoice total?")
    assert found.answers and found.text == "**Total** | 12.40 EUR"
    assert best_quote(passage, "Who wrote the invoice terms?").text == "**Invoice** total and **terms**: see below"
