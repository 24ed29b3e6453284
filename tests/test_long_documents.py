"""Long documents: progress for every page of a text layer, and a stopped run leaves the Markdown of the pages done,
marked partial (in process with a cancel token, and ``dwb parse`` stopped by SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

from inference.batch.partial import PARTIAL_MARK
from inference.batch.runner import run_parse
from inference.errors import CancelledError
from inference.runtime.cancel import CancelToken
from inference.tasks import BuiltinEngine
from inference.tasks.base import TaskContext

ROOT = Path(__file__).resolve().parents[1]


def report(path: Path, pages: int) -> Path:
    pdf = pymupdf.open()
    for i in range(pages):
        page = pdf.new_page()
        page.insert_text((72, 72), f"Section {i + 1}", fontsize=16)
        page.insert_textbox(pymupdf.Rect(72, 100, 520, 760), f"Marker{i + 1:04d} the board met and agreed. " * 40)
    pdf.save(path)
    return path


def test_text_layer_reading_reports_every_page_and_a_cancelled_run_keeps_the_pages_done(tmp_path):
    path = report(tmp_path / "long.pdf", 40)
    cancel = CancelToken()
    heard: list[tuple[int, int, str]] = []

    def progress(done: int, total: int, what: str) -> None:
        heard.append((done, total, what))
        if "page 12 read" in what:
            cancel.cancel()

    with pytest.raises(CancelledError):
        run_parse([path], tmp_path / "out", BuiltinEngine(), context=TaskContext(cancel=cancel, progress=progress))
    assert [d for d, t, w in heard if w.endswith("read")][:12] == list(range(1, 13))
    assert all(t == 40 for _, t, _ in heard)
    markdown = (tmp_path / "out" / "long.md").read_text(encoding="utf-8")
    assert markdown.startswith(f"{PARTIAL_MARK} 12 of 40 pages read; the run was stopped")
    assert "Marker0012" in markdown and "Marker0013" not in markdown


def test_dwb_parse_stopped_by_sigterm_leaves_partial_markdown(tmp_path):
    path = report(tmp_path / "long.pdf", 400)
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "parse", str(path), "--format", "md", "--out", str(out)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in run.stderr:
        if "page 20 read" in line:
            break
    time.sleep(0.2)
    run.send_signal(signal.SIGTERM)
    run.stderr.read()
    assert run.wait(timeout=120) != 0
    markdown = (out / "long.md").read_text(encoding="utf-8")
    assert markdown.startswith(PARTIAL_MARK) and "of 400 pages read" in markdown
    assert "Marker0020" in markdown and "Marker0400" not in markdown
