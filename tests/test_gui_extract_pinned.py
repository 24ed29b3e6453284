"""The window's templated extraction: values denoise in place in the table, rows coloured by confidence, and a field
re-denoised from the table's context menu. Offscreen, real widgets, the real worker and the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.gui import SAMPLE
from app.gui.extract_view import confidence_brush, field_at, redenoise_field
from inference.runtime.events import DenoisingStep
from tests.qt_helpers import TIMEOUT, ingested, load_tiny

SCHEMA = Path(__file__).resolve().parent / "data" / "sample-schema.json"


def test_confidence_colours_run_from_red_to_green():
    low, high = confidence_brush(0.0).color(), confidence_brush(1.0).color()
    assert low.hue() == 0 and high.hue() == 120
    assert confidence_brush(0.5).color().hue() == 60 and confidence_brush(7).color().hue() == 120


@pytest.mark.slow
def test_values_denoise_in_place_then_a_field_is_redenoised(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=256, max_denoising_steps=4)
    window.engine_box.setCurrentText("model")
    seen: list[str] = []  # the title cell as each step event arrives
    job = window.extract(str(SCHEMA))
    table = window.results.table

    def watch(event):
        if isinstance(event, DenoisingStep) and table.rowCount() and table.item(0, 1) is not None:
            seen.append(table.item(0, 1).text())

    job.event.connect(watch)
    qtbot.waitUntil(lambda: not window.worker.busy and bool(window.tasks.extractions), timeout=TIMEOUT)
    extraction = window.tasks.extractions[-1]
    assert extraction.kind == "pinned" and extraction.valid
    assert len(seen) >= 4 and any(seen), "the title cell followed the steps"
    names = [field_at(window.results, r) for r in range(table.rowCount())]
    assert set(names) == set(json.loads(SCHEMA.read_text())["properties"])
    for row, name in enumerate(names):
        colour = table.item(row, 1).background().color()
        assert colour == confidence_brush(extraction.confidence[name]).color()
        assert f"confidence {extraction.confidence[name]:.2f}" in table.item(row, 0).toolTip()
    run = window.model_engine.last_pinned
    before = run.ids.copy()
    redo = redenoise_field(window, "title")
    assert redo is not None
    qtbot.waitUntil(lambda: not window.worker.busy and run.redone == ["title"], timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "Re-denoised" in window.status_label.text(), timeout=TIMEOUT)
    span = run.layout.span(["title"])
    np.testing.assert_array_equal(run.ids[~span], before[~span])
    assert window.tasks.extractions[-1] is run.extraction and len(window.tasks.extractions) == 1
    title_row = names.index("title")
    assert table.item(title_row, 1).text() == str(run.extraction.value["title"])
