"""Batch parse through the real CLI: bad files listed, exit code, SIGKILL in the middle then resume; exports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

from inference.batch.runner import MANIFEST, plan, run_parse
from inference.documents import open_document
from inference.errors import ConfigError
from inference.exports import inside, parse_formats, safe_name, write_parse
from inference.tasks import BuiltinEngine
from tests.helpers import DATA, needs_shared

ROOT = Path(__file__).resolve().parents[1]
needs_data = needs_shared("data")
HOSTILE = {
    "zero.pdf": b"",
    "random.pdf": os.urandom(4096),
    "noise.png": b"\x89PNG\r\n\x1a\n" + os.urandom(100),
    "broken.mp4": b"\x00\x00\x00\x18ftypmp42" + os.urandom(200),
}


def dwb(*args: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def snapshot(out: Path, names: list[str]) -> dict[str, tuple[bytes, int]]:
    return {n: ((out / n).read_bytes(), (out / n).stat().st_mtime_ns) for n in names}


@needs_data
def shared_sample() -> list[Path]:
    """Every kind of file the shared data holds, not every file: ocrmypdf's odd ones (enormous, 2400 dpi, invalid,
    blank, skewed, images and text; long scans left to the OCR tests), the media, and the smallest few of each larger
    set."""

    def short(f: Path) -> bool:
        if f.suffix != ".pdf":
            return True
        try:
            with pymupdf.open(f) as doc:
                return doc.page_count <= 2
        except (RuntimeError, ValueError):  # an invalid PDF is one of the kinds
            return True

    files = sorted(p for p in DATA.rglob("*") if p.is_file() and short(p))
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    chosen = []
    for folder, members in by_folder.items():
        keep = len(members) if folder.name in ("ocrmypdf", "media") else 3
        chosen += sorted(members, key=lambda f: f.stat().st_size)[:keep]
    return sorted(chosen)


def test_every_kind_of_shared_file_plus_hostile_ones_killed_midway_then_resumed(tmp_path):
    inbox = tmp_path / "inbox"
    for src in shared_sample():
        link = inbox / src.relative_to(DATA)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(src)
    bad = inbox / "hostile"
    bad.mkdir()
    for name, data in HOSTILE.items():
        (bad / name).write_bytes(data)
    real = (DATA / "docling/pdf/redp5110_sampled.pdf").read_bytes()
    (bad / "truncated.pdf").write_bytes(real[: len(real) // 2])
    out = tmp_path / "out"

    first = dwb("parse", str(inbox), "--out", str(out), "--format", "md,json")
    manifest = out / MANIFEST
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        if manifest.exists() and len(json.loads(manifest.read_text())["documents"]) >= 6:
            break
        time.sleep(0.2)
    assert first.poll() is None, "the batch finished before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = {k: e for k, e in json.loads(manifest.read_text())["documents"].items() if e["status"] != "failed"}
    outputs = [f for entry in finished.values() for f in entry["outputs"]]
    before = snapshot(out, outputs)

    second = dwb("parse", str(inbox), "--out", str(out), "--format", "md,json")
    _, err = second.communicate(timeout=600)
    assert second.returncode == 1, err  # bad files make the exit code non-zero
    assert snapshot(out, outputs) == before  # finished documents untouched: same bytes, same mtime
    assert f"{len(finished)} already done" in err
    items = plan([inbox])
    failed_lines = [ln for ln in err.splitlines() if ln.strip().startswith("failed:")]
    failed = {Path(ln.split(":", 2)[1].strip()).name for ln in failed_lines}
    assert {"zero.pdf", "random.pdf", "noise.png", "broken.mp4", "invalid.pdf"} <= failed, err
    assert "Traceback" not in err
    entries = json.loads(manifest.read_text())["documents"]
    assert len(entries) == len(items)  # failed documents too: their entry says why, and a rerun tries them again
    failures = [e for e in entries.values() if e["status"] == "failed" and e["errors"] and not e["outputs"]]
    assert len(failures) == len(failed_lines)
    for item in items:
        if item.path.name in failed:
            continue
        md = out / item.subdir / f"{item.stem}.md"
        assert md.is_file() and (out / item.subdir / f"{item.stem}.json").is_file(), item.path
    assert "truncated.pdf" not in failed  # a truncated PDF parses in part: its page errors are listed
    assert "partial:" in err and "truncated.pdf" in err


def test_resume_skips_finished_and_force_redoes(tmp_path):
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    for i in range(2):
        pdf = pymupdf.open()
        pdf.new_page().insert_text((72, 72), f"Document {i} text", fontsize=12)
        pdf.save(folder / f"d{i}.pdf")
    (folder / "d0.txt").write_text("a text file with the same stem", encoding="utf-8")
    out = tmp_path / "out"
    engine = BuiltinEngine()
    first = run_parse([tmp_path / "in"], out, engine, formats=("md", "txt"), per_page=True)
    assert [i.status for i in first.items] == ["done", "done", "done"]
    assert (out / "sub" / "d0_pdf_pg1.md").is_file() and (out / "sub" / "d0_txt_pg1.md").is_file()
    assert (out / "sub" / "d1_pg1.md").read_text().startswith("<!-- page 1 -->")
    again = run_parse([tmp_path / "in"], out, engine, formats=("md", "txt"), per_page=True)
    assert [i.status for i in again.items] == ["skipped"] * 3
    other = run_parse([tmp_path / "in"], out, engine, formats=("md",), per_page=False)  # other options: redo
    assert [i.status for i in other.items] == ["done"] * 3
    forced = run_parse([tmp_path / "in"], out, engine, formats=("md",), force=True)
    assert [i.status for i in forced.items] == ["done"] * 3


def test_exports_every_format_and_never_escape_the_folder(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 60), "Quarterly figures", fontsize=18)
    rows = [["Region", "Q1", "Q2"], ["North", "10", "12"], ["South", "7", "9"]]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            page.insert_text((80 + c * 100, 120 + r * 20), cell, fontsize=10)
    for r in range(len(rows) + 1):
        page.draw_line((72, 106 + r * 20), (372, 106 + r * 20))
    for c in range(len(rows[0]) + 1):
        page.draw_line((72 + c * 100, 106), (72 + c * 100, 166))
    src = tmp_path / "report.pdf"
    pdf.save(src)
    result = BuiltinEngine().parse(open_document(src))
    out = tmp_path / "out"
    written = write_parse(result, out, "report", parse_formats("md,json,txt,html,csv"))
    names = sorted(p.name for p in written)
    assert names == ["report.html", "report.json", "report.md", "report.txt", "report_p1_t1.csv"]
    assert (out / "report_p1_t1.csv").read_text().splitlines() == ["Region,Q1,Q2", "North,10,12", "South,7,9"]
    assert "| Region | Q1 | Q2 |" in (out / "report.md").read_text()
    assert "<h1>Quarterly figures</h1>" in (out / "report.html").read_text()
    data = json.loads((out / "report.json").read_text())
    assert data["document"]["pages"][0]["blocks"][0]["bbox"]
    assert "Quarterly figures" in (out / "report.txt").read_text()
    # names from inputs are sanitised; nothing lands outside the output folder
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("..") == "document"
    evil = write_parse(result, out, "../../evil", ("md",), subdir="../../up")
    assert all(out.resolve() in p.resolve().parents for p in evil)
    assert not (tmp_path.parent / "evil.md").exists()
    assert inside(out, "a", "b.md") == (out / "a" / "b.md").resolve()
    with pytest.raises(ConfigError):
        parse_formats("md,docx")
