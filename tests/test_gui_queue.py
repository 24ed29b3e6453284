"""The task queue: repeated commands are not queued twice, queued and running tasks are listed with a Cancel each,
and a task that waits says so. Offscreen, real widgets, the real worker, the builtin engine and the tiny model."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from app.gui import SAMPLE
from app.gui.runs import runs_of
from tests.qt_helpers import TIMEOUT, ingested, load_tiny


def idle(window) -> bool:
    return not window.worker.busy


def test_ctrl_r_four_times_parses_once_and_says_so(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window) and idle(window), timeout=TIMEOUT)
    for _ in range(4):
        window.parse_action.trigger()
    assert "Already running: parsing sample" in window.status_label.text()
    assert "Not queued again" in window.status_label.text()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    entry = next(iter(window.entries.values()))
    assert len(runs_of(entry)) == 1
    window.parse_action.trigger()  # once the first is done, and not in the same double-click, a new parse
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert len(runs_of(entry)) == 2


def test_a_double_clicked_ask_answers_once(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window) and idle(window), timeout=TIMEOUT)
    window.question.setText("What is block diffusion?")
    first = window.ask(window.question.text())
    assert first is not None
    assert window.ask(window.question.text()) is None  # queued or running: not again
    qtbot.wait(60)  # the builtin engine may have answered by the third click of a quick double-click and Enter
    assert window.ask(window.question.text()) is None
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert len(window.tasks.answer_log) == 1
    assert len(window.results.thread) == 1


def test_ask_during_a_parse_is_listed_as_queued_and_can_be_cancelled_before_it_starts(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=256, max_denoising_steps=4)
    window.model_engine.engine.eos_token_ids = []
    queue = window.task_queue
    assert not queue.button.isVisible()
    parse = window.parse()
    ask = window.ask("What is block diffusion?")
    assert ask is not None and ask is not parse
    assert window.status_label.text().startswith("Queued: asking \u201cWhat is block diffusion?\u201d")
    assert "after parsing sample" in window.status_label.text()
    assert queue.button.isVisible() and queue.button.text() == "2 tasks (1 queued)"
    queue.button.click()
    assert queue.panel.isVisible()
    rows = queue.panel.rows()
    assert [state for _, state in rows] == ["running", "queued"]
    assert rows[0][0].startswith("parsing sample") and "What is block diffusion?" in rows[1][0]
    cancelled = []
    ask.cancelled.connect(cancelled.append)
    queue.panel.table.cellWidget(1, 2).click()  # the queued Ask's own Cancel
    assert cancelled and [state for _, state in queue.panel.rows()] == ["running"]
    assert "before it started" in window.status_label.text()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert window.tasks.answer_log == []  # the Ask never ran
    assert len(runs_of(next(iter(window.entries.values())))) == 1  # the parse did
    assert queue.panel.rows() == [] and not queue.button.isVisible()


def test_the_running_task_stops_from_its_own_cancel_and_the_queued_one_runs(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=1024, max_denoising_steps=24)
    window.model_engine.engine.eos_token_ids = []
    window.task_queue.panel.show()
    window.ask("first question")
    window.engine_box.setCurrentText("builtin")
    window.ask("second question")
    assert [s for _, s in window.task_queue.panel.rows()] == ["running", "queued"]
    qtbot.waitUntil(lambda: window.panel.received > 0, timeout=TIMEOUT)  # the model is denoising
    window.task_queue.panel.table.cellWidget(0, 2).click()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert [a.question for _, a in window.tasks.answer_log] == ["second question"]


def test_a_document_whose_reading_is_cancelled_in_the_queue_says_so_and_opens_again(window, qtbot, tmp_path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("one\n", encoding="utf-8")
    second.write_text("two\n", encoding="utf-8")
    window.task_queue.panel.show()
    window.add_paths([str(first), str(second)])
    rows = window.task_queue.panel.rows()
    assert [state for _, state in rows] == ["running", "queued"] and rows[1][0] == "reading second.txt"
    window.task_queue.panel.table.cellWidget(1, 2).click()
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    entry = window.entries[str(second.resolve())]
    assert entry.status == "failed" and "cancelled" in entry.message
    assert window.entries[str(first.resolve())].status == "ready"
    window.reopen(entry.path)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert entry.status == "ready" and entry.document is not None


def test_a_model_ask_queued_during_a_model_parse_leaves_the_panel_to_the_parse_until_it_starts(window, qtbot):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window) and idle(window), timeout=TIMEOUT)
    load_tiny(window, qtbot, max_new_tokens=512, max_denoising_steps=8)
    window.model_engine.engine.eos_token_ids = []
    window.parse()
    qtbot.waitUntil(lambda: window.panel.received > 3, timeout=TIMEOUT)  # the parse is denoising
    before = window.panel.received
    ask = window.ask("What is block diffusion?")
    assert window.worker.current is not ask and window.panel.received >= before  # not wiped mid-parse
    at_start = []
    window.worker.job_started.connect(lambda job: at_start.append(window.panel.received) if job is ask else None)
    qtbot.waitUntil(lambda: idle(window), timeout=TIMEOUT)
    assert at_start == [0]  # the panel starts afresh for the Ask
    assert window.tasks.answer_log and window.panel.received > 0
