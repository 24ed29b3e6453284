"""Headless (no Qt): correcting an OCR word changes the block, its Markdown and the counts of unsure words; a session
with parses, answers and extractions round-trips through JSON with the correction kept, and what is not a session
is refused by name."""

from __future__ import annotations

import json

import pytest

from inference.documents.model import Block, Document, Page
from inference.ocr.review import correct_word, describe_counts, page_words, unsure_counts
from inference.session_file import (
    SavedDocument,
    SavedRun,
    SessionError,
    SessionState,
    from_json,
    load_session,
    save_session,
    set_aside,
    to_json,
)
from inference.tasks.base import Answer, Citation, Extraction, ParseResult
from inference.tasks.markdown import page_markdown


def scanned(words: list[tuple[str, float | None]]) -> ParseResult:
    """A one-page builtin parse with one OCR block whose words carry the given confidences."""
    boxes = [[text, 10.0 + 40 * i, 10.0, 45.0 + 40 * i, 22.0, conf] for i, (text, conf) in enumerate(words)]
    text = " ".join(w for w, _ in words)
    block = Block("text", text, (10, 10, 45 + 40 * len(words), 22), 0, attrs={"source": "ocr", "words": boxes})
    page = Page(1, "1", 612, 792, scanned=True, blocks=[block])
    doc = Document("/tmp/scan.png", "0" * 64, "image", [page])
    pages = [page_markdown(page)]
    return ParseResult(doc, "\n\n".join(pages).strip() + "\n", pages, "builtin")


def test_correcting_a_word_changes_its_block_markdown_and_count():
    parsed = scanned([("the", 96.0), ("qnick", 31.0), ("brown", None), ("the", 40.0)])
    assert unsure_counts(parsed.document) == {1: 2}
    assert describe_counts({1: 2, 3: 5}) == "unsure words: p. 1: 2, p. 3: 5"
    word = correct_word(parsed, 1, 0, 3, "fox")  # the second "the": the first one stays
    assert parsed.document.pages[0].blocks[0].text == "the qnick brown fox"
    assert word.text == "fox" and word.edited_from == "the" and not word.unsure
    assert "the ==qnick== brown fox" in parsed.markdown and parsed.pages[0] in parsed.markdown  # still unsure
    assert unsure_counts(parsed.document) == {1: 1} and parsed.document.pages[0].attrs["unsure_words"] == 1
    correct_word(parsed, 1, 0, 1, "quick")
    assert parsed.document.pages[0].blocks[0].text == "the quick brown fox"
    assert "the quick brown fox" in parsed.markdown and "==" not in parsed.markdown  # checked: no longer marked
    assert "unsure_words" not in parsed.document.pages[0].attrs
    assert [w.confidence for w in page_words(parsed.document.pages[0])] == [96.0, 31.0, None, 40.0]
    correct_word(parsed, 1, 0, 1, "qnick")  # back to what OCR read: no longer marked as corrected
    assert page_words(parsed.document.pages[0])[1].edited_from is None
    with pytest.raises(ValueError):
        correct_word(parsed, 1, 0, 0, "  ")


def test_a_session_round_trips_with_a_corrected_word(tmp_path):
    parsed = scanned([("Totl", 20.0), ("42", 91.0)])
    correct_word(parsed, 1, 0, 0, "Total")
    citation = Citation("/tmp/scan.png", 1, "1", "Total 42", 1.5)
    state = SessionState(
        documents=[SavedDocument("/tmp/scan.png", [SavedRun(parsed, "builtin", seconds=0.4)], 0, 1)],
        answers=[(("/tmp/scan.png",), Answer("total?", "- page 1: Total 42", [citation], "retrieved", "builtin"))],
        extractions=[Extraction({"total": 42}, {"/total": citation}, True, [], "best-effort", "builtin")],
        extraction_scope=["/tmp/scan.png"],
        current="/tmp/scan.png",
        selected=["/tmp/scan.png"],
    )
    path = save_session(tmp_path / "session.json", state)
    again = load_session(path)
    assert json.loads(to_json(again)) | {"saved_at": 0} == json.loads(to_json(state)) | {"saved_at": 0}
    kept = again.documents[0].runs[0].parsed
    assert kept.document.pages[0].blocks[0].text == "Total 42" and "Total 42" in kept.markdown
    assert page_words(kept.document.pages[0])[0].edited_from == "Totl"
    assert again.answers[0][1].citations[0].where == "scan.png, p. 1"
    assert again.extractions[0].sources["/total"].text == "Total 42"
    assert load_session(tmp_path / "none.json") is None


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"format": "other"}', '{"format": "diffusion-workbench-session", "version": 99}', '{"format": "diff'],
)
def test_what_is_not_a_session_is_refused_and_set_aside(tmp_path, text):
    path = tmp_path / "session.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SessionError):
        load_session(path)
    moved = set_aside(path)
    assert not path.exists() and moved.read_text(encoding="utf-8") == text
    with pytest.raises(SessionError):
        from_json('{"format": "diffusion-workbench-session", "version": 1, "documents": [{"runs": []}]}')
