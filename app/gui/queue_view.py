"""The task queue, visible: the running task and the queued ones, each with its own Cancel.

A small dockable panel (View -> Task queue, Ctrl+Shift+T) and a button in the status bar that counts the tasks and
opens it. Both follow ``Worker.queue_changed``, which fires when a job is queued, starts, finishes or is dropped;
never per denoising step, so the panel costs the UI thread nothing while the model runs. A request identical to one
queued or running is not queued again; the status bar says so (``Worker.duplicate``), and a task that has to wait
behind another says what it waits for (``Worker.job_waiting``).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QWidget,
)

from app.gui.worker import Job, Worker


class QueuePanel(QDockWidget):
    """Task, state (running / queued / cancelling) and a Cancel button per row."""

    def __init__(self, worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__("Task queue", parent)
        self.setObjectName("queue")
        self.worker = worker
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Task", "State", ""])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.setWidget(self.table)
        self.shown: list[Job] = []
        worker.queue_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisible():  # listed again when shown
            return
        self.shown = self.worker.jobs()
        self.table.setRowCount(len(self.shown))
        for row, job in enumerate(self.shown):
            state = "cancelling" if job.cancelled_requested else "running" if job is self.worker.current else "queued"
            task = QTableWidgetItem(job.title)
            task.setToolTip(job.title)
            self.table.setItem(row, 0, task)
            self.table.setItem(row, 1, QTableWidgetItem(state))
            button = QPushButton("Cancel")
            button.setToolTip(f"Cancel {job.title}")
            button.setEnabled(not job.cancelled_requested)
            button.clicked.connect(lambda _=False, j=job: self.cancel(j))
            self.table.setCellWidget(row, 2, button)

    def cancel(self, job: Job) -> None:
        self.worker.drop(job)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def rows(self) -> list[tuple[str, str]]:
        """(task, state) as listed."""
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text()) for r in range(self.table.rowCount())]


class QueueButton(QToolButton):
    """In the status bar: "2 tasks" while tasks run or wait (hidden when none); a click shows the task queue."""

    def __init__(self, worker: Worker, panel: QueuePanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.panel = panel
        self.setAutoRaise(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setToolTip("The running and queued tasks, each with its own Cancel (Ctrl+Shift+T)")
        self.clicked.connect(lambda: (self.panel.show(), self.panel.raise_()))
        worker.queue_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        jobs = self.worker.jobs()
        waiting = len(jobs) - (self.worker.current in jobs)
        self.setText(f"{len(jobs)} task{'s' if len(jobs) != 1 else ''}" + (f" ({waiting} queued)" if waiting else ""))
        self.setVisible(bool(jobs))


class TaskQueue:
    """The window's side: the panel, the status-bar button and the notices (``window`` is the ``MainWindow``)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.panel = QueuePanel(window.worker, window)
        # under the panes, never in the OCR review's column (which keeps the window's full height beside it)
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.panel)
        self.panel.hide()
        self.button = QueueButton(window.worker, self.panel)
        window.statusBar().addPermanentWidget(self.button)
        window.worker.duplicate.connect(self.said_twice)
        window.worker.job_waiting.connect(self.waiting)
        self.asked_at: dict[Any, float] = {}  # key -> when it was last submitted (monotonic seconds)

    def toggle_action(self) -> Any:
        action = self.panel.toggleViewAction()
        action.setText("Task &queue")
        action.setShortcut("Ctrl+Shift+T")
        return action

    def already(self, key: Any, double_click: bool = False) -> bool:
        """True, after saying so in the status bar, when a task with this key is queued or running; with
        ``double_click``, also when it was asked for within a double-click's interval (a builtin Ask may be done by
        the second click). False records the request: the caller submits it now."""
        same = self.window.worker.pending(key)
        if same is not None:
            self.said_twice(same)
            return True
        now = time.monotonic()
        last = self.asked_at.get(key)
        if double_click and last is not None and now - last < QApplication.doubleClickInterval() / 1000:
            self.window.status_label.setText("Asked twice in a double-click: done once.")
            return True
        self.asked_at = {k: t for k, t in self.asked_at.items() if now - t < 5.0}
        self.asked_at[key] = now
        return False

    def said_twice(self, job: Job) -> None:
        state = "running" if job is self.window.worker.current else "queued"
        self.window.status_label.setText(f"Already {state}: {job.title}. Not queued again.")

    def waiting(self, job: Job, ahead: Job) -> None:
        self.window.status_label.setText(
            f"Queued: {job.title}, after {ahead.title}. Task queue: Ctrl+Shift+T (each task has its Cancel)."
        )
