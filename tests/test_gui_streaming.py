"""Streaming answers: a follow-up's answer, like a first question's, appears in the Answer pane canvas by canvas
under the earlier answers, while the denoising panel keeps receiving every step. Offscreen, real widgets, the real
worker and the real tiny model; no mocks."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.gui import SAMPLE
from inference.runtime.events import CanvasCommitted, DenoisingStep
from tests.qt_helpers import TIMEOUT, ingested, load_tiny


def words(text: str) -> str:
    return " ".join(text.split())


def test_a_follow_up_streams_under_the_first_answer_and_the_panel_keeps_every_step(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    steps = 3
    load_tiny(window, qtbot, max_new_tokens=512, max_denoising_steps=steps)
    window.model_engine.engine.eos_token_ids = []  # two full canvases per answer
    window.ask("What is the sample about?")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    first = window.results.thread[-1].text
    seen, step_events = [], []

    def on_event(event):
        if isinstance(event, DenoisingStep):
            step_events.append(event)
        elif isinstance(event, CanvasCommitted):  # after the window's own handlers: what the pane shows now
            seen.append((event.texts[0], window.results.answer.toPlainText(), window.panel.received))

    question = "And what does it say next?"
    job = window.ask(question)
    tasks = window.tasks
    assert tasks.conversations[tasks.scope_key(tasks.scope_entries())].session is not None  # a follow-up
    job.event.connect(on_event)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT)
    assert len(seen) == 2
    so_far = ""
    for text, shown, _ in seen:
        so_far += text
        assert words(first[:40]) in words(shown)  # the first answer stays above
        assert question in shown and words(shown).endswith(words(so_far + "\u2026"))
    assert seen[1][2] - seen[0][2] >= steps  # the panel got the second canvas's every step in between
    assert len(step_events) >= 2 * steps
    assert window.results.streaming is None
    assert words(window.results.thread[-1].text) in words(window.results.answer.toPlainText())
