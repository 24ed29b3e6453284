"""The denoising panel's drawing and
the model's threads in the window. Offscreen, real widgets, the real worker; no timing asserted here (the stall
is measured in tests/benchmarks/ui.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QColor, QImage

from app.gui.denoise_frames import ACCEPTED, COMMITTED, KEPT, NOISE, Frame
from app.gui.denoise_views import CanvasGrid, CanvasText, state_colours
from app.gui.worker import Job
from tests.qt_helpers import TIMEOUT, load_tiny


def frame(n: int = 256) -> Frame:
    state = np.array([NOISE, ACCEPTED, KEPT, COMMITTED] * (n // 4), dtype=np.int8)
    entropy = np.zeros(n, dtype=np.float16)
    entropy[5] = 2.0  # one hot cell: a red inset
    return Frame(0, 0, np.arange(n, dtype=np.int32) % 50, state, entropy)


def rendered(widget) -> QImage:
    image = QImage(widget.size(), QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    widget.render(image)
    return image


def test_the_grid_paints_each_cell_in_its_state_colour_with_the_entropy_inset(qtbot):
    grid = CanvasGrid()
    qtbot.addWidget(grid)
    grid.resize(320, 320)
    grid.max_entropy = 2.0
    grid.set_frame(frame())
    image = rendered(grid)
    colours = state_colours(grid)
    cell = grid.cell_size()
    assert cell == 20
    for index, state in ((0, NOISE), (1, ACCEPTED), (2, KEPT), (3, COMMITTED), (17, ACCEPTED)):
        rect = grid.cell_rect(index)
        edge = image.pixelColor(int(rect.x()) + 2, int(rect.y()) + 2)  # inside the cell, outside the inset
        assert edge.getRgb()[:3] == colours[state].getRgb()[:3], (index, edge.getRgb())
    hot = grid.cell_rect(5).center()
    red = image.pixelColor(int(hot.x()), int(hot.y()))
    assert red.red() > 200 and red.green() < 80  # the entropy inset of the hot cell
    cool = grid.cell_rect(4).center()
    assert image.pixelColor(int(cool.x()), int(cool.y())).getRgb()[:3] == colours[NOISE].getRgb()[:3]
    assert grid.index_at(hot.x(), hot.y()) == 5
    grid.show_entropy = False
    assert rendered(grid).pixelColor(int(hot.x()), int(hot.y())).getRgb()[:3] == colours[ACCEPTED].getRgb()[:3]


def test_the_text_view_draws_each_token_once_and_reuses_it(qtbot):
    view = CanvasText(lambda i: f"t{i} ")
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.max_entropy = 2.0
    view.set_frame(frame())
    image = rendered(view)
    assert view.tokens[:3] == ["t0 ", "t1 ", "t2 "]
    drawn = len(view._pictures)
    assert 0 < drawn <= 256
    painted = [image.pixelColor(x, y) for x in range(2, 60) for y in range(2, 20)]
    assert any(c.alpha() and c.getRgb()[:3] == state_colours(view)[NOISE].getRgb()[:3] for c in painted)
    rendered(view)  # the same frame again: nothing new to draw
    assert len(view._pictures) == drawn


def test_the_model_leaves_a_core_to_the_ui_thread(window, qtbot):
    load_tiny(window, qtbot)
    job = Job("threads", lambda job: __import__("torch").get_num_threads())
    seen = []
    job.succeeded.connect(seen.append)
    window.worker.submit(job)
    qtbot.waitUntil(lambda: bool(seen), timeout=TIMEOUT)
    cores = len(os.sched_getaffinity(0))
    assert 1 <= seen[0] <= max(1, cores - 1)


def test_each_run_counts_its_own_canvases_and_keeps_what_earlier_steps_accepted(qtbot):
    """A window parse runs once per page: the second run's frames say "run 2, canvas 1", and a position accepted at
    step 1 of that run shows as kept at step 2 (not as newly accepted), as in the first run."""
    import torch

    import inference.runtime.events as ev
    from app.gui.denoise_panel import DenoisePanel
    from inference.prompts import PromptBuilder
    from inference.runtime.engine import DiffusionEngine
    from inference.weights.loading import load_model
    from training.pages import page_image, parse_parts, prompt_inputs

    loaded = load_model("tiny-trained", dtype="fp32", device="cpu")
    engine = DiffusionEngine(loaded.model, loaded.processor.tokenizer)
    builder = PromptBuilder(loaded.processor)
    import random

    image = page_image((612, 792), random.Random(0), 8)
    panel = DenoisePanel()
    qtbot.addWidget(panel)
    runs = []
    for page, hint in enumerate(("The workbench turns scans into text.", "Each canvas is denoised step by step."), 1):
        inputs = prompt_inputs(builder, [parse_parts("sample.pdf", page, hint, image)])
        events = []
        with torch.inference_mode():
            for event in engine.generate(inputs, engine.default_params(seed=page)):
                panel.on_event(event)
                events.append(event)
        runs.append([e for e in events if isinstance(e, ev.DenoisingStep)])
    frames = [f for f in panel.frames if f.state.min() != COMMITTED]  # the step frames, not the commits
    first, second = frames[: len(runs[0])], frames[len(runs[0]) :]
    assert len(second) == len(runs[1]) >= 2
    assert [f.label() for f in (first[0], second[0])] == ["canvas 1", "run 2, canvas 1"]
    assert second[0].canvas == 1 and second[0].run_base == 1  # the session-wide index goes on for the timeline
    for run in (first, second):
        accepted_at_1 = np.isin(run[0].state, (ACCEPTED, KEPT))
        assert accepted_at_1.any()  # the trained model accepts some of the text at the first step
        still = accepted_at_1 & np.isin(run[1].state, (ACCEPTED, KEPT))
        assert still.any() and bool((run[1].state[still] == KEPT).all())
    panel._update_labels(second[-1])
    assert panel.counters.text().startswith("run 2 \u00b7 canvas 1 \u00b7 step")


def test_tokens_per_forward_counts_written_tokens_not_padding(qtbot, tiny_model, processor):
    """A short answer (here only end-of-sequence) fills its canvas with padding: the counter divides the tokens
    written by the forwards, not the canvas's 256 positions (which read as 64 or 128 tokens/forward)."""
    import inference.runtime.events as ev
    from app.gui.denoise_panel import DenoisePanel
    from inference.runtime.engine import DiffusionEngine
    from tests.helpers import chat_inputs
    from tests.model_helpers import towards

    engine = DiffusionEngine(towards(tiny_model, processor.tokenizer.eos_token_id), processor.tokenizer)
    panel = DenoisePanel()
    qtbot.addWidget(panel)
    events = list(engine.generate(chat_inputs(processor, "Nothing"), engine.default_params(seed=0)))
    for event in events:
        panel.on_event(event)
    panel.redraw_now()
    steps = sum(isinstance(e, ev.DenoisingStep) for e in events)
    assert steps >= 1 and f"{1 / steps:.2f} tokens/forward" in panel.counters.text(), panel.counters.text()
