"""Pages kept as they finish: a parse killed (SIGKILL) or stopped by ``--doc-timeout`` part way through a long
document leaves its finished pages on disk, and a rerun parses only the others, then writes the same files as an
uninterrupted run. Kept pages made from another input or with other options, or under ``--force``, are not used."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from inference.batch.kept import PageStore
from inference.batch.runner import MANIFEST, PAGES, page_settings, pages_folder, plan, run_parse
from inference.documents.model import Page
from inference.tasks import BuiltinEngine
from inference.tasks.base import ParseOptions, TaskContext

ROOT = Path(__file__).resolve().parents[1]
PAGE_COUNT = 6
OPTIONS = ParseOptions(ocr_lang="eng", ocr_jobs=1)  # one page at a time: pages finish in order
CLI_OPTIONS = ["--ocr-lang", "eng", "--jobs", "1", "--format", "md,json"]


def scanned_pdf(path: Path, pages: int) -> Path:
    """``pages`` image-only pages (no text layer: each is read by OCR), small enough to OCR quickly."""
    pdf = pymupdf.open()
    font = ImageFont.load_default(size=28)
    for n in range(1, pages + 1):
        img = Image.new("L", (600, 300), 255)
        draw = ImageDraw.Draw(img)
        draw.text((30, 40), f"Page {n} of the scanned report", fill=0, font=font)
        draw.text((30, 110), f"Total for item {n}: {n * 17} euros", fill=0, font=font)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        page = pdf.new_page(width=300, height=150)
        page.insert_image(page.rect, stream=buf.getvalue())
    pdf.save(path)
    return path


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """The scanned PDF and the files of an uninterrupted parse of it."""
    folder = tmp_path_factory.mktemp("scanned")
    src = scanned_pdf(folder / "scan.pdf", PAGE_COUNT)
    out = folder / "whole"
    result = run_parse([src], out, BuiltinEngine(), formats=("md", "json"), options=OPTIONS)
    assert [i.status for i in result.items] == ["done"] and result.items[0].kept == 0
    assert not (out / PAGES).exists()  # a finished document keeps no pages: its files hold them all
    return src, {name: (out / name).read_bytes() for name in ("scan.md", "scan.json")}


def ocr_records(out: Path) -> list[Path]:
    return sorted((out / PAGES / "scan").glob("ocr-*.json"))


def dwb(*args: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_a_killed_parse_keeps_its_finished_pages_and_a_rerun_parses_only_the_rest(scanned, tmp_path):
    src, whole = scanned
    out = tmp_path / "out"
    first = dwb("parse", str(src), "--out", str(out), *CLI_OPTIONS)
    deadline = time.monotonic() + 120
    while first.poll() is None and time.monotonic() < deadline and len(ocr_records(out)) < 2:
        time.sleep(0.02)
    assert first.poll() is None, "the parse finished before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = ocr_records(out)
    assert 2 <= len(kept) < PAGE_COUNT
    assert not (out / "scan.md").exists()  # the document never finished ...
    for path in kept:  # ... but every finished page is on disk, whole, with what OCR read on it
        page = Page.from_dict(json.loads(path.read_text())["page"])
        assert f"Page {page.number} of the scanned report" in page.text and page.attrs["ocr"] == "tesseract"
    done = [int(re.search(r"(\d+)", p.name).group(1)) for p in kept]
    assert done == list(range(1, len(kept) + 1))

    second = dwb("parse", str(src), "--out", str(out), *CLI_OPTIONS)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"scan.pdf: {len(kept)} page(s) OCR'd in an earlier run, {PAGE_COUNT - len(kept)} page(s) to OCR" in err
    read = [int(n) for n in re.findall(r"scan\.pdf: page (\d+) read", err)]
    assert sorted(read) == list(range(len(kept) + 1, PAGE_COUNT + 1))  # only the pages that were missing ran
    assert f"{len(kept)} pages kept from an earlier run" in err
    assert {name: (out / name).read_bytes() for name in whole} == whole  # as an uninterrupted run writes them
    assert not (out / PAGES).exists()


def test_a_document_past_doc_timeout_keeps_its_pages_and_a_rerun_goes_on(scanned, tmp_path):
    src, whole = scanned
    out = tmp_path / "out"
    limit, stopped = 0.05, []
    while True:  # a limit that stops the document after some pages and before the last, whatever this machine's pace
        result = run_parse([src], out, BuiltinEngine(), formats=("md", "json"), options=OPTIONS, doc_timeout=limit)
        item = result.items[0]
        if item.status == "done":
            break
        assert item.status == "failed" and "(--doc-timeout)" in item.message
        stopped.append(len(ocr_records(out)))
        if stopped[-1]:
            assert "its finished pages are kept for a rerun" in item.message
            entry = json.loads((out / MANIFEST).read_text())["documents"]["scan.pdf"]
            assert entry["status"] == "failed" and entry["pages"] == f"{PAGES}/scan"
            break
        limit *= 2
    assert stopped and 0 < stopped[-1] < PAGE_COUNT, (stopped, limit)
    pages: list[str] = []
    again = run_parse(
        [src],
        out,
        BuiltinEngine(),
        formats=("md", "json"),
        options=OPTIONS,
        context=TaskContext(progress=_lines(pages)),
    )
    assert again.items[0].status == "done" and again.items[0].kept == stopped[-1]
    assert [w for w in pages if w.endswith(" read")] == [
        f"scan.pdf: page {n} read" for n in range(stopped[-1] + 1, PAGE_COUNT + 1)
    ]
    assert {name: (out / name).read_bytes() for name in whole} == whole


def _lines(into: list[str]):
    return lambda _done, _total, what: into.append(what)


def test_kept_pages_are_used_only_for_the_same_input_and_options_and_never_under_force(tmp_path):
    """A kept page stands in for reading the page again: a page kept with a marked text shows which were used."""
    src = tmp_path / "memo.pdf"
    pdf = pymupdf.open()
    for n in (1, 2):
        pdf.new_page().insert_text((72, 72), f"Page {n} as printed.", fontsize=12)
    pdf.save(src)
    out = tmp_path / "out"
    engine = BuiltinEngine()
    item = plan([src])[0]
    from inference.documents import open_document
    from inference.documents.model import file_sha256

    def plant(options: ParseOptions) -> None:
        store = PageStore.open(pages_folder(out, item), page_settings(file_sha256(src), engine, options))
        page = open_document(src).pages[0]
        page.blocks[0].text = "Page 1 from the kept pages."
        store.keep_page("read", page)

    def parse(**kw) -> str:
        result = run_parse([src], out, engine, force=kw.pop("force", False), **kw)
        assert result.items[0].status == "done"
        return (out / "memo.md").read_text()

    plant(ParseOptions())
    text = parse(options=ParseOptions(furniture=True))  # another option: the kept page is not used
    assert "Page 1 as printed." in text and not (out / PAGES).exists()
    plant(ParseOptions())
    assert "Page 1 as printed." in parse(options=ParseOptions(), force=True)  # --force discards them
    plant(ParseOptions())
    (out / "memo.md").unlink()  # the document must be parsed again
    text = parse(options=ParseOptions(), formats=("md", "txt"))  # output options keep them
    assert "Page 1 from the kept pages." in text and "Page 2 as printed." in text
    assert not (out / PAGES).exists()  # the document is done: its kept pages go

    other = tmp_path / "other.pdf"
    other.write_bytes(src.read_bytes() + b"\n%")  # another input under the same name
    store = PageStore.open(pages_folder(out, item), page_settings(file_sha256(src), engine, ParseOptions()))
    store.keep_page("read", open_document(src).pages[0])
    reopened = PageStore.open(pages_folder(out, item), page_settings(file_sha256(other), engine, ParseOptions()))
    assert reopened.page("read", 1) is None and not reopened.folder.exists()


def test_a_page_store_survives_cut_writes_and_damaged_records(tmp_path):
    folder = tmp_path / "store"
    store = PageStore.open(folder, {"sha256": "x"})
    assert not folder.exists()  # nothing written before the first page
    page = Page(number=3, label="iii", width=100, height=50, attrs={"ocr": "tesseract"})
    store.keep_page("ocr", page)
    store.keep_text("model", 3, "three")
    store.keep_page("ocr", Page(number=4, label="4", width=1, height=1, error="OCR failed"))  # never kept
    (folder / ".ocr-00005.json.abc.part").write_text('{"page": {')  # a write a kill cut off
    (folder / "ocr-00006.json").write_text('{"page": {"number":')  # a damaged record: that page is parsed again
    again = PageStore.open(folder, {"sha256": "x"})
    assert again.page("ocr", 3) == page and again.text("model", 3) == "three"
    assert again.page("ocr", 4) is None and again.page("ocr", 6) is None
    assert not list(folder.glob("*.part"))
    assert again.kept == 1 and again.pages_on_disk == 2  # page 3 reused whole; 6 is there but unreadable
    assert PageStore.open(folder, {"sha256": "x"}, fresh=True).page("ocr", 3) is None


@pytest.mark.slow
def test_the_model_engine_keeps_each_transcribed_page_and_a_rerun_transcribes_only_the_rest(tmp_path):
    """Stopped after its first page (cancelled, as Ctrl-C does), a model parse keeps that page's transcription; the
    rerun generates only the other page and writes what an uninterrupted run with the same seed writes."""
    from inference.errors import CancelledError
    from inference.runtime.cancel import CancelToken
    from inference.runtime.events import Finished, PrefillStarted
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    src = tmp_path / "two.pdf"
    pdf = pymupdf.open()
    for n in (1, 2):
        pdf.new_page().insert_text((72, 72), f"Page {n}: item {n * 7} costs {n * 3} euros.", fontsize=11)
    pdf.save(src)
    engine = ModelEngine(load_model("tiny", dtype="fp32", device="cpu"))
    engine.params = engine.engine.default_params(max_new_tokens=32, max_denoising_steps=2, seed=0)
    options = ParseOptions(batch_size=1)

    def parse(out: Path, context: TaskContext) -> str:
        result = run_parse([src], out, engine, formats=("md", "json"), options=options, context=context)
        assert result.items[0].status == "done"
        return f"{result.items[0].kept} kept"

    whole = tmp_path / "whole"
    assert parse(whole, TaskContext()) == "0 kept"
    out, cancel = tmp_path / "out", CancelToken()

    def stop_after_one_page(event) -> None:
        if isinstance(event, Finished):
            cancel.cancel()

    with pytest.raises(CancelledError):
        parse(out, TaskContext(on_event=stop_after_one_page, cancel=cancel))
    records = sorted(p.name for p in (out / PAGES / "two").glob("model-*.json"))
    assert records == ["model-00001.json"]
    events: list = []
    assert parse(out, TaskContext(on_event=events.append)) == "1 kept"
    assert sum(isinstance(e, PrefillStarted) for e in events) == 1  # page 2 only
    for name in ("two.md", "two.json"):
        assert (out / name).read_bytes() == (whole / name).read_bytes()
