"""Re-denoising a selected span of a model transcription: the text around the span is pinned on the canvas and kept
token for token, the span is written afresh (no special tokens), in the engine's task API and in the window's raw
Markdown ("Re-denoise selection"). Real tiny model, PyMuPDF document, Qt offscreen."""

from __future__ import annotations

import pymupdf
import pytest

from inference.documents import open_document
from inference.errors import ConfigError
from inference.runtime.events import DenoisingStep
from inference.runtime.params import DiffusionParams

TEXT = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun."
SPAN = "brown fox jumps"


@pytest.fixture(scope="module")
def one_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("doc") / "fox.pdf"
    pdf = pymupdf.open()
    pdf.new_page(width=300, height=200).insert_text((20, 40), TEXT[:40], fontsize=9)
    pdf.save(path)
    return open_document(path)


@pytest.fixture(scope="module")
def engine():
    from inference.tasks.model import ModelEngine
    from inference.weights.loading import load_model

    return ModelEngine(load_model("tiny"), DiffusionParams(max_new_tokens=256, max_denoising_steps=4, seed=3))


def test_the_text_around_the_span_is_kept_and_the_span_written_afresh(engine, one_page):
    from inference.tasks import TaskContext

    start = TEXT.index(SPAN)
    end = start + len(SPAN)
    steps: list[DenoisingStep] = []
    context = TaskContext(on_event=lambda e: steps.append(e) if isinstance(e, DenoisingStep) else None)
    new = engine.redenoise_span(one_page, 1, TEXT, start, end, context)
    assert steps, "the span was denoised step by step"
    assert new.startswith(TEXT[:start]) and new.endswith(TEXT[end:])
    middle = new[start : len(new) - len(TEXT[end:])]
    assert middle and middle != SPAN  # random weights do not write the same words again
    tokenizer = engine.loaded.tokenizer
    special = {tokenizer.decode([i]) for i in tokenizer.all_special_ids}
    assert not any(s and s in middle for s in special)
    again = engine.redenoise_span(one_page, 1, new, 0, 3, context)  # another span of the new text
    assert again.endswith(new[3:])


def test_an_empty_or_outside_selection_is_a_clear_error(engine, one_page):
    with pytest.raises(ConfigError, match="Select the text"):
        engine.redenoise_span(one_page, 1, TEXT, 5, 5)
    with pytest.raises(ConfigError, match="Select the text"):
        engine.redenoise_span(one_page, 1, TEXT, 10, len(TEXT) + 4)
    with pytest.raises(ConfigError, match="no page 9"):
        engine.redenoise_span(one_page, 9, TEXT, 0, 3)


@pytest.mark.slow
def test_re_denoise_selection_in_the_window_keeps_the_rest_of_the_markdown(window, qtbot, one_page):
    pytest.importorskip("pytestqt")
    from PySide6.QtGui import QTextCursor

    from app.gui.redenoise import redenoise_selection, target
    from tests.qt_helpers import TIMEOUT, ingested, load_tiny

    window.add_paths([one_page.source])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=256, max_denoising_steps=4)
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    parsed = window.entries[window.current].parsed
    assert parsed.engine == "model"
    page_text = parsed.document.pages[0].blocks[0].text
    assert len(page_text) > 12, "the tiny model wrote a transcription to select in"
    raw = window.results.raw
    assert target(window) is None  # nothing selected: the action is off
    at = raw.toPlainText().index(page_text)
    cursor = raw.textCursor()
    cursor.setPosition(at + 4)
    cursor.setPosition(at + 10, QTextCursor.MoveMode.KeepAnchor)
    raw.setTextCursor(cursor)
    assert target(window) is not None
    before = raw.toPlainText()
    assert redenoise_selection(window) is not None
    qtbot.waitUntil(lambda: "Re-denoised the selection" in window.status_label.text(), timeout=TIMEOUT)
    after = raw.toPlainText()
    assert after == parsed.markdown.replace("\r\n", "\n")
    assert after.startswith(before[: at + 4])
    new_text = parsed.document.pages[0].blocks[0].text
    assert new_text.endswith(page_text[10:]) and after.endswith(before[at + len(page_text) :])
