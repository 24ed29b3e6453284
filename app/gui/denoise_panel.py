"""The denoising panel: the 256-token canvas as a 16 x 16 grid, live, step by step, canvas after canvas.

Each cell is coloured by its state: noise (re-noised for the next step), accepted this step, kept (accepted on this
step and the one before), committed (the canvas is finished). Per-position entropy is a red heat overlay. Hover a
cell for its token and entropy. Counters show canvas, step, tokens per forward and tokens/s; a timeline shows the
steps each canvas took; after a run a scrubber replays any step of any canvas.

Events arrive queued from the worker; ``on_event`` only records them. A timer at the display's rate redraws when
something changed, so drawing is coalesced and the engine never waits for the panel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

NOISE, ACCEPTED, KEPT, COMMITTED, EMPTY = range(5)
STATE_NAMES = {
    NOISE: "noise (re-noised)",
    ACCEPTED: "accepted this step",
    KEPT: "kept",
    COMMITTED: "committed",
    EMPTY: "not started",
}
COLOURS = {
    NOISE: QColor(150, 150, 150),
    ACCEPTED: QColor(60, 190, 90),
    KEPT: QColor(50, 130, 200),
    COMMITTED: QColor(30, 60, 130),
    EMPTY: QColor(90, 90, 90, 60),
}
HEAT = np.array([235, 45, 45, 255], dtype=np.float32)
DARK_COLOURS = {
    NOISE: QColor(120, 124, 130),
    ACCEPTED: QColor(80, 210, 110),
    KEPT: QColor(80, 160, 235),
    COMMITTED: QColor(150, 175, 255),
    EMPTY: QColor(160, 160, 160, 50),
}


def is_dark(widget: QWidget) -> bool:
    return widget.palette().window().color().lightness() < 128


def state_colours(widget: QWidget) -> dict[int, QColor]:
    """The state colours that read on this widget's background (light or dark scheme)."""
    return DARK_COLOURS if is_dark(widget) else COLOURS


FIXED_FAMILIES = (
    "DejaVu Sans Mono",
    "Noto Mono",
    "Liberation Mono",
    "Menlo",
    "Consolas",
    "Courier New",
    "Nimbus Mono PS",
)


def fixed_font() -> QFont:
    """The system's fixed-pitch font, or, where that resolves to a font Qt does not take for fixed pitch (seen here:
    "monospace" -> Noto Sans Mono once Ghostscript's fonts were installed), the first fixed-pitch family found."""
    from PySide6.QtGui import QFontInfo

    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if QFontInfo(font).fixedPitch():
        return font
    families = QFontDatabase.families()
    fixed = [f for f in FIXED_FAMILIES if f in families and QFontDatabase.isFixedPitch(f)]
    fixed += [f for f in families if QFontDatabase.isFixedPitch(f)]
    if fixed:
        font.setFamily(fixed[0])
    font.setStyleHint(QFont.StyleHint.TypeWriter)
    return font


@dataclass
class Frame:
    """What one cell grid shows: one step of one canvas (row 0 of the batch)."""

    canvas: int
    step: int
    draft: np.ndarray  # (n,) int32
    state: np.ndarray  # (n,) int8
    entropy: np.ndarray  # (n,) float16
    temperature: float = 0.0
    run: int = 1  # which run of the session (a window parse runs once per page)
    run_base: int = 0  # the session-wide index of that run's first canvas (``canvas`` counts across runs)

    def label(self) -> str:
        """``canvas 2`` in the first run, ``run 3, canvas 1`` in later ones (canvases count from 1 in each run)."""
        within = f"canvas {self.canvas - self.run_base + 1}"
        return within if self.run <= 1 else f"run {self.run}, {within}"


def frame_from_step(event: Any, previous: Frame | None, run: int = 1, base: int = 0) -> Frame:
    """The frame of one step; ``base``: canvases before this run (the engine counts canvases from 0 in each run)."""
    accepted = np.asarray(event.accepted[0], dtype=bool)
    renoised = np.asarray(event.renoised[0], dtype=bool)
    state = np.full(accepted.shape, NOISE, dtype=np.int8)
    canvas = event.canvas + base
    kept_before = previous is not None and previous.canvas == canvas and previous.state.shape == state.shape
    before = np.isin(previous.state, (ACCEPTED, KEPT)) if kept_before else np.zeros_like(accepted)
    state[accepted & before] = KEPT
    state[accepted & ~before] = ACCEPTED
    state[~accepted & ~renoised] = KEPT if event.finished else NOISE
    return Frame(
        canvas,
        event.step,
        np.asarray(event.draft[0]),
        state,
        np.asarray(event.entropy[0]),
        float(event.temperature),
        run,
        base,
    )


class CanvasGrid(QWidget):
    """Paints one frame: side x side cells."""

    hovered = Signal(int)

    def __init__(self, decode: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.decode = decode or (lambda i: str(i))
        self.frame: Frame | None = None
        self.show_entropy = True
        self.max_entropy = 1.0
        self.paints = 0
        self._pixels: np.ndarray | None = None
        self._lookup_key: tuple[int, int] | None = None
        self._lookup_table = np.zeros((0, 0), np.intp)
        self.setMouseTracking(True)
        self.setMinimumSize(QSize(128, 128))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_frame(self, frame: Frame | None) -> None:
        self.frame = frame
        self.update()

    def side(self) -> int:
        n = len(self.frame.state) if self.frame is not None else 256
        return max(1, math.isqrt(n - 1) + 1)

    def cell_rect(self, index: int) -> QRectF:
        side = self.side()
        size = self.cell_size()
        return QRectF((index % side) * size, (index // side) * size, size, size)

    def index_at(self, x: float, y: float) -> int | None:
        side = self.side()
        size = max(1, self.cell_size())
        col, row = int(x // size), int(y // size)
        if not (0 <= col < side and 0 <= row < side):
            return None
        index = row * side + col
        return index if self.frame is not None and index < len(self.frame.state) else None

    def paintEvent(self, _event: Any) -> None:
        """One image per frame, composed in NumPy and drawn in one call, not 256 cells painted one by one: the UI
        thread's time per frame stays small (tests/benchmarks/ui.py measures it)."""
        self.paints += 1
        side = self.side()
        cell = self.cell_size()
        if cell < 1:
            return
        p = QPainter(self)
        p.drawImage(0, 0, self.render_image(side, cell))
        p.end()

    def cell_size(self) -> int:
        """Whole pixels per cell: the cells tile the square without seams."""
        return int(min(self.width(), self.height()) // self.side())

    def render_image(self, side: int, cell: int) -> QImage:
        frame = self.frame
        n = len(frame.state) if frame is not None else 256
        palette = self._palette()
        state = np.full(side * side, len(palette) - 1, dtype=np.intp)  # past the end: background
        state[:n] = frame.state if frame is not None else EMPTY
        colour = palette[state]  # (side*side, 4) RGBA, straight alpha
        inset = colour.copy()
        if frame is not None and self.show_entropy:  # entropy: a red inset, so the state colour stays readable
            heat = np.zeros(side * side, dtype=np.float32)
            heat[:n] = np.asarray(frame.entropy, dtype=np.float32) / max(self.max_entropy, 1e-6)
            alpha = np.where(heat > 0.02, (60 + 195 * np.minimum(heat, 1.0)) / 255.0, 0.0)[:, None]
            inset[:, :3] = (HEAT[:3] * alpha + inset[:, :3] * (1 - alpha)).astype(np.uint8)
            inset[:, 3] = np.maximum(inset[:, 3], (alpha[:, 0] * 255).astype(np.uint8))
        table = np.concatenate([np.zeros((1, 4), np.uint8), colour, inset]).view(np.uint32)[:, 0]
        self._pixels = np.ascontiguousarray(table[self._lookup(side, cell)])  # the QImage borrows it until the next
        height, width = self._pixels.shape
        return QImage(self._pixels.data, width, height, width * 4, QImage.Format.Format_RGBA8888)

    def _palette(self) -> np.ndarray:
        colours = state_colours(self)
        rows = [colours[k].getRgb() for k in (NOISE, ACCEPTED, KEPT, COMMITTED, EMPTY)] + [(0, 0, 0, 0)]
        return np.array(rows, dtype=np.uint8)

    def _lookup(self, side: int, cell: int) -> np.ndarray:
        """Per pixel, its row in the frame's colour table: 0 a seam between cells, 1 + i cell i, 1 + side^2 + i the
        entropy inset of cell i. Depends on the size only: cached."""
        key = (side, cell)
        if self._lookup_key != key:
            offset = np.arange(side * cell) % cell
            index = np.arange(side * cell) // cell
            which = index[:, None] * side + index[None, :]
            gap = 1 if cell >= 4 else 0
            inner = (offset >= gap) & (offset < cell - gap)
            lo, hi = round(cell * 0.28), cell - round(cell * 0.28)
            core = (offset >= lo) & (offset < hi)
            table = np.where(inner[:, None] & inner[None, :], 1 + which, 0)
            table[core[:, None] & core[None, :] & (table > 0)] += side * side
            self._lookup_table = table.astype(np.intp)
            self._lookup_key = key
        return self._lookup_table

    def mouseMoveEvent(self, event: Any) -> None:
        pos = event.position()
        index = self.index_at(pos.x(), pos.y())
        if index is None or self.frame is None:
            QToolTip.hideText()
            return
        self.hovered.emit(index)
        QToolTip.showText(event.globalPosition().toPoint(), self.tooltip(index), self)

    def tooltip(self, index: int) -> str:
        frame = self.frame
        token = self.decode(int(frame.draft[index]))
        return (
            f"position {index}: {token!r}\nentropy {float(frame.entropy[index]):.3f}\n"
            f"{STATE_NAMES[int(frame.state[index])]}"
        )


class Timeline(QWidget):
    """One bar per canvas, its height the number of steps it took; the scrubbed canvas highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.current = -1
        self.max_steps = 1
        self.setMinimumHeight(40)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_steps(self, steps: list[int], current: int, max_steps: int) -> None:
        self.steps, self.current, self.max_steps = list(steps), current, max(1, max_steps)
        self.update()

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        n = max(len(self.steps), 1)
        bar = min(28.0, w / n)
        for i, s in enumerate(self.steps):
            height = (h - 12) * s / self.max_steps
            colour = QColor(60, 190, 90) if i == self.current else QColor(50, 130, 200)
            p.fillRect(QRectF(i * bar + 1, h - 12 - height, bar - 2, height), colour)
        p.setPen(QPen(self.palette().text().color()))
        p.setFont(QFont(p.font().family(), 7))
        p.drawText(QRectF(0, h - 12, w, 12), Qt.AlignmentFlag.AlignLeft, steps_text(self.steps))
        p.end()


def steps_text(steps: list[int]) -> str:
    if not steps:
        return "steps per canvas: none yet"
    shown = ", ".join(str(s) for s in steps[-24:])
    more = "\u2026, " if len(steps) > 24 else ""
    return f"steps per canvas: {more}{shown}"


class CanvasText(QWidget):
    """The canvas decoded token by token, each token coloured by its state, its entropy as a red tint.

    Painted directly, each token from a small cached picture of it (text, state and tint, the tint in 8 levels), so
    that a step neither rebuilds a rich-text document nor shapes 256 runs of text on the UI thread
    (tests/benchmarks/ui.py measures the UI thread's time per frame)."""

    HEAT_LEVELS = 8
    MAX_CACHED = 20_000

    def __init__(self, decode: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.decode = decode or (lambda i: str(i))
        self.frame: Frame | None = None
        self.max_entropy = 1.0
        self.tokens: list[str] = []  # the decoded tokens of the frame shown
        self._cache: dict[int, str] = {}
        self._widths: dict[str, int] = {}
        self._pictures: dict[tuple[str, int, int], QPixmap] = {}
        self._picture_key: tuple = ()
        self.setMinimumSize(QSize(160, 128))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFont(fixed_font())

    def set_decoder(self, decode: Any) -> None:
        self.decode = decode
        self._cache.clear()

    def token(self, token_id: int) -> str:
        text = self._cache.get(token_id)
        if text is None:
            try:
                text = self.decode(token_id)
            except Exception:  # noqa: BLE001 - an undecodable id shows as its number
                text = f"<{token_id}>"
            text = text.replace("\n", "\u21b5").replace("\t", "\u2192") or "\u00b7"
            if len(self._cache) < 100_000:
                self._cache[token_id] = text
        return text

    def set_frame(self, frame: Frame | None) -> None:
        self.frame = frame
        self.tokens = [] if frame is None else [self.token(int(t)) for t in frame.draft.tolist()]
        self.update()

    def _picture(self, text: str, state: int, level: int, line: int) -> QPixmap:
        """The token drawn once in its state's colour on its tint; reused by every frame that shows it."""
        key = (text, state, level)
        picture = self._pictures.get(key)
        if picture is not None:
            return picture
        width = self._widths.get(text)
        if width is None:
            width = self._widths[text] = self.fontMetrics().horizontalAdvance(text) + 2
        ratio = self.devicePixelRatioF()
        picture = QPixmap(max(1, round(width * ratio)), max(1, round(line * ratio)))
        picture.setDevicePixelRatio(ratio)
        picture.fill(Qt.GlobalColor.transparent)
        p = QPainter(picture)
        if level:
            p.fillRect(QRectF(0, 0, width, line - 1), QColor(235, 45, 45, int(110 * level / self.HEAT_LEVELS)))
        p.setFont(self.font())
        p.setPen(state_colours(self)[state])
        p.drawText(QRectF(0, 0, width, line), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        p.end()
        if len(self._pictures) >= self.MAX_CACHED:
            self._pictures.clear()
        self._pictures[key] = picture
        return picture

    def paintEvent(self, _event: Any) -> None:
        frame = self.frame
        if frame is None:
            return
        line = self.fontMetrics().height() + 2
        key = (line, self.devicePixelRatioF(), is_dark(self), self.font().key())
        if key != self._picture_key:  # another font, scale or colour scheme: draw the pictures again
            self._pictures.clear()
            self._widths.clear()
            self._picture_key = key
        heat = np.asarray(frame.entropy, dtype=np.float32) / max(self.max_entropy, 1e-6)
        levels = np.where(heat > 0.05, np.clip(np.ceil(heat * self.HEAT_LEVELS), 1, self.HEAT_LEVELS), 0)
        states = frame.state.tolist()
        p = QPainter(self)
        x = y = 2
        width, height = self.width() - 2, self.height()
        for text, state, level in zip(self.tokens, states, levels.astype(int).tolist(), strict=False):
            picture = self._picture(text, state, level, line)
            w = self._widths[text]
            if x + w > width and x > 2:
                x, y = 2, y + line
                if y > height:
                    break
            p.drawPixmap(x, y, picture)
            x += w
        p.end()


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
        legend = QHBoxLayout()
        self.swatches: dict[int, QLabel] = {}
        for state in (NOISE, ACCEPTED, KEPT, COMMITTED):
            swatch = QLabel("\u25a0 " + STATE_NAMES[state].split(" (")[0].replace(" this step", ""))
            swatch.setToolTip(STATE_NAMES[state])
            self.swatches[state] = swatch
            legend.addWidget(swatch)
        self._colour_legend()
        legend.addStretch(1)
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
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, 1000 // fps))
        self.timer.timeout.connect(self._redraw)
        self.timer.start()

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
