"""OCR of several pages at once (--jobs): the same text as one at a time, progress per page, cancellation."""

from __future__ import annotations

import os

import pymupdf
import pytest

from inference.documents import open_document
from inference.errors import CancelledError
from inference.runtime.cancel import CancelToken
from inference.tasks.base import ParseOptions, TaskContext
from inference.tasks.builtin import OCR_PAGE_BYTES, BuiltinEngine, ocr_jobs


def _scans(path, pages: int) -> None:
    drawn, scan = pymupdf.open(), pymupdf.open()
    for n in range(pages):
        page = drawn.new_page(width=300, height=200)
        page.insert_text((20, 60), f"Page number {n + 1} of the scan", fontsize=14)
        pix = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
        scan.new_page(width=300, height=200).insert_image(page.rect, stream=pix.tobytes("png"))
    scan.save(path)


@pytest.mark.slow
def test_parallel_ocr_reads_what_serial_ocr_reads_and_reports_every_page(tmp_path):
    _scans(tmp_path / "s.pdf", 4)
    doc = open_document(tmp_path / "s.pdf")
    serial = BuiltinEngine().parse(doc, ParseOptions(ocr_jobs=1, ocr_lang="eng"))
    seen: list[tuple[int, int, str]] = []
    parallel = BuiltinEngine().parse(
        doc, ParseOptions(ocr_jobs=3, ocr_lang="eng"), TaskContext(progress=lambda d, t, w: seen.append((d, t, w)))
    )
    assert parallel.markdown == serial.markdown
    assert all(f"Page number {n} of the scan" in parallel.markdown for n in range(1, 5))
    read = [d for d, _, w in seen if w.endswith("read")]
    assert sorted(read) == [1, 2, 3, 4]  # one report per page as it finishes
    assert {w.split("page ")[1].split()[0] for _, _, w in seen if w.endswith("read")} == {"1", "2", "3", "4"}


def test_cancelled_parse_stops_before_reading_pages(tmp_path):
    _scans(tmp_path / "s.pdf", 3)
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        BuiltinEngine().parse(open_document(tmp_path / "s.pdf"), ParseOptions(ocr_jobs=2), TaskContext(cancel=token))


def test_jobs_never_exceed_the_pages_and_default_to_the_cores(monkeypatch):
    from inference.weights import devices

    monkeypatch.setattr(devices, "host_available_bytes", lambda: 8 * OCR_PAGE_BYTES)
    assert ocr_jobs(8, 3) == 3
    assert ocr_jobs(1, 100) == 1
    assert ocr_jobs(16, 100) == 8  # the memory bound
    monkeypatch.setattr(devices, "host_available_bytes", lambda: None)  # not told: the cores and pages decide
    assert ocr_jobs(8, 3) == 3
    monkeypatch.undo()
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    if (devices.host_available_bytes() or 0) < 3 * OCR_PAGE_BYTES:
        pytest.skip("free memory under three OCR pages (two and a margin): the memory bound decides, not the cores")
    assert ocr_jobs(None, 100) == 2  # the core count
    assert ocr_jobs(None, 1) == 1
