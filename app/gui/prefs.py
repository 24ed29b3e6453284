"""Small pieces the window's parts share: lists kept in the settings, keys a keyboard has, a one-line label."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QKeyCombination, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel

NAMED_KEYS = {
    Qt.Key.Key_Escape,
    Qt.Key.Key_Tab,
    Qt.Key.Key_Backspace,
    Qt.Key.Key_Return,
    Qt.Key.Key_Enter,
    Qt.Key.Key_Insert,
    Qt.Key.Key_Delete,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
    Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown,
    Qt.Key.Key_Left,
    Qt.Key.Key_Up,
    Qt.Key.Key_Right,
    Qt.Key.Key_Down,
    Qt.Key.Key_Space,
    *(Qt.Key(Qt.Key.Key_F1.value + i) for i in range(12)),
}


def stored_list(settings: Any, key: str) -> list[str]:
    """A list of strings kept in the settings. An INI file keeps a one-item list as a plain string, read back as
    that string (iterated, it gave its characters: "t, i, n, y"); a missing or odd value is an empty list."""
    value = settings.value(key, [])
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v]
    return []


def typed(sequence: QKeySequence) -> bool:
    """Whether every key of a shortcut is one a keyboard has: a character, or a named key (F1-F12, Esc, Del,
    arrows, PgUp...), not the extra keys a platform binds (Cancel, Save, F18, Zoom In)."""
    if sequence.isEmpty():
        return False
    for i in range(sequence.count()):
        combination: QKeyCombination = sequence[i]
        key = combination.key()
        if key not in NAMED_KEYS and key.value >= 0x01000000:
            return False
    return True


class ElidedLabel(QLabel):
    """One line, cut with an ellipsis to the width it is given; when cut, the whole text is in its tooltip (above
    ``detail``, a tooltip of its own). A status or count that grows never wraps and never pushes rows down."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.full = ""
        self.detail = ""
        self.setWordWrap(False)
        self.setText(text)

    def setText(self, text: str) -> None:
        self.full = text
        self._elide()

    def set_detail(self, detail: str) -> None:
        self.detail = detail
        self._elide()

    def text(self) -> str:
        return self.full

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._elide()

    def minimumSizeHint(self) -> Any:
        hint = super().minimumSizeHint()
        hint.setWidth(min(hint.width(), self.fontMetrics().horizontalAdvance("\u2026") * 6))
        return hint

    def sizeHint(self) -> Any:
        hint = super().sizeHint()
        hint.setWidth(self.fontMetrics().horizontalAdvance(self.full) + 8)
        return hint

    def shown(self) -> str:
        """The text as shown (elided)."""
        return super().text()

    def _elide(self) -> None:
        width = max(self.width() - 4, 10)
        shown = self.fontMetrics().elidedText(self.full, Qt.TextElideMode.ElideRight, width)
        super().setText(shown)
        cut = self.full.strip() if shown != self.full else ""
        self.setToolTip("\n\n".join(t for t in (cut, self.detail) if t))
