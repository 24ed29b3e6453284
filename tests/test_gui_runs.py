"""Every parse of a document is kept (the builtin one and each model parse, with the model, its parameters and the
time): the bar above the results switches between them and compares two side by side. Offscreen, real widgets,
the sample document and the tiny model."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.gui import SAMPLE
from tests.qt_helpers import TIMEOUT, load_tiny, parsed_sample


def test_a_model_parse_keeps_the_builtin_one_and_both_can_be_shown_and_compared(window, qtbot):
    parsed_sample(window, qtbot)
    builtin = window.results.raw.toPlainText()
    assert "|" in builtin and not window.runs_bar.isVisible()  # one parse: nothing to choose
    load_tiny(window, qtbot, max_new_tokens=32, max_denoising_steps=2)
    window.parse()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    entry = window.entries[str(SAMPLE.resolve())]
    assert entry.parsed.engine == "model" and window.results.raw.toPlainText() != builtin
    choice = window.runs_bar.choice
    labels = [choice.itemText(i) for i in range(choice.count())]
    assert window.runs_bar.isVisible() and len(labels) == 2
    assert labels[0].startswith("builtin \u00b7 ") and labels[0].endswith(" s")
    assert labels[1].startswith("model: tiny") and "2 steps, 32 tokens, seed 0" in labels[1]
    assert choice.currentIndex() == 1
    choice.setCurrentIndex(0)  # back to the builtin parse: its table and blocks
    assert entry.parsed.engine == "builtin" and window.results.raw.toPlainText() == builtin
    assert window.page_view.outline_items
    dialog = window.runs.compare()
    assert dialog is not None and dialog.isVisible()
    html = dialog.view.toHtml()
    assert "builtin" in html and "model: tiny" in html
    text = dialog.view.toPlainText()
    assert "How block diffusion writes" in text  # the builtin side's lines are there
    dialog.reject()
    assert window.engine_box.currentText() == "model"  # choosing a result never changes the Engine
