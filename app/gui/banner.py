"""The message strip at the top of the window: errors and notices, never a modal dialog; details on request."""

from __future__ import annotations

from PySide6.QtCore import Qt
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
