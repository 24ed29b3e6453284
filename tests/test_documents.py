"""Documents in: every shared file opens; hostile inputs give clear errors or partial results."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from inference.documents import Document, Status, ingest, open_document
from inference.errors import IngestError
from tests.helpers import DATA, needs_shared

pytestmark = needs_shared("data")
HOSTILE = ("ocrmypdf/invalid.pdf", "ocrmypdf/enormous.pdf", "ocrmypdf/no_contents.pdf", "ocrmypdf/blank.pdf")


def assert_clear(message: str | None):
    assert message and "Traceback" not in message and len(message) < 600


def test_every_shared_file_opens_or_fails_clearly():
    results = ingest([DATA])
    assert len(results) > 60
    for r in results:
        if r.document is None:
            assert_clear(r.error)
        else:
            assert r.document.pages, r.path
            for err in r.document.errors:
                assert_clear(err.message)
    failed = {Path(r.path).relative_to(DATA).as_posix() for r in results if r.document is None}
    assert failed == {"ocrmypdf/invalid.pdf"}, failed


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_pdfs(name):
    path = DATA / name
    if name.endswith("invalid.pdf"):
        with pytest.raises(IngestError) as err:
            open_document(path)
        assert "not a readable PDF" in err.value.user_message() and str(path) in err.value.user_message()
        return
    doc = open_document(path)
    assert doc.status is Status.COMPLETE and doc.pages
    if name.endswith("enormous.pdf"):
        image = doc.render(1, dpi=144)  # a huge page renders within a pixel cap instead of exhausting memory
        assert image.width * image.height <= 41_000_000


def test_truncated_pdf_is_partial_with_per_page_errors(tmp_path):
    source = DATA / "docling/pdf/redp5110_sampled.pdf"
    data = source.read_bytes()
    with pymupdf.open(source) as pdf:
        assert pdf[17].get_text().strip()  # the original's last page has text
    cut = tmp_path / "truncated.pdf"
    cut.write_bytes(data[: len(data) // 2])
    doc = open_document(cut)
    assert doc.metadata["repaired"]
    assert doc.status is Status.PARTIAL, [p.text[:30] for p in doc.pages]
    bad = [e.page for e in doc.errors]
    assert bad and all(b is not None for b in bad) and 18 in bad
    assert not doc.pages[2].error and doc.pages[2].text.strip()  # pages before the cut keep their text
    for e in doc.errors:
        assert "truncated" in e.message


def test_encrypted_pdf_with_and_without_password(tmp_path):
    path = tmp_path / "secret.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 72), "Confidential figures: 42")
    pdf.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="owner")
    with pytest.raises(IngestError, match="encrypted and no password"):
        open_document(path)
    with pytest.raises(IngestError, match="password is wrong"):
        open_document(path, password=lambda _p: "nope")
    doc = open_document(path, password=lambda _p: "s3cret")
    assert "Confidential figures: 42" in doc.pages[0].text
    assert doc.render(1, dpi=50).width > 0


def test_zero_bytes_random_bytes_and_bomb(tmp_path):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.pdf"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_big_png(30000, 30000))
    results = {Path(r.path).name: r for r in ingest([empty, noise, bomb])}
    assert "empty" in results["empty.pdf"].error
    assert "not a readable PDF" in results["noise.pdf"].error
    assert "decompression bomb" in results["bomb.png"].error and "900000000" in results["bomb.png"].error
    for r in results.values():
        assert r.status is Status.FAILED
        assert_clear(r.error)


def _big_png(width, height):
    """A valid 1-bit PNG whose header says width x height (compresses to ~100 KB)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_corrupt_mp4(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    with pytest.raises(IngestError) as err:
        open_document(bad)
    assert_clear(err.value.user_message())


def test_shared_mp4_gives_frames_with_timestamps():
    doc = open_document(DATA / "docling/media/sample_10s_video.mp4")
    assert doc.kind == "video" and 2 <= len(doc.pages) <= 16
    stamps = [p.timestamp for p in doc.pages]
    assert stamps == sorted(stamps) and stamps[-1] > 5
    assert all(p.label == f"{int(p.timestamp // 60):02d}:{int(p.timestamp % 60):02d}" for p in doc.pages)
    assert doc.render(1).size == (doc.pages[0].width, doc.pages[0].height)


def test_three_scene_video_gives_a_frame_per_scene(tmp_path):
    import cv2

    path = tmp_path / "scenes.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    colours = [(20, 20, 200), (30, 200, 30), (220, 120, 10)]
    rng = np.random.default_rng(1)
    for colour in colours:
        for _ in range(20):  # 2 s per scene, with a little noise
            frame = np.full((120, 160, 3), colour, np.uint8)
            frame = np.clip(frame + rng.integers(-8, 8, frame.shape), 0, 255).astype(np.uint8)
            writer.write(frame)
    writer.release()
    doc = open_document(path)
    assert doc.metadata["selection"] == "scenes"
    scenes = {int(p.timestamp // 2) for p in doc.pages}
    assert scenes == {0, 1, 2}


def test_tiff_every_page_and_text_files():
    tiff = open_document(DATA / "docling/media/2206.01062.tif")
    assert tiff.kind == "image" and len(tiff.pages) >= 2 and all(p.scanned for p in tiff.pages)
    md = open_document(DATA / "docling/groundtruth/multi_page.md")
    assert md.kind == "text" and any(b.kind == "heading" for b in md.pages[0].blocks)


def test_born_digital_and_scanned_pages_are_told_apart():
    digital = open_document(DATA / "docling/pdf/multi_page.pdf")
    assert all(p.has_text_layer and not p.scanned for p in digital.pages)
    assert any(b.kind == "heading" for p in digital.pages for b in p.blocks)
    scan = open_document(DATA / "ocrmypdf/skew.pdf")
    assert scan.pages[0].scanned and scan.pages[0].text_layer == "none"
    ocrd = open_document(DATA / "olmocr-sample/pdfs/mattsnotes.pdf")
    assert all(p.scanned and p.text_layer == "invisible" for p in ocrd.pages)


def test_tables_come_out_as_rows():
    doc = open_document(DATA / "docling/pdf/2305.03393v1-pg9.pdf")
    tables = [b for p in doc.pages for b in p.blocks if b.kind == "table"]
    assert tables and all(len(t.rows) >= 2 for t in tables)


def test_json_round_trip_is_lossless():
    doc = open_document(DATA / "docling/pdf/redp5110_sampled.pdf")
    data = json.loads(json.dumps(doc.to_dict()))
    back = Document.from_dict(data)
    assert back.to_dict() == doc.to_dict()
    assert back.pages[2].blocks[0].bbox == doc.pages[2].blocks[0].bbox


def test_page_labels_and_lazy_open(tmp_path):
    path = tmp_path / "thousand.pdf"
    pdf = pymupdf.open()
    for i in range(1000):
        pdf.new_page().insert_text((72, 72), f"Page {i + 1} body text")
    pdf.set_page_labels(
        [
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 4, "prefix": "", "style": "D", "firstpagenum": 1},
        ]
    )
    pdf.save(path)
    doc = open_document(path)
    assert len(doc.pages) == 1000 and doc.pages[0].label == "i" and doc.pages[4].label == "1"
    assert doc.render(1, dpi=30).height > 0
