"""The results tabs: committed text streams into the running task's tab as canvases commit, and the raw
Markdown and JSON are highlighted. Offscreen, real widgets, the real worker and the tiny model; no mocks."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QPlainTextEdit

from app.gui import SAMPLE, apply_scheme
from app.gui.highlight import DARK, LIGHT, MAX_CHARS, JsonHighlighter, MarkdownHighlighter, show_text
from inference.runtime.events import CanvasCommitted
from tests.qt_helpers import TIMEOUT, ingested, load_tiny


def words(text: str) -> str:
    return " ".join(text.split())


# streaming ----------------------------------------------------------------------------------------------------------
def test_an_answer_streams_into_the_answer_tab_as_canvases_commit(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=768, max_denoising_steps=3)
    window.engine_box.setCurrentText("model")
    window.model_engine.engine.eos_token_ids = []  # three full canvases
    window.results.setCurrentWidget(window.results.rendered)
    seen = []  # at each commit, after the window's own handlers (connected first): what the tab shows

    def on_event(event):
        if isinstance(event, CanvasCommitted):
            seen.append(
                (
                    event.texts[0],
                    window.results.currentWidget() is window.results.answer,
                    window.results.answer.toPlainText(),
                )
            )

    question = "What does the sample say about block diffusion?"
    job = window.ask(question)
    job.event.connect(on_event)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert len(seen) == 3
    so_far = ""
    for text, on_answer_tab, shown in seen:
        so_far += text
        assert on_answer_tab and question in shown
        assert words(shown).endswith(words(so_far + "\u2026"))  # every canvas committed so far, and only those
    final = window.results.answer.toPlainText()
    assert window.results.streaming is None and "\u2026" not in final.split(question)[-1][-3:]
    assert words(window.results.thread[-1].text) in words(final)


def test_a_parse_streams_into_the_markdown_tab_and_the_result_replaces_it(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=256, max_denoising_steps=3)
    window.engine_box.setCurrentText("model")
    seen = []

    def on_event(event):
        if isinstance(event, CanvasCommitted):
            seen.append(
                (event.texts[0], window.results.currentWidget() is window.results.raw, window.results.raw.toPlainText())
            )

    job = window.parse()
    job.event.connect(on_event)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert len(seen) == 2  # one canvas per page, page by page
    assert all(tab for _, tab, _ in seen)
    assert words(seen[0][0]) in words(seen[0][2]) and words(seen[0][2]) in words(seen[1][2])
    assert words(seen[1][0]) in words(seen[1][2])
    entry = window.entries[str(SAMPLE.resolve())]
    reference = QPlainTextEdit()  # what a plain-text view shows of the result (it normalises control characters)
    reference.setPlainText(entry.parsed.markdown)
    assert window.results.raw.toPlainText() == reference.toPlainText()  # the result, not the stream
    assert window.results.streaming is None


# highlighting -------------------------------------------------------------------------------------------------------
def formats(view: QPlainTextEdit, line: int) -> list[tuple[str, QColor, bool, bool]]:
    """(text, colour, bold, italic) of each formatted range the highlighter laid on ``line``."""
    block = view.document().findBlockByNumber(line)
    text = block.text()
    return [
        (
            text[r.start : r.start + r.length],
            r.format.foreground().color(),
            r.format.fontWeight() >= QFont.Weight.Bold,
            r.format.fontItalic(),
        )
        for r in block.layout().formats()
    ]


def test_the_markdown_highlighter_formats_headings_emphasis_code_and_pipes(qtbot):
    view = QPlainTextEdit()
    qtbot.addWidget(view)
    highlighter = MarkdownHighlighter(view.document())
    show_text(
        view,
        "# Title\nplain **bold** and *it* with `code`, snake_case\n| a | b |\n|---|---|\n"
        "<!-- page 2 -->\n```\n# not a heading\n```",
        highlighter,
    )
    heading = formats(view, 0)
    assert heading == [("# Title", QColor(LIGHT["heading"]), True, False)]
    inline = {text: (colour, bold, italic) for text, colour, bold, italic in formats(view, 1)}
    assert inline["**bold**"] == (QColor(LIGHT["emphasis"]), True, False)
    assert inline["*it*"] == (QColor(LIGHT["emphasis"]), False, True)
    assert inline["`code`"][0] == QColor(LIGHT["code"])
    assert "snake_case" not in "".join(inline) and "plain" not in "".join(inline)
    pipes = formats(view, 2)
    assert [t for t, *_ in pipes] == ["|", "|", "|"] and all(c == QColor(LIGHT["pipe"]) for _, c, *_ in pipes)
    assert formats(view, 3)[0][0] == "|---|---|"
    assert formats(view, 4)[0][:2] == ("<!-- page 2 -->", QColor(LIGHT["comment"]))
    assert formats(view, 6) == [("# not a heading", QColor(LIGHT["code"]), False, False)]  # inside a fence
    highlighter.set_dark(True)
    assert formats(view, 0)[0][1] == QColor(DARK["heading"])


def test_the_json_highlighter_formats_keys_strings_numbers_and_literals(qtbot):
    view = QPlainTextEdit()
    qtbot.addWidget(view)
    show_text(
        view,
        json.dumps({"page": 2, "text": 'a 3: "x"', "box": [1.5, -2.5e-07], "ok": True, "no": None}, indent=1),
        JsonHighlighter(view.document()),
    )
    lines = {
        view.document().findBlockByNumber(i).text().strip(): formats(view, i)
        for i in range(view.document().blockCount())
    }
    assert lines['"page": 2,'] == [
        ('"page"', QColor(LIGHT["key"]), True, False),
        ("2", QColor(LIGHT["number"]), False, False),
    ]
    text = lines['"text": "a 3: \\"x\\"",']
    assert [(t, c) for t, c, *_ in text] == [
        ('"text"', QColor(LIGHT["key"])),
        ('"a 3: \\"x\\""', QColor(LIGHT["string"])),
    ]  # no number in a string
    assert [(t, c) for t, c, *_ in lines["1.5,"]] == [("1.5", QColor(LIGHT["number"]))]
    assert [t for t, *_ in lines["-2.5e-07"]] == ["-2.5e-07"]
    assert lines['"ok": true,'][1][:2] == ("true", QColor(LIGHT["literal"]))
    assert lines['"no": null'][1][0] == "null"


def test_the_results_views_are_monospace_and_highlighted(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    results = window.results
    for view in (results.raw, results.json, results.extract):
        assert view.font().fixedPitch() or view.fontInfo().fixedPitch()
    raw_lines = results.markdown.splitlines()
    heading = next(i for i, line in enumerate(raw_lines) if line.startswith("#"))
    assert formats(results.raw, heading)[0][1] == QColor(LIGHT["heading"])
    assert any(c == QColor(LIGHT["key"]) for i in range(5) for _, c, *_ in formats(results.json, i))
    apply_scheme(qtbot_app(), True)  # the dark scheme: colours that read on it
    try:
        qtbot.waitUntil(lambda: results.raw_highlighter.dark, timeout=5000)
        assert formats(results.raw, heading)[0][1] == QColor(DARK["heading"])
    finally:
        apply_scheme(qtbot_app(), False)
    show_text(results.json, "[" + "1, " * (MAX_CHARS // 3) + "1]", results.json_highlighter)
    # one line longer than the UI thread formats: shown plain, neither by the highlighter nor as extra selections
    assert formats(results.json, 0) == [] and results.json.extraSelections() == []
    show_text(results.json, "[\n" + "1,\n" * (MAX_CHARS // 3) + "1]", results.json_highlighter)
    assert formats(results.json, 0) == [] and results.json.extraSelections()  # long, many lines: those on screen


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


def test_showing_another_document_during_a_streamed_parse_keeps_the_stream(qtbot):
    from app.gui.results import Results
    from inference.documents import open_document
    from inference.tasks import BuiltinEngine

    parsed = BuiltinEngine().parse(open_document(SAMPLE))
    results = Results()
    qtbot.addWidget(results)
    results.begin_stream("markdown")
    results.stream_text("page one so far")
    results.show_parse(parsed)  # the user selects a parsed document meanwhile
    assert results.raw.toPlainText() == "page one so far" and results.markdown == parsed.markdown
    results.stream_break()
    results.stream_text("page two")
    assert results.raw.toPlainText() == "page one so far\n\npage two"
    results.end_stream()  # cancelled: the document shown comes back
    reference = QPlainTextEdit()
    reference.setPlainText(parsed.markdown)
    assert results.raw.toPlainText() == reference.toPlainText()


# block selection ----------------------------------------------------------------------------------------------------
def _rendered_selection_of(window, kind: str) -> tuple[str, str]:
    """Click (as the page does) the first block of ``kind`` on page 1: the rendered and the raw selections."""
    block = next(b for b in window.page_view.blocks if b.kind == kind)
    window.page_view.block_clicked.emit(1, block.order)
    raw = window.results.raw.textCursor().selectedText()
    rendered = window.results.rendered.textCursor().selection().toPlainText()
    return raw, rendered


def test_clicking_a_block_selects_the_whole_block_in_the_rendered_tab(window, qtbot):
    from tests.qt_helpers import parsed_sample

    parsed_sample(window, qtbot)
    raw, rendered = _rendered_selection_of(window, "text")
    assert len(raw) > 80 and words(rendered) == words(raw)  # the paragraph to its last word
    raw, rendered = _rendered_selection_of(window, "table")
    cells = [c.strip() for line in raw.split("\u2029") for c in line.strip("|").split("|") if c.strip("- ")]
    assert cells[0] == "Canvas" and cells[-1] == "97"
    assert rendered.split() == cells  # every cell, header to the last, and nothing after the table


def test_the_window_shows_the_parse_exactly_with_no_replacement_characters(window, qtbot, tmp_path):
    notes = tmp_path / "notes.md"
    body = (
        "# Caf\u00e9 \u2014 \u65e5\u672c\u8a9e\n\n"
        "Na\u00efve \u201cquotes\u201d, \u00bd cup, emoji \U0001f642 and \u0645\u0631\u062d\u0628\u0627.\n"
    )
    notes.write_text(body, encoding="utf-8")
    window.add_paths([str(notes)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    parsed = window.entries[window.current].parsed
    assert "\ufffd" not in parsed.markdown and "\U0001f642" in parsed.markdown
    results = window.results
    assert results.raw.toPlainText() == parsed.markdown.replace("\r\n", "\n")
    for view in (results.rendered, results.json):
        shown = view.toPlainText()
        assert "\ufffd" not in shown and "\U0001f642" in shown and "\u65e5\u672c\u8a9e" in shown


def test_a_character_split_between_canvases_streams_whole_into_the_tab(window, tiny_model, processor):
    """A byte-level tokenizer can split a character between two canvases: the streamed Markdown shows it whole."""
    import numpy as np

    from inference.runtime.engine import DiffusionEngine
    from inference.runtime.template import FREE, CanvasTemplate
    from tests.helpers import chat_inputs

    tokenizer = processor.tokenizer
    text = "a" * 255 + "\u00e9t\u00e9"
    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    engine = DiffusionEngine(tiny_model, tokenizer)
    params = engine.default_params(seed=0, max_denoising_steps=2, max_new_tokens=512)
    pinned = CanvasTemplate(pins=np.array(ids), sets=np.full(len(ids), FREE))
    results = window.results
    results.begin_stream("markdown")
    for event in engine.generate(chat_inputs(processor, "Letters"), params, template=pinned):
        if isinstance(event, CanvasCommitted):
            results.stream_text(event.text)
    assert results.raw.toPlainText() == text
