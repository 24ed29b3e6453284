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
from app.gui.extract_view import (
    NOT_ON_PAGE,
    REDO_UNCERTAIN,
    confidence_brush,
    decorate,
    field_at,
    install_menu,
    redenoise_field,
    shown_confidence,
)
from inference.runtime.events import DenoisingStep
from inference.tasks.base import Citation, Extraction
from inference.tasks.confidence import REDO_BELOW
from tests.qt_helpers import TIMEOUT, ingested, load_tiny

SCHEMA = Path(__file__).resolve().parent / "data" / "sample-schema.json"


def test_confidence_colours_fall_in_the_legend_s_three_bands():
    hues = [confidence_brush(c).color().hue() for c in (0.0, 0.49, 0.5, 0.79, 0.8, 1.0, 7)]
    assert hues == [0, 0, 40, 40, 120, 120, 120]


def test_an_ungrounded_or_empty_value_is_never_coloured_as_confident_and_is_offered_again(window):
    """A value the canvas was sure of (confidence 1.0) but that is not on its page, or empty, shows under the
    threshold, red, marked in its page cell; the legend offers to re-denoise both."""
    install_menu(window)
    extraction = Extraction(
        value={"total": "1,234.50", "vendor": ",,,", "note": ""},
        sources={"/total": Citation(document="a.pdf", page=1, label="1", text="1,234.50")},
        valid=True,
        errors=[],
        kind="pinned",
        engine="model",
        confidence={"total": 0.95, "vendor": 1.0, "note": 1.0},
        evidence={
            "total": {"page": 1, "quote": "1,234.50", "grounded": True},
            "vendor": {"page": 1, "quote": "(", "grounded": False},
            "note": {"page": 1, "quote": "Total", "grounded": True},
        },
        grounded={"total": True, "vendor": False, "note": True},
    )
    assert shown_confidence(extraction, "vendor") < REDO_BELOW and shown_confidence(extraction, "note") < REDO_BELOW
    window.results.show_extraction(extraction)
    decorate(window.results, extraction)
    table = window.results.table
    rows = {field_at(window.results, r): r for r in range(table.rowCount())}
    green = confidence_brush(1.0).color()
    assert table.item(rows["total"], 1).background().color() == green
    for name in ("vendor", "note"):
        assert table.item(rows[name], 1).background().color() == confidence_brush(0.0).color()
    assert table.item(rows["vendor"], 2).text() == NOT_ON_PAGE
    legend = window.results.legend
    assert not legend.isHidden() and "confident" in legend.label.text() and "not on the page" in legend.label.text()
    assert legend.fields == ["vendor", "note"] and legend.button.text() == REDO_UNCERTAIN.format(count=2)


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
        assert colour == confidence_brush(shown_confidence(extraction, name)).color()
        assert f"confidence {shown_confidence(extraction, name):.2f}" in table.item(row, 0).toolTip()
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
