"""The window's menus beyond its task actions: Tasks -> Engine, View -> Theme, Help -> Keyboard shortcuts; and which
blocks of a page a cited passage fills. Functions of the ``MainWindow`` (``window``), kept apart from its layout."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from app.gui.prefs import typed

ENGINES = ("builtin", "model", "remote")
THEMES = ("system", "light", "dark")


def add_engine_menu(window: Any, task_menu: Any, action: Any) -> None:
    """Tasks -> Engine: Choose engine (Ctrl+Shift+E opens the Engine box) and one checkable entry per engine.
    Ctrl+Shift+E, not Ctrl+E: a text box takes Ctrl+E (end of line) before the window sees it."""
    window.engine_menu = task_menu.addMenu("&Engine")
    action("&Choose engine", lambda: choose_engine(window), "Ctrl+Shift+E", window.engine_menu)
    window.engine_actions = {}
    for number, name in enumerate(ENGINES, 1):
        act = action(f"&{number} {name}", lambda n=name: window.engine_box.setCurrentText(n), None, window.engine_menu)
        act.setCheckable(True)
        window.engine_actions[name] = act
    window.engine_actions["builtin"].setChecked(True)
    window.engine_box.currentTextChanged.connect(
        lambda name: [act.setChecked(engine == name) for engine, act in window.engine_actions.items()]
    )


def choose_engine(window: Any) -> None:
    """The Engine box, focused and open (it sits about eleven Tabs away)."""
    window.engine_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
    window.engine_box.showPopup()


def add_theme_menu(window: Any, view_menu: Any, action: Any) -> None:
    """View -> Theme: system, light or dark."""
    window.theme_menu = view_menu.addMenu("&Theme")
    window.theme_actions = {}
    for name in THEMES:
        act = action(f"&{name.capitalize()}", lambda n=name: window.set_theme(n), None, window.theme_menu)
        act.setCheckable(True)
        window.theme_actions[name] = act


def set_theme_of(window: Any, theme: str) -> None:
    """Apply a theme to the application and keep it in the settings."""
    from app.gui.theme import set_theme

    set_theme(QApplication.instance(), theme)
    window.settings.setValue("theme", theme)
    for name, act in window.theme_actions.items():
        act.setChecked(name == theme)


def restore_theme(window: Any) -> None:
    """The theme chosen in View -> Theme last time (system unless one was chosen)."""
    theme = str(window.settings.value("theme", "system") or "system")
    theme = theme if theme in THEMES else "system"
    window.theme_actions[theme].setChecked(True)
    if theme != "system":
        window.set_theme(theme)


def shortcut_rows(window: Any) -> list[tuple[str, str]]:
    """(command, keys) of every menu command with a key a keyboard has (not the platform's extra bindings such as
    the Cancel, Save or F18 keys of some keyboards), sorted by command."""
    rows = set()
    for act in window.findChildren(QAction):
        keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts() if typed(k))
        if keys:
            rows.add((act.text().replace("&", "").lstrip("123 ").rstrip("\u2026"), keys))
    return sorted(rows)


def show_shortcuts(window: Any) -> QMessageBox:
    """Help -> Keyboard shortcuts, without blocking the UI thread."""
    from html import escape

    rows = "".join(f"<tr><td>{escape(c)}</td><td><b>{escape(k)}</b></td></tr>" for c, k in shortcut_rows(window))
    box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", f"<table>{rows}</table>", parent=window)
    box.open()
    window.dialog = box
    return box


def passage_blocks(blocks: list[Any], passage: str) -> list[int]:
    """The blocks a cited passage comes from: a block of two words or more whose text is inside the passage, or one
    that holds the passage (a one-line passage of a long block); failing both, blocks nearly all of whose words are
    the passage's. A page cited as a whole (the passage is all its text) singles out no block."""

    def norm(text: str) -> str:
        return " " + " ".join(re.findall(r"\w+", text.lower())) + " "

    wanted = norm(passage)
    if not wanted.strip():
        return []
    texts = [(blk.order, norm(blk.text)) for blk in blocks if blk.text.strip()]
    out = [o for o, own in texts if (len(own.split()) >= 2 and own in wanted) or wanted in own]
    if not out:
        words = set(wanted.split())
        for order, own in texts:
            mine = own.split()
            if len(mine) >= 3 and sum(w in words for w in mine) >= 0.9 * len(mine):
                out.append(order)
    if len(texts) > 3 and len(out) == len(texts):
        return []  # every block: the citation is of the page, not of a passage on it
    return out
