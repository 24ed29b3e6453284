"""Classes of failure met on files found on a user's machine: page labels written as hex strings, animated images,
a text file named like an old Office one, and one unreadable file in a folder asked about."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pymupdf
from PIL import Image

from inference.documents import ingest, open_document
from inference.tasks import BuiltinEngine

ROOT = Path(__file__).resolve().parents[1]


def test_page_labels_written_as_hex_strings_read_as_text(tmp_path):
    """Labels stored as ``<FEFF0031>`` (UTF-16 with a byte order mark, as DocBook's toolchain writes them) come out
    as "1", never as the hex string, in the document, its Markdown and the citations built on them."""
    pdf = pymupdf.open()
    for i in range(3):
        pdf.new_page().insert_text((72, 72), f"Chapter text on page {i + 1}.")
    nums = "".join(f"{i}<</P<FEFF{''.join(f'{ord(c):04X}' for c in str(i + 1))}>>>" for i in range(3))
    pdf.xref_set_key(pdf.pdf_catalog(), "PageLabels", f"<</Nums[{nums}]>>")
    pdf.save(tmp_path / "labels.pdf")
    assert pymupdf.open(tmp_path / "labels.pdf")[0].get_label().startswith("<FEFF")  # what PyMuPDF passes on
    doc = open_document(tmp_path / "labels.pdf")
    assert [p.label for p in doc.pages] == ["1", "2", "3"]
    assert "FEFF" not in BuiltinEngine().parse(doc).markdown


def test_an_animated_image_says_only_its_first_frame_was_read(tmp_path):
    frames = [Image.new("L", (200, 80), 255 - 20 * i) for i in range(5)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    result = BuiltinEngine().parse(open_document(tmp_path / "anim.gif"))
    assert "an animated GIF of 5 frames: only its first frame was read" in result.markdown
    Image.new("L", (200, 80), 255).save(tmp_path / "still.gif")
    assert "animated" not in BuiltinEngine().parse(open_document(tmp_path / "still.gif")).markdown


def test_a_text_file_named_like_a_word_file_is_read_as_text_with_a_note(tmp_path):
    (tmp_path / "notes.doc").write_text("Debugger notes\n\nThe pdb module defines an interactive debugger.\n")
    (tmp_path / "binary.doc").write_bytes(b"\x00\x01\x02junk" * 50)
    results = {Path(r.path).name: r for r in ingest([tmp_path / "notes.doc", tmp_path / "binary.doc"])}
    doc = results["notes.doc"].document
    assert doc is not None and "interactive debugger" in " ".join(b.text for b in doc.pages[0].blocks)
    assert "notes.doc is plain text, not a .doc file: read as text" in doc.pages[0].attrs["notes"]
    assert results["binary.doc"].document is None and "not a Word" in results["binary.doc"].error


def test_ask_over_a_folder_skips_an_unreadable_file_and_says_so(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a PDF")
    (folder / "guide.txt").write_text("Setup\n\nThe default port of the server is 8042.\n")
    args = [sys.executable, "-m", "app.cli", "ask", str(folder), "What is the default port?"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "8042" in proc.stdout, proc.stderr
    assert "skipped, could not be read:" in proc.stderr and "broken.pdf" in proc.stderr
    assert proc.returncode == 1 and "--allow-truncation" in proc.stderr and "Traceback" not in proc.stderr
    accepted = subprocess.run([*args, "--allow-truncation"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert accepted.returncode == 0 and "8042" in accepted.stdout


def test_a_contents_page_set_in_bold_gives_entries_not_headings(tmp_path):
    """LaTeX sets a contents page's section entries in bold at body size ("1 Foo 2"): they are paragraphs, not a
    second set of headings before the real ones; headings such as "Step 1" to "Step 3" on one page stay headings."""
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 72), "Contents", fontsize=16, fontname="hebo")
    entries = ["1 Introduction 2", "2 Methods 3", "2.1 Sampling ....... 4", "3 Results 7", "4 Discussion 9"]
    for i, entry in enumerate(entries):
        page.insert_text((72, 110 + 22 * i), entry, fontsize=10, fontname="hebo")
    page = pdf.new_page()
    for i in range(3):  # numbered steps as headings: not contents entries
        page.insert_text((72, 72 + 60 * i), f"Step {i + 1}", fontsize=10, fontname="hebo")
        page.insert_text((72, 100 + 60 * i), "What to do in this step follows its heading.", fontsize=10)
    pdf.save(tmp_path / "report.pdf")
    doc = open_document(tmp_path / "report.pdf")
    first = [(b.kind, b.text) for b in doc.pages[0].blocks if b.text.strip()]
    assert first[0] == ("heading", "Contents")
    assert [kind for kind, _ in first[1:]] == ["text"] * len(entries)
    assert [text for _, text in first[1:]] == entries
    steps = [(b.kind, b.text) for b in doc.pages[1].blocks if b.text.startswith("Step")]
    assert steps == [("heading", f"Step {i}") for i in (1, 2, 3)]


def test_a_footnote_mark_after_a_number_stays_apart_from_it(tmp_path):
    """A superscript mark right after a number (Google Docs' "273.879.750¹") read as a plain digit makes another
    number ("273.879.7501"): it is kept as a superscript character, as an exponent is; a digit at text size after a
    number is not touched."""
    pdf = pymupdf.open()
    page = pdf.new_page()
    head = "Population 273.879.750"
    page.insert_text((72, 100), head, fontsize=11)
    page.insert_text((72 + pymupdf.get_text_length(head, fontsize=11), 95), "1", fontsize=6.6)
    page.insert_text((72, 130), "Area 10", fontsize=11)
    page.insert_text((72 + pymupdf.get_text_length("Area 10", fontsize=11), 125), "6", fontsize=6.6)
    page.insert_text((72, 160), "Room 101 on floor 3", fontsize=11)
    pdf.save(tmp_path / "facts.pdf")
    text = open_document(tmp_path / "facts.pdf").pages[0].text
    assert "273.879.750¹" in text and "2738797501" not in text.replace(".", "")
    assert "Area 10⁶" in text and "Room 101 on floor 3" in text
