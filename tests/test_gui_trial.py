"""The window as a new user meets it: the menu, toolbar and shortcuts, files that fail to open, the status bar, an
empty extraction, shutdown, the memory estimate, passwords, the answer thread, the smallest size and the prompt's
token count. Offscreen, real widgets, the real worker thread, real documents; no mocks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.gui import RESOURCES, SAMPLE
from tests.qt_helpers import TIMEOUT, ingested


def hostile(tmp_path: Path) -> dict[str, Path]:
    files = {"empty": tmp_path / "empty.pdf", "text": tmp_path / "notes.pdf", "cut": tmp_path / "cut.pdf"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("just some notes, not a PDF\n")
    files["cut"].write_bytes(SAMPLE.read_bytes()[:300])
    return files


def test_parse_and_export_from_the_menu_toolbar_and_shortcuts_run(window, qtbot):
    """Ctrl+R, the toolbar's Parse and File -> Export run their action (the ``checked`` argument of ``triggered`` is
    not taken for the paths)."""
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    with qtbot.waitSignal(window.worker.job_started, timeout=TIMEOUT):
        window.parse_action.trigger()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.entries[str(SAMPLE.resolve())].status == "parsed"
    export = next(a for a in window.findChildren(type(window.parse_action)) if a.text() == "&Export\u2026")
    export.trigger()
    qtbot.waitUntil(lambda: getattr(window, "dialog", None) is not None and window.dialog.isVisible(), timeout=TIMEOUT)
    window.dialog.reject()
    window.panel_action.trigger()  # the checkable one still gets its state
    assert window.panel_action.isChecked() == window.panel.isVisible()


def test_parse_again_on_a_file_that_failed_to_open_says_why(window, qtbot, tmp_path):
    """The banner names the file that could not be opened and its reason, never a bare "Something went wrong"."""
    bad = hostile(tmp_path)["text"]
    window.add_paths([str(bad)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    key = str(bad.resolve())
    assert window.entries[key].status == "failed"
    window.engine_box.setCurrentText("builtin")
    assert window.parse([key]) is None
    text = window.banner.label.text()
    assert "notes.pdf could not be opened, so it cannot be parsed" in text and "Something went wrong" not in text
    assert window.entries[key].message in text


def test_files_that_fail_to_open_each_keep_their_message_and_show_it_when_chosen(window, qtbot, tmp_path):
    """Each of five files that failed keeps its own message; choosing one shows that message and clears the previous
    document's pages."""
    files = hostile(tmp_path)
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.add_paths([str(files["empty"]), str(files["text"])])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    failed = [e for e in window.entries.values() if e.status == "failed"]
    assert sorted(e.name for e in failed) == ["empty.pdf", "notes.pdf"] and all(e.message for e in failed)
    banner = window.banner
    assert "(1 earlier problem: Details)" in banner.label.text() and banner.details_button.isVisible()
    assert all(e.name in banner.details and e.message in banner.details for e in failed)
    window.doc_list.setCurrentItem(window.doc_list.item_for(str(SAMPLE.resolve())))
    assert window.page_view.document is not None
    window.doc_list.setCurrentItem(window.doc_list.item_for(failed[0].path))
    assert window.page_view.document is None
    shown = " ".join(i.toPlainText() for i in window.page_view.scene().items() if hasattr(i, "toPlainText"))
    assert f"{failed[0].name} could not be opened" in shown and failed[0].message in shown
    assert failed[0].name in window.status_label.text()
    assert window.page_total.text() == "/ 0"
    banner.close_button.click()  # dismissed: the next error starts a new list
    window.show_error("another problem")
    assert banner.label.text() == "another problem" and banner.problems == [("another problem", "")]


def test_the_status_bar_says_ready_when_the_work_is_done(window, qtbot):
    """The status bar says ready once the document is read (not "reading sample.pdf...")."""
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window) and not window.worker.busy, timeout=TIMEOUT)
    assert window.status_label.text() == "Ready."
    window.engine_box.setCurrentText("builtin")
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.status_label.text().startswith("Parsed 1 document(s)")  # a result's own words stay


def test_an_extraction_that_finds_nothing_says_why(window, qtbot):
    """An extraction by the builtin engine that finds nothing says which fields it missed and how to write them, and
    the status bar says how much was extracted."""
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    window.extract(
        {"type": "object", "properties": {"wordstar_year": {"type": "string", "title": "Year WordStar was released"}}}
    )
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    text = window.banner.label.text()
    assert window.banner.isVisible() and not window.banner.error
    assert "No field (wordstar_year) was found" in text and "name: value" in text
    assert window.status_label.text() == "Extracted nothing."
    window.extract({"type": "object", "properties": {"Canvas": {"type": "string"}}})
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.status_label.text() == "Extracted 1 value(s) of 1 field(s)."


def test_a_worker_destroyed_after_its_thread_is_gone_does_not_raise():
    """At exit the QThread may be deleted before the Worker's destroyed signal runs (Ctrl+Q during a prefill): no
    RuntimeError."""
    from PySide6.QtCore import QThread
    from shiboken6 import delete

    from app.gui.worker import Job, _join_on_destroy

    thread = QThread()
    delete(thread)
    job = Job("left over", lambda job: None)
    _join_on_destroy(thread, lambda: [job])  # would raise RuntimeError on the deleted thread
    assert job.cancelled_requested  # the jobs it still held were told to stop before the thread was looked at


def test_the_memory_estimate_shows_the_weights_apart_from_the_runtime_reserve():
    """The estimate names the weights' own size (a 5 MB model: its MiB in fp32 and in 4-bit NF4) apart from the
    runtime's reserve."""
    from app.gui.model_dialog import memory_estimate_text

    text = memory_estimate_text("tiny-trained", "fp32", "cpu")
    weights = re.search(r"weights (\d+\.\d) MiB in fp32", text)
    on_disk = (RESOURCES / "tiny-trained" / "model.safetensors").stat().st_size / 2**20
    assert weights and abs(float(weights.group(1)) - on_disk) < 0.5, text  # fp32 weights: the file's size
    assert "MiB in 4-bit NF4" in text, text
    assert "runtime's reserve" in text


def test_an_encrypted_pdf_asks_for_its_password_and_opens_with_it(window, qtbot, tmp_path):
    """The window asks for the password of an encrypted PDF and opens the file with it."""
    import pymupdf
    from PySide6.QtWidgets import QInputDialog

    src = pymupdf.open(SAMPLE)
    locked = tmp_path / "locked.pdf"
    src.save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    window.add_paths([str(locked)])
    key = str(locked.resolve())

    def asking() -> bool:
        return isinstance(getattr(window, "dialog", None), QInputDialog) and window.dialog.isVisible()

    qtbot.waitUntil(asking, timeout=TIMEOUT)
    assert "locked.pdf is encrypted" in window.dialog.labelText()
    window.dialog.setTextValue("wrong")
    window.dialog.accept()
    qtbot.waitUntil(lambda: asking() and "wrong" in window.dialog.labelText(), timeout=TIMEOUT)
    window.dialog.setTextValue("secret")
    window.dialog.accept()
    qtbot.waitUntil(lambda: window.entries[key].status == "ready", timeout=TIMEOUT)
    assert len(window.entries[key].document.pages) == 2 and window.page_view.document is not None
    window.engine_box.setCurrentText("builtin")
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert "How block diffusion writes" in window.results.raw.toPlainText()  # its pages render and parse


def test_a_password_prompt_cancelled_leaves_the_file_failed_with_a_way_back(window, qtbot, tmp_path):
    import pymupdf
    from PySide6.QtWidgets import QInputDialog

    locked = tmp_path / "locked.pdf"
    pymupdf.open(SAMPLE).save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret")
    window.add_paths([str(locked)])
    qtbot.waitUntil(
        lambda: isinstance(getattr(window, "dialog", None), QInputDialog) and window.dialog.isVisible(), timeout=TIMEOUT
    )
    window.dialog.reject()
    entry = window.entries[str(locked.resolve())]
    assert entry.status == "failed" and "no password was given" in entry.message
    assert "Open again" in window.banner.label.text()
    assert window.doc_list.item_for(entry.path).icon().isNull() is False  # a sign where a thumbnail would be
    window.add_paths([str(locked)])  # opened again (Ctrl+O, a drop): it asks again
    qtbot.waitUntil(lambda: window.dialog.isVisible(), timeout=TIMEOUT)
    assert window.entries[entry.path].status == "locked"
    window.dialog.reject()
    window.reopen(entry.path)  # the context menu's Open again
    qtbot.waitUntil(lambda: window.dialog.isVisible(), timeout=TIMEOUT)
    window.dialog.reject()


def test_answers_stay_in_the_thread_when_the_engine_or_the_model_changes(window, qtbot):
    """A builtin answer stays in the thread when a model is loaded, and an earlier model's answers stay when another
    model is loaded; clearing the conversation empties the thread."""
    from tests.qt_helpers import load_tiny

    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    window.ask("What is block diffusion?")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    first = window.results.thread[0]
    load_tiny(window, qtbot, max_new_tokens=32, max_denoising_steps=2, choose=False)
    assert window.engine_box.currentText() == "builtin" and window.results.thread == [first]  # the user's choice
    assert "choose Engine" in window.status_label.text()
    assert "No question asked yet" not in window.results.answer.toPlainText()
    window.engine_box.setCurrentText("model")
    window.ask("And adaptive stopping?")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert [a.engine for a in window.results.thread] == ["builtin", "model"]
    load_tiny(window, qtbot, max_new_tokens=32, max_denoising_steps=2)  # another model: the answers stay
    assert [a.engine for a in window.results.thread] == ["builtin", "model"]
    assert all(c.session is None for k, c in window.tasks.conversations.items() if k[0] == "model")  # not its cache
    window.engine_box.setCurrentText("builtin")
    assert len(window.results.thread) == 2
    window.clear_conversation()
    assert window.results.thread == [] and not window.tasks.answer_log
    window.engine_box.setCurrentText("model")
    assert window.results.thread == []


def test_the_window_cannot_be_shrunk_until_its_texts_overlap(window, qtbot):
    """The window's minimum size keeps its texts apart (at 300 x 200 they would clip and run into each other)."""
    from app.gui.main_window import MINIMUM_SIZE

    window.resize(300, 200)
    qtbot.waitUntil(lambda: window.width() >= MINIMUM_SIZE[0], timeout=5000)
    assert (window.width(), window.height()) >= MINIMUM_SIZE and window.height() >= MINIMUM_SIZE[1]


def test_a_stale_prompt_token_count_is_not_shown_while_it_is_counted_again(window, qtbot):
    """When the question changes, the box drops the previous question's token count until the new one is counted."""
    from tests.qt_helpers import load_tiny

    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=32, max_denoising_steps=2)
    window.engine_box.setCurrentText("model")
    window.question.setText("What is block diffusion?")
    qtbot.waitUntil(lambda: window.tasks.prompt_tokens is not None and not window.worker.busy, timeout=TIMEOUT)
    assert f"{window.tasks.prompt_tokens:,} prompt tokens" in window.scope_label.text()
    window.question.setText("Who wrote it?")
    assert "counting prompt tokens" in window.scope_label.text() and window.tasks.prompt_tokens is None
    qtbot.waitUntil(lambda: window.tasks.prompt_tokens is not None and not window.worker.busy, timeout=TIMEOUT)
    assert f"{window.tasks.prompt_tokens:,} prompt tokens" in window.scope_label.text()
