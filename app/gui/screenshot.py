"""Screenshots of the window in named states, rendered offscreen with real work: the sample document is read and
parsed, and the demonstration model runs for the denoising panel. Only the window's public methods are used.

``dwb screenshot OUT.png --state done --size 800x600`` calls :func:`screenshot`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from app.gui import SAMPLE, application, apply_scheme
from app.gui import wait_until as wait_for

WAIT_S = 900.0  # a busy machine loads and runs the model slowly: a state waits for its work, not for a clock


def wait_until(app: Any, condition: Any) -> bool:
    return wait_for(app, condition, WAIT_S)


STATES = ("empty", "loaded", "generating", "done", "conversation", "extract", "extract-pinned", "dark")


def _model_parse(app: Any, window: Any, stop: Any = None) -> Any:
    """The demonstration model parses the sample (page by page); ``stop(event, runs)`` may freeze the panel."""
    window.engine_box.setCurrentText("model")
    runs = []

    def watch(event: Any) -> None:
        from inference.runtime.events import PrefillStarted

        if isinstance(event, PrefillStarted):
            runs.append(event)
        if stop is not None:
            stop(event, len(runs))

    job = window.parse()
    if job is not None:
        job.event.connect(watch)
    return job


def _generating(app: Any, window: Any) -> None:
    """Page 2 of the sample mid-canvas: the text layer's words emerging from noise."""
    frozen = []

    def stop_mid_canvas(event: Any, runs: int) -> None:
        from inference.runtime.events import DenoisingStep

        if isinstance(event, DenoisingStep) and runs == 2 and event.step >= GENERATING_STEP and not frozen:
            frozen.append(event)
            window.panel.redraw_now()
            window.panel.timer.stop()

    if window.model_engine is None:
        return
    _model_parse(app, window, stop_mid_canvas)
    wait_until(app, lambda: bool(frozen) or not window.worker.busy)
    if frozen:
        window.status_label.setText(
            f"Parsing page 2: canvas 1, step {frozen[0].step + 1} (tiny-trained demonstration model)"
        )


def _done(app: Any, window: Any) -> None:
    """The sample parsed by the demonstration model; the panel keeps page 2's last canvas."""
    if window.model_engine is not None:  # a build without the model runtime shows the builtin parse alone
        _model_parse(app, window)
        wait_until(app, lambda: not window.worker.busy)
    else:
        window.engine_box.setCurrentText("builtin")
        window.parse()
        wait_until(app, lambda: not window.worker.busy)
    window.toggle_panel(True)
    window.results.setCurrentWidget(window.results.rendered)
    window.page_view.highlight(2)


def _conversation(app: Any, window: Any) -> None:
    """Two questions with the builtin engine's evidence, then one with the model and its follow-up."""
    window.engine_box.setCurrentText("builtin")
    for question in ("What does the builtin engine do without weights?", "How does adaptive stopping work?"):
        window.ask(question)
        wait_until(app, lambda: not window.worker.busy)
    window.engine_box.setCurrentText("model" if window.model_engine is not None else "builtin")
    for question in ("What is block diffusion?", "And what is committed to the cache?"):
        window.question.setText(question)
        window.ask(question)
        wait_until(app, lambda: not window.worker.busy)
    window.engine_box.setCurrentText("builtin")
    window.results.setCurrentWidget(window.results.answer)
    cited = window.results.thread[0].citations if window.results.thread else []
    if cited:
        window.show_citation(cited[0])


def _extract(app: Any, window: Any) -> None:
    import json
    import tempfile

    schema = {
        "type": "object",
        "properties": {"Canvas": {"type": "string"}, "Steps": {"type": "string"}, "Tokens": {"type": "string"}},
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "schema.json"
        path.write_text(json.dumps(schema), encoding="utf-8")
        window.extract(str(path))
        wait_until(app, lambda: not window.worker.busy)
    source = next((s for s in window.results.extraction_sources() if s is not None), None)
    if source is not None:
        window.show_citation(source)


def _extract_pinned(app: Any, window: Any) -> None:
    """The demonstration model fills a schema pinned on the canvas: each value coloured by its confidence, with its
    page and quote (the model was trained to transcribe, not to fill slots: the values show the mechanism)."""
    window.engine_box.setCurrentText("model")
    _extract(app, window)


GENERATING_STEP = 3  # the step the "generating" picture shows (0-based)
STAGES = {
    "generating": _generating,
    "done": _done,
    "dark": _done,
    "conversation": _conversation,
    "extract": _extract,
    "extract-pinned": _extract_pinned,
}


def not_rendered(window: Any, state: str) -> str:
    """Why the window is not in the state asked for (an error shown, the sample not read, work not finished), or
    "" when it is."""
    if window.last_error:
        return window.last_error.splitlines()[0]
    if state != "empty":
        entry = window.entries.get(str(SAMPLE.resolve()))
        if entry is None or entry.document is None:
            return f"the sample document was not read ({SAMPLE})"
    if state != "generating" and window.worker.busy:
        return "the work did not finish in time"
    return ""


def screenshot(out: str | Path, state: str = "done", size: tuple[int, int] = (1400, 860)) -> Path:
    """Render the window offscreen in ``state`` and save it as PNG. Real work, no mock-ups: the sample document is
    ingested and parsed, and the tiny model runs for the denoising panel."""
    from inference.runtime.available import has_model_runtime, require_model_runtime

    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    if state in ("generating", "extract-pinned"):
        require_model_runtime()  # the states that are the model at work
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = application()
    from app.gui.main_window import MainWindow
    from app.gui.model_dialog import ModelChoice, checkpoint_defaults

    if state == "dark":
        apply_scheme(app, True)
    window = MainWindow(session=False)
    try:
        window.resize(*size)
        window.show()
        if state != "empty":
            window.add_paths([str(SAMPLE)])
            wait_until(
                app, lambda: all(e.document is not None or e.status == "failed" for e in window.entries.values())
            )
        if state in ("generating", "done", "dark", "conversation", "extract-pinned") and has_model_runtime():
            params = {**checkpoint_defaults("tiny-trained"), "seed": 0}
            window.load_model(ModelChoice("tiny-trained", "fp32", "cpu", params))
            wait_until(app, lambda: window.model_engine is not None or not window.worker.busy)
        if state in STAGES:
            STAGES[state](app, window)
        app.processEvents()
        if state != "generating":
            window.panel.redraw_now()
        problem = not_rendered(window, state)
        if problem:
            from inference.errors import WorkbenchError

            raise WorkbenchError(f"the window did not render the {state!r} state: {problem}")
        image = window.grab()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
    finally:
        window.panel.timer.stop()
        window.worker.cancel()
        window.close()
        wait_until(app, lambda: not window.isVisible())
        window.deleteLater()
        app.processEvents()
        if state == "dark":
            apply_scheme(app, False)
    return out
