"""OCR languages (--ocr-lang, TESSDATA_PREFIX, the page's script picking one) and passwords of encrypted PDFs."""

from __future__ import annotations

import os
import subprocess
import sys

import pymupdf
import pytest
from PIL import Image

from inference.errors import IngestError
from inference.ocr.reader import detect_language
from inference.ocr.tesseract import can_read_script, installed_languages, ocr_image, tessdata_path

JAPANESE = "これは日本語の文書です。東京と大阪と京都を旅行しました。"
GERMAN = "Die Straße führt über die Brücke zur Größe der Stadt."


def dwb(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _page_image(lines: list[str], font: str, size: int = 16) -> Image.Image:
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=300)
    if font.endswith(".ttf"):
        page.insert_font(fontname="f", fontfile=font)
        font = "f"
    for i, line in enumerate(lines):
        page.insert_text((30, 50 + i * size * 2), line, fontname=font, fontsize=size)
    pix = page.get_pixmap(dpi=200)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def _text(paragraphs) -> str:
    return " ".join(text for text, _, _ in paragraphs)


def test_packaged_languages_are_installed():
    assert {"eng", "deu", "jpn"} <= set(installed_languages())
    assert "osd" not in installed_languages()


def test_unknown_language_is_a_clear_error_naming_the_installed_ones():
    with pytest.raises(IngestError, match=r"not installed: xxx \(installed: .*eng"):
        tessdata_path("eng+xxx")
    with pytest.raises(IngestError, match="not an OCR language list"):
        tessdata_path("eng; rm")


def test_page_script_picks_japanese_and_reads_it():
    image = _page_image([JAPANESE[:18], JAPANESE[18:]] * 3, "japan", size=18)
    assert detect_language(image) == "jpn"
    text = _text(ocr_image(image, "jpn")).replace(" ", "")
    assert sum(ch in text for ch in "日本語東京大阪京都") >= 7


def test_german_model_reads_umlauts_and_sharp_s():
    image = _page_image([GERMAN[:28], GERMAN[28:]], "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    assert detect_language(image) == "eng"  # Latin script: the first installed Latin language
    text = _text(ocr_image(image, "deu"))
    assert "Straße" in text and "Größe" in text


def test_tessdata_prefix_folder_adds_languages(tmp_path, monkeypatch):
    eng = os.path.join(tessdata_path("eng"), "eng.traineddata")
    os.symlink(eng, tmp_path / "mine.traineddata")  # a language model the packages do not have
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert "mine" in installed_languages()
    assert tessdata_path("mine") == str(tmp_path)
    image = _page_image(["Hello from the prefix folder"], "helv", size=20)
    assert "prefix" in _text(ocr_image(image, "mine"))


def test_text_layer_is_replaced_only_when_ocr_reads_its_script():
    assert can_read_script("这是中文", None)  # jpn is installed and reads Han
    assert not can_read_script("这是中文", "eng")
    assert not can_read_script("مرحبا بالعالم", None)  # no Arabic model installed: the layer is kept
    assert can_read_script("plain English", "deu")


def _encrypted_pdf(path, secret: str) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Quarterly figures are confidential", fontsize=12)
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=secret, owner_pw=secret + "-owner")


def test_cli_parses_encrypted_pdf_with_password_and_password_file(tmp_path):
    pdf = tmp_path / "secret.pdf"
    _encrypted_pdf(pdf, "s3cret")
    refused = dwb("parse", str(pdf), "--out", str(tmp_path / "none"))
    assert refused.returncode == 1 and "--password" in refused.stderr and "Traceback" not in refused.stderr
    wrong = dwb("parse", str(pdf), "--out", str(tmp_path / "wrong"), "--password", "nope")
    assert wrong.returncode == 1 and "password is wrong" in wrong.stderr
    ok = dwb("parse", str(pdf), "--out", str(tmp_path / "ok"), "--password", "s3cret")
    assert ok.returncode == 0, ok.stderr
    assert "confidential" in (tmp_path / "ok" / "secret.md").read_text()
    secret_file = tmp_path / "pw.txt"
    secret_file.write_text("s3cret\n")
    answer = dwb("ask", str(pdf), "what is confidential?", "--password-file", str(secret_file))
    assert answer.returncode == 0, answer.stderr
    assert "confidential" in answer.stdout


def test_cli_refuses_an_ocr_language_that_is_not_installed(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    proc = dwb("parse", str(tmp_path / "a.txt"), "--out", str(tmp_path / "o"), "--ocr-lang", "eng+klingon")
    assert proc.returncode != 0
    assert "klingon" in proc.stderr and "Traceback" not in proc.stderr
