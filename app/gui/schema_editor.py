"""The schema editor for Extract: a table of fields (name, type, required, description) that opens and saves JSON
Schema files. The schema model (fields <-> JSON Schema) is ``inference.tasks.schema``; files are read and written
off the UI thread; whatever is wrong is said in the dialog, which stays open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.messages import describe
from app.gui.views import fit_columns
from app.gui.worker import call_detached

FIELD_WIDTH = "invoice_number"  # a typical field name: the Field column fits it at least

NAME, TYPE, REQUIRED, DESCRIPTION = range(4)


def start_folder(folder: str = "") -> str:
    """Where the Open and Save dialogs start: the folder used last if it still exists, else the Documents folder,
    else home. Always a folder that exists: a missing one made the dialog start in home with its name typed in as
    the file name (Save then wrote ~/Documents.json)."""
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    for candidate in (folder, documents, str(Path.home())):
        if candidate and Path(candidate).is_dir():
            return candidate
    return str(Path.home())


class SchemaEditor(QDialog):
    """Fields of the object to extract. ``schema()`` is the JSON Schema (a ConfigError when a field is wrong)."""

    loaded = Signal(str)  # path, once its fields are in the table
    saved = Signal(str)

    def __init__(self, parent: QWidget | None = None, folder: str = "") -> None:
        from inference.tasks.schema import FIELD_TYPES

        super().__init__(parent)
        self.setWindowTitle("Extract: schema")
        self.types = FIELD_TYPES
        # where the schemas were last opened or saved, else the user's documents folder (not the documents')
        self.folder = start_folder(folder)
        self.path = ""  # the file opened or saved last
        self.base: dict[str, Any] = {}  # the top-level keywords of the schema opened (title...), kept on save
        self.extras: list[dict[str, Any]] = []  # per row: the field's keywords the table does not show
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Field", "Type", "Required", "Description"])
        self.table.horizontalHeader().setSectionResizeMode(DESCRIPTION, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        fit_columns(self.table, (NAME,), FIELD_WIDTH)  # room for a name such as invoice_number from the start
        self.table.itemChanged.connect(self._name_changed)
        self.message = QLabel("Name the fields to extract; the model fills them from the documents in scope.")
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        for text, slot, tip in (
            ("Add field", self.add_field, "A new row"),
            ("Remove field", self.remove_field, "Remove the selected rows"),
            ("Open\u2026", self.open_file, "Open a JSON Schema file"),
            ("Save\u2026", self.save_file, "Save the fields as a JSON Schema file"),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            row.addWidget(button)
        row.addStretch(1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Extract")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(640, 420)

    # rows ---------------------------------------------------------------------------------------------------
    def _name_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == NAME:  # a longer name widens the column to it
            fit_columns(self.table, (NAME,), FIELD_WIDTH)

    def add_field(
        self,
        name: str = "",
        kind: str = "string",
        required: bool = False,
        description: str = "",
        extra: dict[str, Any] | None = None,
    ) -> int:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, NAME, QTableWidgetItem(name))
        box = QComboBox()
        box.addItems(list(self.types))
        box.setCurrentText(kind)
        self.table.setCellWidget(r, TYPE, box)
        check = QTableWidgetItem()
        check.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        check.setCheckState(Qt.CheckState.Checked if required else Qt.CheckState.Unchecked)
        self.table.setItem(r, REQUIRED, check)
        self.table.setItem(r, DESCRIPTION, QTableWidgetItem(description))
        self.extras.insert(r, dict(extra or {}))
        if not name:
            self.table.setCurrentCell(r, NAME)
            self.table.editItem(self.table.item(r, NAME))
        return r

    def remove_field(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()} or {self.table.currentRow()}, reverse=True)
        for r in rows:
            if 0 <= r < self.table.rowCount():
                self.table.removeRow(r)
                del self.extras[r]

    def fields(self) -> list[Any]:
        from inference.tasks.schema import SchemaField

        out = []
        for r in range(self.table.rowCount()):
            name = self.table.item(r, NAME).text() if self.table.item(r, NAME) else ""
            desc = self.table.item(r, DESCRIPTION).text() if self.table.item(r, DESCRIPTION) else ""
            out.append(
                SchemaField(
                    name,
                    self.table.cellWidget(r, TYPE).currentText(),
                    self.table.item(r, REQUIRED).checkState() == Qt.CheckState.Checked,
                    desc,
                    self.extras[r],
                )
            )
        return out

    def schema(self) -> dict[str, Any]:
        from inference.errors import ConfigError
        from inference.tasks.schema import fields_schema

        if not self.table.rowCount():
            raise ConfigError("add at least one field to extract")
        return fields_schema(self.fields(), self.base)

    def set_schema(self, schema: dict[str, Any]) -> None:
        from inference.tasks.schema import schema_fields

        fields = schema_fields(schema)
        self.table.setRowCount(0)
        self.extras = []
        self.base = {k: v for k, v in schema.items() if k not in ("properties", "required", "type")}
        for f in fields:
            self.add_field(f.name, f.type, f.required, f.description, f.extra)
        fit_columns(self.table, (NAME,), FIELD_WIDTH)

    # files ----------------------------------------------------------------------------------------------------
    def say(self, message: str, error: bool = True) -> None:
        self.message.setText(message)
        self.message.setStyleSheet("color: #c0392b;" if error else "")

    def open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a JSON Schema", self.folder, "JSON Schema (*.json)")
        if path:
            self.load(path)

    def save_file(self) -> None:
        try:
            schema = self.schema()
        except Exception as exc:  # noqa: BLE001 - the dialog says what to fix
            self.say(describe(exc))
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the JSON Schema", self.path or str(Path(self.folder) / "schema.json"), "JSON Schema (*.json)"
        )
        if path:
            self.save(path, schema)

    def load(self, path: str) -> None:
        """Read the file on a background thread; its fields replace the table's (or the dialog says why not)."""
        from inference.tasks.schema import load_schema

        self.say(f"Reading {path}\u2026", error=False)

        def done(schema: Any, message: str) -> None:
            if not message:
                try:
                    self.set_schema(schema)
                except Exception as exc:  # noqa: BLE001
                    message = describe(exc)
            if message:
                self.say(message)
                return
            self.path = path
            self.say(f"Opened {path}.", error=False)
            self.loaded.emit(path)

        call_detached(self, "reading the schema", lambda: load_schema(path), done)

    def save(self, path: str, schema: dict[str, Any] | None = None) -> None:
        """Write the schema on a background thread; a name without a suffix gets ``.json`` (Open lists only those)."""
        from inference.tasks.schema import save_schema

        if not Path(path).suffix:
            path += ".json"

        try:
            schema = schema if schema is not None else self.schema()
        except Exception as exc:  # noqa: BLE001
            self.say(describe(exc))
            return
        self.say(f"Saving {path}\u2026", error=False)

        def done(_: Any, message: str) -> None:
            if message:
                self.say(message)
                return
            self.path = path
            self.say(f"Saved {path}.", error=False)
            self.saved.emit(path)

        call_detached(self, "saving the schema", lambda: save_schema(schema, path), done)

    def accept(self) -> None:
        try:
            self.schema()
        except Exception as exc:  # noqa: BLE001 - stays open with the reason
            self.say(describe(exc))
            return
        super().accept()
