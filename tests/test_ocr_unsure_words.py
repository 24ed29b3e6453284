"""OCR words read with little confidence are flagged where the reader looks: set between ``==`` in the Markdown
(``<mark>`` in the HTML) with a visible note naming how many, counted in the JSON and in the ``dwb parse`` summary;
words read with confidence, and a clean scan, stay plain. Pages are drawn here with the DejaVu fonts."""

from __future__ import annotations

import json
import re

from PIL import Image, ImageDraw

from app.cli import main as dwb
from inference.documents.model import UNSURE_WORD, Block, Page
from inference.tasks.markdown import marked_text, page_markdown
from tests.ocr_pages import font, needs_fonts, scanned

SURE = ["The quarterly report was filed on time.", "Revenue grew by twelve percent this year."]
SMALL = ["Flash the firmware at address 0xE0000 on the STM32F3DISCOVERY board", "let count: i32 = items.len() as i32;"]


def screenshot_page() -> Image.Image:
    """Two lines of dark serif text on white, then a dark panel of small grey UI text (a screenshot's console)."""
    image = Image.new("RGB", (1400, 420), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(SURE):
        draw.text((60, 50 + 60 * i), line, font=font("DejaVuSerif.ttf", 40), fill=(0, 0, 0))
    draw.rectangle([40, 200, 1360, 380], fill=(40, 40, 40))
    for i, line in enumerate([*SMALL, "// build 7f3e2a1"]):
        draw.text((60, 220 + 25 * i), line, font=font("DejaVuSans.ttf", 13), fill=(150, 150, 150))
    return image


def clean_page() -> Image.Image:
    """A clean scan of a few lines of body text."""
    image = Image.new("L", (1700, 900), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate([*SURE, "Please sign below and return one copy to the office."] * 2):
        draw.text((120, 120 + 100 * i), line, font=font("DejaVuSerif.ttf", 44), fill=0)
    return scanned(image, angle=0.3, noise=3.0)


def marked(markdown: str) -> list[str]:
    return [w for run in re.findall(r"==(.+?)==", markdown) for w in run.split()]


@needs_fonts
def test_unsure_ocr_words_are_marked_counted_and_summarised_and_a_clean_scan_has_no_marks(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    screenshot_page().save(src / "console.png")
    clean_page().save(src / "letter.png")
    out = tmp_path / "out"
    assert dwb(["parse", str(src), "--engine", "builtin", "--out", str(out), "--format", "md,json,html"]) == 0
    err = capsys.readouterr().err

    page = json.loads((out / "console.json").read_text())["document"]["pages"][0]
    words = [w for b in page["blocks"] for w in b["attrs"].get("words", [])]
    assert words and all(len(w) == 6 for w in words)  # each word keeps its box and Tesseract's confidence
    unsure = [w[0] for w in words if w[5] is not None and w[5] < UNSURE_WORD]
    assert len(unsure) >= 2 and page["attrs"]["unsure_words"] == len(unsure)

    md = (out / "console.md").read_text()
    flagged = marked(md)
    assert len(flagged) >= 2 and set(flagged) <= set(unsure), (flagged, unsure)
    assert f"> **OCR unsure:** {len(unsure)} of {len(words)} words on this page" in md
    for line in SURE:  # read with confidence: plain
        assert line in md and "==" not in next(ln for ln in md.splitlines() if line in ln)
    html = (out / "console.html").read_text()
    assert [w for run in re.findall(r"<mark>(.+?)</mark>", html) for w in run.split()] == flagged

    letter = (out / "letter.md").read_text()
    assert "Please sign below" in letter and "==" not in letter and "OCR unsure" not in letter
    assert "unsure_words" not in json.loads((out / "letter.json").read_text())["document"]["pages"][0]["attrs"]
    assert "1 page(s) with unsure OCR words" in err
    assert (
        f"unsure OCR words: {src / 'console.png'}: {len(unsure)} on page 1" in err
        and "unsure OCR words: " + str(src / "letter.png") not in err
    )


def ocr_block(text: str, confidences: list[float | None], order: int = 0, kind: str = "text") -> Block:
    words = [[w, 0, 0, 1, 1, c] for w, c in zip(text.split(), confidences, strict=True)]
    return Block(kind, text, (0, 0, 1, 1), order, attrs={"source": "ocr", "words": words})  # type: ignore[arg-type]


def test_a_run_of_unsure_words_is_marked_once_and_list_marks_and_corrected_words_stay_plain():
    blk = ocr_block("address 0XxEO000 Board: STM32F3DISCOVERY rev C", [95, 30, 41, 92, 90, 96])
    assert marked_text(blk) == "address ==0XxEO000 Board:== STM32F3DISCOVERY rev C"
    items = ocr_block("- Flash 0xE0000\n- Reset board", [20, 91, 25, 40, 95, 97], kind="list")
    assert marked_text(items) == "- Flash ==0xE0000==\n- Reset board"  # a run never spans two items; marks stay
    items.attrs["edited"] = {"2": "0xEO000"}  # corrected since: checked, not unsure
    assert marked_text(items) == "- Flash 0xE0000\n- Reset board"


def test_the_note_shows_from_a_share_of_unsure_words_or_on_a_low_confidence_page():
    many = ocr_block(" ".join(["word"] * 40), [90.0] * 39 + [10.0])  # 1 in 40: marked, no note
    page = Page(number=1, label="1", width=1, height=1, blocks=[many], scanned=True, confidence=0.9)
    assert "==word==" in page_markdown(page) and "OCR unsure" not in page_markdown(page)
    page.confidence = 0.6  # the page as a whole was read with low confidence: its one unsure word is named
    assert "> **OCR unsure:** 1 of 40 words" in page_markdown(page)
    few = ocr_block("Open the log now", [90, 91, 15, 92])  # 1 in 4
    assert "> **OCR unsure:** 1 of 4 words" in page_markdown(Page(1, "1", 1, 1, blocks=[few], confidence=0.9))
