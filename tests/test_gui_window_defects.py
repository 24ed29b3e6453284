"""The window tried as a new user: nothing lost or misattributed (exports, answers, citations, scope, settings),
no layout jumps, real keys, a theme menu with readable controls. Offscreen, real widgets and worker, the builtin
engine; each test drives the window's public actions."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, ingested, parsed_sample


def idle(win) -> bool:
    return not win.worker.busy


def pdf_of_lines(path: Path, pages: list[list[str]], gap: float = 28.0) -> Path:
    """A PDF whose every line is a text block of its own (one insert per line, far apart)."""
    import pymupdf

    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page()
        for i, line in enumerate(lines):
            page.insert_text((72, 60 + gap * i), line, fontsize=11)
    doc.save(str(path))
    return path


def builtin_ask(win, qtbot, question: str) -> object:
    win.engine_box.setCurrentText("builtin")
    win.ask(question)
    qtbot.waitUntil(lambda: idle(win), timeout=TIMEOUT)
    return win.results.thread[-1]


# 1. export
def test_exporting_same_named_documents_writes_each_under_its_own_name(window, qtbot, tmp_path):
    text = tmp_path / "linn.txt"
    text.write_text("Linn notes: the harbour opens at six.\n", encoding="utf-8")
    pdf = pdf_of_lines(tmp_path / "linn.pdf", [["Linn report: the library opens at nine."]])
    window.add_paths([str(text), str(pdf)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.scope_box.setCurrentIndex(1)
    window.parse()
    qtbot.waitUntil(lambda: idle(window) and all(e.parsed for e in window.entries.values()), timeout=TIMEOUT)
    out = tmp_path / "out"
    window.export_to(str(out), "md,json,txt")
    qtbot.waitUntil(lambda: idle(window) and bool(window.tasks.exported), timeout=TIMEOUT)
    on_disk = sorted(p.name for p in out.iterdir())
    assert len(on_disk) == len(window.tasks.exported) == 6, on_disk
    assert f"Exported {len(on_disk)} file(s)" in window.status_label.text()
    assert "harbour" in (out / "linn_txt.md").read_text() and "library" in (out / "linn_pdf.md").read_text()


# 2. builtin Ask
def test_the_builtin_ask_quotes_the_document_never_a_model_parse_shown(window, qtbot, tmp_path):
    from inference.documents.model import Block
    from inference.tasks.base import ParseResult

    path = pdf_of_lines(tmp_path / "guide.pdf", [["The builtin engine parses documents and quotes passages."]])
    window.add_paths([str(path)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    entry = window.entries[str(path.resolve())]
    garbled = copy.deepcopy(entry.document)
    page = garbled.pages[0]
    page.blocks = [
        Block(kind="text", text="the builtin engine pars do documents retrieeded passages", bbox=(0, 0, 1, 1), order=0)
    ]
    window.runs.record(entry, ParseResult(garbled, "garbled", ["garbled"], "model"), 1.0)  # a model's parse, shown
    answer = builtin_ask(window, qtbot, "What does the builtin engine do with documents?")
    quoted = " ".join(c.text for c in answer.citations)
    assert answer.citations and "retrieeded" not in quoted and "parses documents" in quoted
    assert entry.parsed.engine == "model"  # the parse shown stays the one the user chose


# 3 and 4. scope
def test_clicking_a_citation_shows_its_page_and_keeps_the_scope(window, qtbot, tmp_path):
    first = pdf_of_lines(tmp_path / "harbour.pdf", [["The harbour opens at six."]])
    second = pdf_of_lines(tmp_path / "library.pdf", [["The library opens at nine."]])
    window.add_paths([str(first), str(second)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert len(window.tasks.scope_entries()) == 2
    answer = builtin_ask(window, qtbot, "When does the library open?")
    target = next(c for c in answer.citations if c.document.endswith("library.pdf"))
    window.results.answer.anchorClicked.emit(QUrl(f"cite:{window.results._links.index(target)}"))
    assert window.current == str(second.resolve())
    assert window.doc_list.currentItem() is window.doc_list.item_for(str(second.resolve()))
    assert len(window.tasks.scope_entries()) == 2 and len(window.doc_list.selected_paths()) == 2
    window.ask("When does the harbour open?")
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert "in 1 document" not in window.status_label.text() and "2 document(s)" in window.status_label.text()


def test_changing_the_scope_keeps_every_earlier_answer_in_view(window, qtbot, tmp_path):
    first = pdf_of_lines(tmp_path / "harbour.pdf", [["The harbour opens at six."]])
    second = pdf_of_lines(tmp_path / "library.pdf", [["The library opens at nine."]])
    window.add_paths([str(first)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    builtin_ask(window, qtbot, "When does the harbour open?")
    window.add_paths([str(second)])  # the new file becomes the scope
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert [e.name for e in window.tasks.scope_entries()] == ["library.pdf"]
    shown = window.results.answer.toPlainText()
    assert "When does the harbour open?" in shown and "No question asked yet" not in shown
    assert "about harbour.pdf" in shown
    builtin_ask(window, qtbot, "When does the library open?")
    shown = window.results.answer.toPlainText()
    assert shown.index("harbour open?") < shown.index("library open?")


# 5. settings
def test_recent_models_come_back_as_names_after_a_restart(window):
    window.settings.setValue("recent_models", "tiny-trained")  # how an INI file reads back a one-item list
    window.model_dialog()
    items = [window.dialog.source.itemText(i) for i in range(window.dialog.source.count())]
    window.dialog.reject()
    assert "tiny-trained" in items and "t" not in items and "i" not in items


# 8. citation highlight
def test_a_citation_highlights_only_the_block_it_rests_on(window, qtbot, tmp_path):
    from inference.tasks.base import Citation
    from inference.tasks.conversation import cite

    lines = [f"Line {i}: the quay stores nets, ropes and boats of the village." for i in range(25)]
    lines[7] = "The mooring fee for fishing boats is twelve euros a night."
    path = pdf_of_lines(tmp_path / "quay.pdf", [lines])
    window.add_paths([str(path)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    assert len(window.page_view.blocks) == 25

    def filled() -> list:
        return [i for i in window.page_view.outline_items if i.brush().style().name != "NoBrush"]

    document = window.entries[str(path.resolve())].document
    (citation,) = cite("Boats pay a mooring fee of twelve euros a night [p. 1].", [document])  # a model's mark
    window.show_citation(citation)
    assert len(filled()) == 1 and "mooring fee" in window.page_view.blocks[window.page_view.highlighted].text
    window.show_citation(Citation(str(path), 1, "1", lines[3]))  # a passage of one line
    assert len(filled()) == 1 and window.page_view.highlighted == 3


# 9. Compare
def test_compare_fits_the_screen_colours_differences_and_labels_each_run(window, qtbot):
    from app.gui.runs import Run, diff_html

    parsed_sample(window, qtbot)
    window.parse([str(SAMPLE.resolve())])  # Parse again: a second run of the same engine
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    dialog = window.runs.compare()
    assert dialog is not None
    room = dialog.screen().availableGeometry()
    assert dialog.frameGeometry().width() <= room.width() and dialog.width() <= room.width()
    labels = [dialog.left.itemText(i) for i in range(dialog.left.count())]
    assert len(set(labels)) == 2 and all(re.search(r"\d\d:\d\d:\d\d", label) for label in labels), labels
    assert not any(label.endswith(" 0.0 s") for label in labels)
    dialog.reject()
    left, right = copy.copy(window.runs.current_runs()[1][0]), copy.copy(window.runs.current_runs()[1][1])
    long_line = "a sentence long enough to wrap " * 8
    left.parsed = copy.copy(left.parsed)
    right.parsed = copy.copy(right.parsed)
    left.parsed.markdown, right.parsed.markdown = f"same\n{long_line}\nold words", f"same\n{long_line}\nnew words"
    html = diff_html(Run(left.parsed, "builtin"), Run(right.parsed, "builtin"))
    from PySide6.QtGui import QTextDocument

    document = QTextDocument()
    document.setHtml(html)
    text = document.toPlainText()
    assert long_line.strip() in text  # whole, never cut into pieces at a column
    assert html.count("background-color") == 2  # the two differing cells, not the equal lines


# 10. layout
def test_the_scope_label_and_status_stay_one_line_and_the_list_keeps_its_width(window, qtbot, tmp_path):
    paths = []
    for i in range(4):
        paths.append(pdf_of_lines(tmp_path / f"a-very-long-document-name-number-{i}.pdf", [["Some text."]]))
    window.resize(1400, 860)
    QApplication.processEvents()
    bar = window.toolbar.height()
    window.add_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.scope_label.setText(window.scope_label.text() + " \u00b7 12,345 prompt tokens (too long: read in parts) ")
    QApplication.processEvents()
    line = window.scope_label.fontMetrics().height()
    assert window.scope_label.sizeHint().height() < 2 * line and "\n" not in window.scope_label.shown()
    assert window.toolbar.height() == bar  # the toolbar never grows
    assert all(
        p.name in window.scope_label.toolTip() or str(p.resolve()) in window.scope_label.toolTip() for p in paths
    )
    width = window.doc_list.width()
    from app.gui.runs import Run

    window.runs_bar.show_runs([Run(None, "model", "a-model-with-a-very-long-name " * 3, "64 steps", 1.0)] * 2, None)
    QApplication.processEvents()
    assert window.doc_list.width() >= width - 2
    message = "Loaded tiny-trained (a long label of the model): choose Engine \u2192 model to use it."
    window.status_label.setText(message)
    assert window.status_label.text() == message
    assert window.status_label.shown() == message or message in window.status_label.toolTip()


def test_rows_read_whole_at_800_by_600(window, qtbot, tmp_path):
    path = pdf_of_lines(tmp_path / "parsed-report-2026.pdf", [["One."], ["Two."]])
    window.add_paths([str(path)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.resize(800, 600)
    QApplication.processEvents()
    item = window.doc_list.item(0)
    status = item.text().splitlines()[1]
    assert status == "ready \u00b7 2 pages"
    room = window.doc_list.viewport().width() - window.doc_list.iconSize().width() - 12
    assert window.doc_list.fontMetrics().horizontalAdvance("partial \u00b7 88 pages") <= room
    assert window.cleaned_box.width() >= window.cleaned_box.sizeHint().width()  # "Cleaned", never "Clea"


# 11. keyboard
def test_the_engine_has_a_menu_entry_and_a_shortcut_and_the_list_names_only_real_keys(window):
    from PySide6.QtGui import QKeySequence

    from app.gui.prefs import typed

    commands = dict(window.shortcut_rows())
    native = QKeySequence("Ctrl+Shift+E").toString(QKeySequence.SequenceFormat.NativeText)
    assert commands.get("Choose engine") == native
    for keys in commands.values():
        for key in keys.split(", "):
            assert typed(QKeySequence(key)), key
            assert key not in ("Cancel", "Save", "F18", "Zoom In", "Open", "Copy", "Paste")
    window.engine_actions["model"].trigger()
    assert window.engine_box.currentText() == "model"
    window.engine_box.setCurrentText("builtin")
    assert window.engine_actions["builtin"].isChecked() and not window.engine_actions["model"].isChecked()
    box = window.show_shortcuts()
    assert "Choose engine" in box.text()
    box.close()


# 12. theme
def contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def edge_contrast(widget, background: QColor, columns: range) -> float:
    """The most a pixel on the widget's middle row, in these columns, stands out from the window."""
    image = widget.grab().toImage()
    y = image.height() // 2
    return max(contrast(image.pixelColor(x, y), background) for x in columns if x < image.width())


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_view_theme_switches_and_keeps_the_controls_readable(window, qtbot, theme):
    window.theme_actions[theme].trigger()
    try:
        QApplication.processEvents()
        assert window.settings.value("theme") == theme and window.theme_actions[theme].isChecked()
        background = window.palette().color(QPalette.ColorRole.Window)
        assert (background.lightness() < 128) == (theme == "dark")
        window.page_spin.setEnabled(True)
        window.cleaned_box.setEnabled(True)
        window.panel.scrubber.setEnabled(True)
        window.question.clear()
        window.question.clearFocus()
        QApplication.processEvents()
        assert edge_contrast(window.question, background, range(0, 3)) >= 2.5  # the box's outline
        assert edge_contrast(window.page_spin, background, range(0, 3)) >= 2.5
        assert edge_contrast(window.cleaned_box, background, range(0, 18)) >= 2.5  # the check box's square
        scrubber = window.panel.scrubber
        groove = range(scrubber.width() // 2, scrubber.width() - 10)
        assert edge_contrast(scrubber, background, groove) >= 1.8
    finally:
        window.set_theme("light")
        window.set_theme("system")


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_focused_engine_box_has_a_ring_that_stands_out(window, qtbot, theme):
    """Tabbing to the Engine box shows where the focus is: its edge stands out from the window far more than the
    unfocused box's (Fusion's own focus frame was a faint shade of the outline)."""
    window.theme_actions[theme].trigger()
    try:
        window.show()
        QApplication.processEvents()
        background = window.palette().color(QPalette.ColorRole.Window)
        window.question.setFocus()
        QApplication.processEvents()
        unfocused = edge_contrast(window.engine_box, background, range(0, 2))
        window.engine_box.setFocus()
        QApplication.processEvents()
        assert window.engine_box.hasFocus()
        focused = edge_contrast(window.engine_box, background, range(0, 2))
        assert focused >= 3.0 and focused > unfocused + 1.0, (focused, unfocused)
    finally:
        window.set_theme("light")
        window.set_theme("system")


# 13. still open from before
def test_turning_pages_puts_the_new_page_at_the_top_of_the_markdown(window, qtbot, tmp_path):
    pages = [[f"Page {n} line {i} of the long report." for i in range(24)] for n in range(1, 7)]
    path = pdf_of_lines(tmp_path / "long.pdf", pages)
    window.add_paths([str(path)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    window.parse()
    qtbot.waitUntil(lambda: idle(window) and window.entries[str(path.resolve())].parsed is not None, timeout=TIMEOUT)
    window.results.setCurrentWidget(window.results.raw)
    QApplication.processEvents()
    for number in (4, 2, 5):
        window.page_view.show_page(number)
        QApplication.processEvents()
        raw = window.results.raw
        assert raw.cursorRect().top() < 2 * raw.fontMetrics().height(), number
        assert f"<!-- page {number}" in raw.textCursor().block().text()


def test_the_schema_dialog_starts_in_a_folder_that_exists_with_a_file_name(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    seen = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: seen.append(a[2]) or ("", ""))
    parsed_sample(window, qtbot)
    editor = window.extract_dialog()
    editor.table.item(0, 0).setText("title")
    editor.save_file()
    editor.reject()
    assert seen and Path(seen[0]).name == "schema.json" and Path(seen[0]).parent.is_dir()


def test_exported_answers_name_the_document_of_each_passage(window, qtbot, tmp_path):
    parsed_sample(window, qtbot)
    builtin_ask(window, qtbot, "What does the builtin engine do without model weights?")
    window.export_to(str(tmp_path / "out"), "md")
    qtbot.waitUntil(lambda: idle(window) and bool(window.tasks.exported), timeout=TIMEOUT)
    text = (tmp_path / "out" / "answers.md").read_text()
    assert "- page " not in text and "- sample.pdf, p. " in text


def test_a_failed_document_offers_only_what_can_be_done(window, qtbot, tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 not really")
    window.add_paths([str(bad)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    menu = window.document_menu(str(bad.resolve()))
    names = [a.text() for a in menu.actions() if a.text()]
    assert "Open again" in names and "Parse again" not in names and "Export\u2026" not in names


def test_opening_many_files_at_once_is_one_recent_entry(window, qtbot, tmp_path):
    from app.gui.prefs import stored_list

    folder = tmp_path / "batch"
    folder.mkdir()
    files = []
    for i in range(30):
        files.append(folder / f"note-{i}.txt")
        files[-1].write_text(f"Note {i}.", encoding="utf-8")
    window.add_paths([str(f) for f in files])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    QApplication.processEvents()
    assert stored_list(window.settings, "recent_files") == [str(folder.resolve())]
    assert [a.text() for a in window.recent_menu.actions()] == [str(folder.resolve())]


def test_the_export_folder_message_goes_once_a_folder_is_typed(window, qtbot, tmp_path):
    parsed_sample(window, qtbot)
    window.settings.setValue("export_dir", "")
    window.export_dialog()
    dialog = window.dialog
    dialog.folder.setText("")
    dialog.accept()
    assert dialog.problem.isVisibleTo(dialog)
    dialog.folder.setText(str(tmp_path))
    assert not dialog.problem.isVisibleTo(dialog)
    dialog.reject()


def test_closing_find_or_clicking_a_citation_clears_the_old_marks(window, qtbot):
    parsed_sample(window, qtbot)
    window.results.setCurrentWidget(window.results.raw)
    window.finder.open()
    window.find_bar.edit.setText("block diffusion")
    assert window.page_view.highlighted is not None
    window.find_bar.close_button.click()
    filled = [i for i in window.page_view.outline_items if i.brush().style().name != "NoBrush"]
    assert not filled and window.page_view.highlighted is None


def test_settings_lists_read_back_whole(tmp_path):
    from app.gui.prefs import stored_list

    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("one", ["tiny-trained"])
    store.setValue("two", ["a", "b"])
    store.sync()
    again = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert stored_list(again, "one") == ["tiny-trained"] and stored_list(again, "two") == ["a", "b"]
    assert stored_list(again, "missing") == []
