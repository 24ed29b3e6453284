"""The message strip at the top of the window: errors and notices, never a modal dialog; details on request. It lies
over the top of the panes (an overlay, not a widget in their layout), so a message never pushes the panes down."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)


class Banner(QWidget):
    """A message strip at the top of the window: errors never block in a modal dialog; details on request."""

    STYLES = {
        True: ("#f8d7da", "#58151c", QStyle.StandardPixmap.SP_MessageBoxCritical),
        False: ("#d1e7dd", "#0f5132", QStyle.StandardPixmap.SP_MessageBoxInformation),
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setObjectName("banner")
        self.icon = QLabel()
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details")
        self.close_button = QPushButton("\u2715")
        self.close_button.setFixedWidth(28)
        self.close_button.setToolTip("Dismiss")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button)
        row.addWidget(self.close_button)
        self.details = ""
        self.error = True
        self.problems: list[tuple[str, str]] = []  # the errors shown since the banner last appeared
        self.details_button.clicked.connect(self.show_details)
        self.close_button.clicked.connect(self.hide)
        self.hide()

    def overlay(self, host: QWidget) -> None:
        """Lie over the top of ``host`` (the window's central widget), across its width, following its size."""
        self.setParent(host)
        host.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.place()
        return super().eventFilter(watched, event)

    def place(self) -> None:
        """Across the host's top, as tall as the message needs at that width."""
        host = self.parentWidget()
        if host is None:
            return
        width = host.width()
        layout = self.layout()
        height = layout.heightForWidth(width) if layout.hasHeightForWidth() else self.sizeHint().height()
        self.setGeometry(0, 0, width, max(height, self.minimumSizeHint().height()))
        self.raise_()

    def show_message(self, message: str, details: str = "", error: bool = True) -> None:
        """Show ``message``; errors that come while an error is shown (five files that fail to open) are kept: the
        newest is shown with a count, Details lists them all. Dismissing the banner or a new task starts afresh."""
        if not (error and self.error and self.isVisible()):
            self.problems = []
        if error:
            self.problems.append((message, details))
        earlier = len(self.problems) - 1
        self.label.setText(
            message if earlier <= 0 else f"{message}  ({earlier} earlier problem{'s' * (earlier > 1)}: Details)"
        )
        if earlier > 0:
            details = "\n\n".join(f"{i}. {m}" + (f"\n{d}" if d else "") for i, (m, d) in enumerate(self.problems, 1))
        self.details = details
        self.error = error
        self.details_button.setVisible(bool(details))
        background, text, icon = self.STYLES[error]
        self.setStyleSheet(f"#banner {{ background: {background}; }} #banner QLabel {{ color: {text}; }}")
        self.icon.setPixmap(self.style().standardIcon(icon).pixmap(18, 18))
        self.show()
        self.place()

    def show_details(self) -> QDialog:
        """The details themselves at once, not the message again behind a second "Show Details..." button."""
        box = QDialog(self)
        box.setWindowTitle("Details")
        text = QPlainTextEdit(self.details)
        text.setReadOnly(True)
        text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(box.reject)
        layout = QVBoxLayout(box)
        layout.addWidget(text)
        layout.addWidget(buttons)
        box.resize(640, 360)
        box.open()
        self.details_dialog = box
        return box
