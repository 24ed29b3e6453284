"""Export choices: which documents, which formats, and whether the answers and extractions go too.

The dialog only collects choices; the window writes the files on its worker thread through ``inference.exports``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

FORMATS = (
    ("md", "Markdown"),
    ("json", "JSON"),
    ("txt", "Plain text"),
    ("html", "HTML"),
    ("csv", "CSV (tables)"),
    ("pdf", "Searchable PDF"),
)


@dataclass
class ExportChoice:
    folder: str
    documents: list[str]  # paths of parsed documents
    formats: tuple[str, ...]
    answers: bool = True
    extractions: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def existing_targets(choice: ExportChoice, stems: list[str], extractions: int) -> list[Path]:
    """The files an export of ``choice`` would replace in its folder (the documents' ``stems``, the answers, the
    ``extractions``), so that the window can ask before overwriting them."""
    from inference.exports import safe_name

    folder = Path(choice.folder)
    if not folder.is_dir():
        return []
    names = [f"{safe_name(stem)}.{fmt}" for stem in stems for fmt in choice.formats if fmt != "csv"]
    names += ["answers.md"] * choice.answers + [f"extraction-{i}.json" for i in range(1, extractions + 1)]
    found = [folder / n for n in names if (folder / n).exists()]
    if "csv" in choice.formats:
        found += [p for stem in stems for p in sorted(folder.glob(f"{safe_name(stem)}_p*_t*.csv"))]
    return found


class ExportDialog(QDialog):
    def __init__(
        self,
        parent: QWidget | None,
        documents: list[tuple[str, str]],
        folder: str,
        formats: str,
        answers: int,
        extractions: int,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.docs = QListWidget()
        for path, label in documents:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.docs.addItem(item)
        chosen = {f.strip() for f in formats.split(",")}
        self.format_boxes = {}
        row = QHBoxLayout()
        for key, label in FORMATS:
            box = QCheckBox(label)
            box.setChecked(key in chosen)
            self.format_boxes[key] = box
            row.addWidget(box)
        self.answers = QCheckBox(f"Answers ({answers})")
        self.answers.setChecked(answers > 0)
        self.answers.setEnabled(answers > 0)
        self.extractions = QCheckBox(f"Extractions ({extractions})")
        self.extractions.setChecked(extractions > 0)
        self.extractions.setEnabled(extractions > 0)
        self.folder = QLineEdit(folder)
        browse = QPushButton("Choose\u2026")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Parsed documents" if documents else "No parsed document yet."))
        layout.addWidget(self.docs)
        layout.addLayout(row)
        layout.addWidget(self.answers)
        layout.addWidget(self.extractions)
        layout.addWidget(QLabel("Folder"))
        layout.addLayout(where)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #b3261e;")
        self.problem.hide()
        layout.addWidget(self.problem)
        self.folder.textChanged.connect(lambda text: self.problem.hide() if text.strip() else None)  # answered
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def accept(self) -> None:
        """Save stays in the dialog, saying why, while there is no folder to write to."""
        if not self.folder.text().strip():
            self.problem.setText("Choose a folder to export to (type it or use Choose\u2026).")
            self.problem.show()
            self.folder.setFocus()
            return
        super().accept()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def choice(self) -> ExportChoice:
        docs = [
            self.docs.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.docs.count())
            if self.docs.item(i).checkState() == Qt.CheckState.Checked
        ]
        formats = tuple(k for k, box in self.format_boxes.items() if box.isChecked())
        return ExportChoice(
            self.folder.text().strip(), docs, formats, self.answers.isChecked(), self.extractions.isChecked()
        )
