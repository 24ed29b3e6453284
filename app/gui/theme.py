"""The window's colour schemes: the style's light palette or a dark one, chosen by the user (View -> Theme) or
following the system."""

from __future__ import annotations

import os
from typing import Any

DARK = {
    "Window": "#202124",
    "WindowText": "#e8eaed",
    "Base": "#17181a",
    "AlternateBase": "#26282b",
    "Text": "#e8eaed",
    "Button": "#2b2d30",
    "ButtonText": "#e8eaed",
    "Highlight": "#2a7ab8",
    "HighlightedText": "#ffffff",
    "ToolTipBase": "#2b2d30",
    "ToolTipText": "#e8eaed",
    "Link": "#8ab4f8",
    "PlaceholderText": "#9aa0a6",
}
DARK_DISABLED = {
    "WindowText": "#6b6f75",
    "Text": "#6b6f75",
    "ButtonText": "#6b6f75",
    "Button": "#242528",
    "Base": "#1c1d1f",
    "Highlight": "#3c4043",
    "HighlightedText": "#9aa0a6",
}


THEMES = ("system", "light", "dark")
# Fusion draws frames, check boxes and slider grooves a shade darker than the window: on a dark window that is
# near-black on near-black. In the dark scheme these controls get their own outline and fill.
DARK_CONTROLS = """
QLineEdit, QAbstractSpinBox { border: 1px solid #80868b; border-radius: 3px; background: #2b2d30; }
QLineEdit { padding: 1px 3px; }
QLineEdit:focus, QAbstractSpinBox:focus { border: 1px solid #8ab4f8; }
QComboBox:focus { border: 2px solid #8ab4f8; border-radius: 3px; background: #2b2d30; color: #e8eaed; }
QLineEdit:disabled, QAbstractSpinBox:disabled { border: 1px solid #4a4d52; color: #6b6f75; }
QCheckBox::indicator { width: 12px; height: 12px; border: 1px solid #9aa0a6; border-radius: 2px; background: #2b2d30; }
QCheckBox::indicator:checked { background: #8ab4f8; border: 1px solid #8ab4f8; }
QCheckBox::indicator:disabled { border: 1px solid #4a4d52; background: #242528; }
QSlider::groove:horizontal { height: 4px; background: #80868b; border-radius: 2px; }
QSlider::groove:horizontal:disabled { background: #4a4d52; }
QSlider::handle:horizontal { width: 12px; margin: -5px 0; border-radius: 6px; background: #8ab4f8; }
QSlider::handle:horizontal:disabled { background: #5f6368; }
"""


# the light scheme's outlines a shade darker than Fusion's (#b0b0b0 on #efefef is 2:1): 3:1 against the window
LIGHT_CONTROLS = """
QLineEdit, QAbstractSpinBox { border: 1px solid #8a8a8a; border-radius: 3px; background: #ffffff; }
QLineEdit { padding: 1px 3px; }
QLineEdit:focus, QAbstractSpinBox:focus { border: 1px solid #2a7ab8; }
QComboBox:focus { border: 2px solid #2a7ab8; border-radius: 3px; background: #ffffff; }
QLineEdit:disabled, QAbstractSpinBox:disabled { border: 1px solid #c4c4c4; color: #8a8a8a; background: #f4f4f4; }
QCheckBox::indicator { width: 12px; height: 12px; border: 1px solid #767676; border-radius: 2px; background: #ffffff; }
QCheckBox::indicator:checked { background: #2a7ab8; border: 1px solid #2a7ab8; }
QCheckBox::indicator:disabled { border: 1px solid #c4c4c4; background: #f4f4f4; }
QSlider::groove:horizontal { height: 4px; background: #8a8a8a; border-radius: 2px; }
QSlider::groove:horizontal:disabled { background: #c4c4c4; }
QSlider::handle:horizontal { width: 12px; margin: -5px 0; border-radius: 6px; background: #2a7ab8; }
QSlider::handle:horizontal:disabled { background: #b0b0b0; }
"""


def apply_scheme(app: Any, dark: bool) -> None:
    """The light palette of the style, or a dark one whose disabled widgets look disabled and whose input
    controls keep a visible outline."""
    from PySide6.QtGui import QColor, QPalette

    if not dark:
        app.setPalette(app.style().standardPalette())
        app.setStyleSheet(LIGHT_CONTROLS)
        return
    pal = QPalette()
    for name, colour in DARK.items():
        pal.setColor(getattr(QPalette.ColorRole, name), QColor(colour))
    for name, colour in DARK_DISABLED.items():
        pal.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, name), QColor(colour))
    app.setPalette(pal)
    app.setStyleSheet(DARK_CONTROLS)


def is_dark(app: Any) -> bool:
    """Whether the scheme shown is dark (its window darker than its text)."""
    from PySide6.QtGui import QPalette

    pal = app.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < pal.color(QPalette.ColorRole.WindowText).lightness()


def set_theme(app: Any, theme: str) -> None:
    """``system`` follows the system's scheme (``DWB_COLOR_SCHEME=dark|light`` overrides it); ``light`` and
    ``dark`` are the user's choice (View -> Theme)."""
    from PySide6.QtCore import Qt

    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}")
    app.setProperty("dwb_theme", theme)
    if theme != "system":
        apply_scheme(app, theme == "dark")
        return
    forced = os.environ.get("DWB_COLOR_SCHEME", "").lower()
    apply_scheme(app, forced == "dark" or (forced != "light" and app.styleHints().colorScheme() == Qt.ColorScheme.Dark))


def follow_system_theme(app: Any) -> None:
    """Follow the system's scheme while the theme is ``system``."""
    hints = app.styleHints()
    set_theme(app, "system")

    def changed(*_: Any) -> None:
        if app.property("dwb_theme") in (None, "system"):
            set_theme(app, "system")

    hints.colorSchemeChanged.connect(changed)
