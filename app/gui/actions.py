"""The window's commands: the menu bar (File, Edit, View, Tasks, Help), the Tasks toolbar with its Engine, scope and
question boxes, and their shortcuts. Each command is one ``QAction`` whose tooltip names its key.

Functions of the ``MainWindow`` (``window``); the submenus (Engine, Theme) and the shortcut list are in ``menus``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QMenu, QStyle, QToolBar

from app.gui.menus import add_engine_menu, add_theme_menu
from app.gui.prefs import ElidedLabel

PIX = QStyle.StandardPixmap
MakeAction = Callable[..., QAction]


def install_actions(window: Any) -> None:
    """The menus and the toolbar, in the order they show."""
    bar = QToolBar("Tasks")
    bar.setObjectName("tasks")
    window.addToolBar(bar)
    window.toolbar = bar
    file_menu = window.menuBar().addMenu("&File")
    edit_menu = window.menuBar().addMenu("&Edit")
    view_menu = window.menuBar().addMenu("&View")
    task_menu = window.menuBar().addMenu("&Tasks")
    help_menu = window.menuBar().addMenu("&Help")
    action = action_maker(window, bar)
    file_actions(window, action, file_menu)
    edit_actions(window, action, edit_menu)
    view_actions(window, action, view_menu)
    bar.addSeparator()
    task_actions(window, action, task_menu, bar)
    action("&Keyboard shortcuts", window.show_shortcuts, None, help_menu)
    action("&About", window.show_about, None, help_menu)


def action_maker(window: Any, bar: QToolBar) -> MakeAction:
    """``action(text, slot, shortcut, menu, toolbar, icon, checkable)``: a command in ``menu`` (and on ``bar`` with
    ``toolbar``); ``shortcut`` is a key, a standard key or a list of them."""
    style = window.style()

    def action(
        text: str,
        slot: Any,
        shortcut: Any = None,
        menu: Any = None,
        toolbar: bool = False,
        icon: Any = None,
        checkable: bool = False,
    ) -> QAction:
        act = QAction(text, window)
        act.setCheckable(checkable)
        keys = shortcut if isinstance(shortcut, list) else [] if shortcut is None else [shortcut]
        sequences = []
        for key in keys:
            sequences += (
                QKeySequence.keyBindings(key) if isinstance(key, QKeySequence.StandardKey) else [QKeySequence(key)]
            )
        act.setShortcuts(sequences)
        plain = text.replace("&", "").rstrip("\u2026")
        named = sequences[0].toString(QKeySequence.SequenceFormat.NativeText) if sequences else ""
        act.setToolTip(f"{plain} ({named})" if named else plain)
        if icon is not None:
            act.setIcon(style.standardIcon(icon))
        # triggered(checked) passes a bool that a slot with optional arguments would take for one of them
        # (parse(paths) got False for its paths): only a checkable action's slot receives it
        act.triggered.connect(slot if checkable else lambda _checked=False, slot=slot: slot())
        if menu is not None:
            menu.addAction(act)
        if toolbar:
            bar.addAction(act)
        return act

    return action


def file_actions(window: Any, action: MakeAction, menu: QMenu) -> None:
    action("&New session", lambda: window.sessions.ask_new_session(), None, menu)
    action("&Open\u2026", window.open_dialog, QKeySequence.StandardKey.Open, menu, True, PIX.SP_DialogOpenButton)
    window.recent_menu = menu.addMenu("Open &Recent")
    window.fill_recent()
    action("&Export\u2026", window.export_dialog, QKeySequence.StandardKey.Save, menu, True, PIX.SP_DialogSaveButton)
    # the Delete key only: the platform's Delete bindings include Ctrl+D, the denoising panel's shortcut
    action("&Remove document", window.remove_selected, "Del", menu)
    action("C&lear documents", window.clear_documents, None, menu)
    menu.addSeparator()
    action("&Quit", window.close, QKeySequence.StandardKey.Quit, menu)


def edit_actions(window: Any, action: MakeAction, menu: QMenu) -> None:
    action("&Paste image", window.paste_image, QKeySequence.StandardKey.Paste, menu)
    menu.addSeparator()
    action("&Find\u2026", window.finder.open, "Ctrl+F", menu)
    action("Find &next", lambda: window.finder.step(1), "F3", menu)
    action("Find pre&vious", lambda: window.finder.step(-1), "Shift+F3", menu)


def view_actions(window: Any, action: MakeAction, menu: QMenu) -> None:
    action("Zoom &in", lambda: window.page_view.zoom_by(1.25), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="], menu)
    action("Zoom &out", lambda: window.page_view.zoom_by(1 / 1.25), QKeySequence.StandardKey.ZoomOut, menu)
    action("&Fit page", window.page_view.fit, "Ctrl+0", menu)
    action("&Next page", window.next_page, QKeySequence.StandardKey.MoveToNextPage, menu)
    action("&Previous page", window.prev_page, QKeySequence.StandardKey.MoveToPreviousPage, menu)
    window.panel_action = action("Denoising &panel", window.toggle_panel, "Ctrl+D", menu, checkable=True)
    window.panel_action.setChecked(True)
    menu.addAction(window.task_queue.toggle_action())
    menu.addAction(window.ocr_review.toggle_action())
    add_theme_menu(window, menu, action)


def task_actions(window: Any, action: MakeAction, menu: QMenu, bar: QToolBar) -> None:
    """Tasks: the engine, the model, Parse, Ask, Extract, Cancel; on the toolbar with the scope and the question."""
    engine_box(window, bar)
    add_engine_menu(window, menu, action)
    action("&Model\u2026", window.model_dialog, "Ctrl+M", menu, True, PIX.SP_ComputerIcon)
    window.parse_action = action("&Parse", window.parse, "Ctrl+R", menu, True, PIX.SP_FileDialogDetailedView)
    scope_and_question(window, bar)
    action("&Ask", lambda: window.ask(window.question.text()), "Ctrl+K", menu, True, PIX.SP_MessageBoxQuestion)
    action("Clear &conversation", window.clear_conversation, None, menu)
    action("E&xtract\u2026", window.extract_dialog, "Ctrl+J", menu, True, PIX.SP_FileDialogContentsView)
    window.cancel_action = action(
        "&Cancel", window.cancel, QKeySequence.StandardKey.Cancel, menu, True, PIX.SP_BrowserStop
    )
    window.cancel_action.setEnabled(False)


def engine_box(window: Any, bar: QToolBar) -> None:
    """The Engine box on the toolbar: builtin, model or remote."""
    window.engine_box = QComboBox()
    window.engine_box.addItems(["builtin", "model", "remote"])
    window.engine_box.setToolTip(
        "builtin: no weights (layout, OCR, retrieval); model: DiffusionGemma loaded here; "
        "remote: a server (dwb serve, vLLM), chosen in Tasks \u2192 Model\u2026"
    )
    window.engine_box.currentTextChanged.connect(window.engine_changed)
    engine_label = QLabel(" Engine ")
    engine_label.setToolTip(window.engine_box.toolTip())
    bar.addWidget(engine_label)
    bar.addWidget(window.engine_box)


def scope_and_question(window: Any, bar: QToolBar) -> None:
    """Which documents a task covers, the question box, and the scope's names (with the prompt's token count)."""
    window.scope_box = QComboBox()
    window.scope_box.addItems(["Selected", "All documents"])
    window.scope_box.setToolTip(
        "Which documents Parse, Ask and Extract cover: the selected ones (Ctrl+click for several) or all"
    )
    window.scope_box.currentIndexChanged.connect(lambda _: window.tasks.scope_changed())
    bar.addWidget(window.scope_box)
    window.question = QLineEdit()
    window.question.setPlaceholderText("Ask a question about the documents\u2026")
    window.question.setMinimumWidth(130)  # narrow windows keep Ask, Extract and Cancel on the toolbar
    window.question.returnPressed.connect(lambda: window.ask(window.question.text()))
    window.question.textChanged.connect(window.tasks.recount)
    bar.addWidget(window.question)
    window.scope_label = ElidedLabel()
    window.scope_label.setObjectName("scope")
    window.scope_label.setMaximumWidth(190)  # one line, elided (the whole text in its tooltip): never taller
    bar.addWidget(window.scope_label)
