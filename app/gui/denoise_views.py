"""The denoising panel's painting: the canvas as a grid of cells (``CanvasGrid``), as decoded text (``CanvasText``),
and the steps each canvas took (``Timeline``), in colours that read on a light or a dark scheme.

Each widget draws the ``Frame`` it is given and nothing else: what to show, and when, is the panel's business.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from app.gui.denoise_frames import ACCEPTED, COMMITTED, EMPTY, KEPT, NOISE, STATE_NAMES, Frame

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
