"""The denoising panel: the 256-token canvas as a 16 x 16 grid, live, step by step, canvas after canvas.

Each cell is coloured by its state: noise (re-noised for the next step), accepted this step, kept (accepted on this
step and the one before), committed (the canvas is finished). Per-position entropy is a red heat overlay. Hover a
cell for its token and entropy. Counters show canvas, step, tokens per forward and tokens/s; a timeline shows the
steps each canvas took; after a run a scrubber replays any step of any canvas.

Events arrive queued from the worker; ``on_event`` only records them (as ``denoise_frames.Frame``). A timer at the
display's rate redraws when something changed, so drawing is coalesced and the engine never waits for the panel.
The panel keeps the run's state, counters and scrubber; the widgets that paint a frame are in ``denoise_views``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from app.gui.denoise_frames import ACCEPTED, COMMITTED, KEPT, NOISE, STATE_NAMES, Frame, frame_from_step
from app.gui.denoise_views import CanvasGrid, CanvasText, Timeline, state_colours


class DenoisePanel(QWidget):
    """Records engine events and shows them; a scrubber replays them after the run."""

    def __init__(self, decode: Any = None, parent: QWidget | None = None, fps: int = 60) -> None:
        super().__init__(parent)
        self.frames: list[Frame] = []
        self.steps_per_canvas: list[int] = []
        self.received = 0
        self.redraws = 0
        self.committed_tokens = 0
        self.forwards = 0
        self.tokens_per_second = 0.0
        self.running = False
        self.phase = ""  # "prefill" between PrefillStarted and the first step, "steps" after
        self.stopped_at = ""
        self.cached_tokens = 0
        self.prompt_tokens = 0
        self._dirty = False
        self._base = 0
        self._run = 0
        self._max_steps = 1
        self.grid = CanvasGrid(decode)
        self.text = CanvasText(decode)
        self.counters = QLabel("no run yet")
        self.counters.setObjectName("counters")
        self.counters.setWordWrap(True)
        self.timeline = Timeline()
        self.entropy_box = QCheckBox("entropy heat")
        self.entropy_box.setChecked(True)
        self.entropy_box.toggled.connect(self._toggle_entropy)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setEnabled(False)
        self.scrubber.valueChanged.connect(self._scrub)
        self.scrub_label = QLabel("")
        self._lay_out(self._legend())
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, 1000 // fps))
        self.timer.timeout.connect(self._redraw)
        self.timer.start()

    def _legend(self) -> QHBoxLayout:
        """One swatch per state, in the state's colour (``_colour_legend``)."""
        legend = QHBoxLayout()
        self.swatches: dict[int, QLabel] = {}
        for state in (NOISE, ACCEPTED, KEPT, COMMITTED):
            swatch = QLabel("\u25a0 " + STATE_NAMES[state].split(" (")[0].replace(" this step", ""))
            swatch.setToolTip(STATE_NAMES[state])
            self.swatches[state] = swatch
            legend.addWidget(swatch)
        self._colour_legend()
        legend.addStretch(1)
        return legend

    def _lay_out(self, legend: QHBoxLayout) -> None:
        """The title and the counters; the grid beside the text; the legend and the timeline; the scrubber's row."""
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Denoising</b>"))
        layout.addWidget(self.counters)
        views = QSplitter(Qt.Orientation.Horizontal)
        views.addWidget(self.grid)
        views.addWidget(self.text)
        views.setSizes([300, 300])
        self.views = views
        layout.addWidget(views, 1)
        layout.addLayout(legend)
        layout.addWidget(self.timeline)
        row = QHBoxLayout()
        row.addWidget(self.scrubber, 1)
        row.addWidget(self.scrub_label)
        row.addWidget(self.entropy_box)
        layout.addLayout(row)

    def set_decoder(self, decode: Any) -> None:
        self.grid.decode = decode
        self.text.set_decoder(decode)

    def _colour_legend(self) -> None:
        colours = state_colours(self)
        for state, swatch in self.swatches.items():
            swatch.setStyleSheet(f"color: {colours[state].name()};")

    def changeEvent(self, event: Any) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._colour_legend()
            self._dirty = True
        super().changeEvent(event)

    def position(self) -> str:
        """Where the run shown stands, or stood when it was cancelled, in the panel's own numbering (1-based,
        canvases counted across runs): what the user saw last."""
        if self.stopped_at:
            return self.stopped_at
        if self.phase == "prefill":
            return "during the prefill"
        if self.frames:
            last = self.frames[-1]
            return f"after {last.label()}, step {last.step + 1}"
        return ""

    def reset(self) -> None:
        self.frames.clear()
        self.steps_per_canvas.clear()
        self.received = 0
        self.committed_tokens = self.forwards = 0
        self._base = 0
        self._run = 0
        self.tokens_per_second = 0.0
        self.scrubber.setEnabled(False)
        self.scrub_label.setText("")
        self.phase = self.stopped_at = ""
        self.cached_tokens = self.prompt_tokens = 0
        self.grid.set_frame(None)
        self.text.set_frame(None)
        self._dirty = True

    # events ------------------------------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        """Record an engine event (called on the UI thread, queued from the worker). Cheap: no drawing here."""
        import inference.runtime.events as ev

        self.received += 1
        if isinstance(event, ev.PrefillStarted):  # a run (one page, one question) starts: canvases continue on
            self.running = True
            self.phase = "prefill"
            self.stopped_at = ""
            self.cached_tokens, self.prompt_tokens = int(event.cached_tokens), int(event.prompt_tokens)
            self._base = len(self.steps_per_canvas)
            self._run += 1
            self.scrubber.setEnabled(False)
            self.scrub_label.setText("")
        elif isinstance(event, ev.DenoisingStep):
            self.phase = "steps"
            previous = self.frames[-1] if self.frames else None
            frame = frame_from_step(event, previous, max(self._run, 1), self._base)
            self.grid.max_entropy = max(self.grid.max_entropy, float(np.max(frame.entropy, initial=0.0)))
            self.text.max_entropy = self.grid.max_entropy
            self.frames.append(frame)
            while len(self.steps_per_canvas) <= frame.canvas:
                self.steps_per_canvas.append(0)
            self.steps_per_canvas[frame.canvas] = event.step + 1
            self._max_steps = max(self._max_steps, event.step + 1 + int(event.remaining))
            self.forwards += 1
        elif isinstance(event, ev.CanvasCommitted):
            if self.frames:
                last = self.frames[-1]
                committed = Frame(
                    last.canvas,
                    last.step,
                    np.asarray(event.ids[0]),
                    np.full(last.state.shape, COMMITTED, dtype=np.int8),
                    last.entropy,
                    last.temperature,
                    last.run,
                    last.run_base,
                )
                self.frames.append(committed)
            # the tokens written, not the padding after end-of-sequence (a short page is not 256 tokens' worth)
            written = event.new_tokens[0] if event.new_tokens else np.asarray(event.ids[0]).size
            self.committed_tokens += int(written)
        elif isinstance(event, ev.Finished):
            self.tokens_per_second = float(event.stats.tokens_per_second)
            self._end_run()
        elif isinstance(event, (ev.Cancelled, ev.Failed)):
            self.stopped_at = self.position()
            self._end_run()
        self._dirty = True

    def _end_run(self) -> None:
        self.running = False
        self.phase = ""
        if self.frames:
            self.scrubber.blockSignals(True)
            self.scrubber.setRange(0, len(self.frames) - 1)
            self.scrubber.setValue(len(self.frames) - 1)
            self.scrubber.blockSignals(False)
            self.scrubber.setEnabled(True)

    # drawing ------------------------------------------------------------------------------------------
    def redraw_now(self) -> None:
        """Draw what has arrived since the last frame now, not at the next tick (a screenshot, a test)."""
        self._redraw()

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        frame = self.frames[-1] if self.frames else None
        self.grid.set_frame(frame)
        if self.text.isVisible() or frame is None:
            self.text.set_frame(frame)
        self._update_labels(frame)

    def _update_labels(self, frame: Frame | None) -> None:
        cache = (
            f" \u00b7 prompt {self.prompt_tokens:,} + cached {self.cached_tokens:,} tokens"
            if (self.cached_tokens)
            else ""
        )
        if frame is None:
            self.counters.setText("prefill\u2026" + cache if self.phase == "prefill" else "no run yet")
            self.timeline.set_steps(self.steps_per_canvas, -1, self._max_steps)
            return
        per_forward = (
            f"{self.committed_tokens / self.forwards:.2f} tokens/forward"
            if (self.forwards and self.committed_tokens)
            else ""
        )  # nothing committed yet: no figure, not 0.00
        rate = f"{self.tokens_per_second:.0f} tokens/s" if self.tokens_per_second else "running" if self.running else ""
        parts = (
            frame.label().replace(", ", " \u00b7 "),
            f"step {frame.step + 1}",
            per_forward,
            rate,
            f"t={frame.temperature:.2f}",
        )
        self.counters.setText(" \u00b7 ".join(p for p in parts if p) + cache)
        self.timeline.set_steps(self.steps_per_canvas, frame.canvas, self._max_steps)

    def _scrub(self, index: int) -> None:
        if 0 <= index < len(self.frames):
            frame = self.frames[index]
            self.grid.set_frame(frame)
            self.text.set_frame(frame)
            self.scrub_label.setText(f"{frame.label()}, step {frame.step + 1}")
            self._update_labels(frame)

    def _toggle_entropy(self, on: bool) -> None:
        self.grid.show_entropy = on
        self.grid.update()
