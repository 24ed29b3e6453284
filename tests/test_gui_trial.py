"""What a new user's trial of the window under Xvfb found (a helper drove it with xdotool), each reproduced here:
offscreen, real widgets, the real worker thread, real documents; no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.gui import SAMPLE  # noqa: E402
from tests.test_gui import TIMEOUT, ingested  # noqa: E402
from tests.test_gui import window as window_fixture  # noqa: E402

window = window_fixture  # the same fixture: real window, no leaked thread or widget


def hostile(tmp_path: Path) -> dict[str, Path]:
    files = {"empty": tmp_path / "empty.pdf", "text": tmp_path / "notes.pdf", "cut": tmp_path / "cut.pdf"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("just some notes, not a PDF\n")
    files["cut"].write_bytes(SAMPLE.read_bytes()[:300])
    return files


def test_parse_and_export_from_the_menu_toolbar_and_shortcuts_run(window, qtbot):
    """The actions' triggered(checked) passed False to parse(paths) and export_dialog(paths): Ctrl+R, the toolbar's
    Parse and File -> Export did nothing but print a TypeError."""
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    window.engine_box.setCurrentText("builtin")
    with qtbot.waitSignal(window.worker.job_started, timeout=TIMEOUT):
        window.parse_action.trigger()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert window.entries[str(SAMPLE.resolve())].status == "parsed"
    export = next(a for a in window.findChildren(type(window.parse_action)) if a.text() == "&Export\u2026")
    export.trigger()
    qtbot.waitUntil(lambda: getattr(window, "dialog", None) is not None and window.dialog.isVisible(),
                    timeout=TIMEOUT)
    window.dialog.reject()
    window.panel_action.trigger()  # the checkable one still gets its state
    assert window.panel_action.isChecked() == window.panel.isVisible()


def test_parse_again_on_a_file_that_failed_to_open_says_why(window, qtbot, tmp_path):
    """It said "Something went wrong (AttributeError: 'NoneType' object has no attribute 'pages')"."""
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
