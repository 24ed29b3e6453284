"""The schema editor for Extract: fields, types and required, saved and opened as JSON Schema files, and
Extract run from it. Offscreen, real widgets, real files; no mocks."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from app.gui import SAMPLE
from app.gui.schema_editor import NAME, REQUIRED, TYPE, SchemaEditor
from inference.tasks.schema import DRAFT, check_schema
from tests.qt_helpers import TIMEOUT, ingested


def editor(qtbot) -> SchemaEditor:
    dialog = SchemaEditor()
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def type_in(dialog: SchemaEditor, name: str, kind: str, required: bool) -> None:
    """What a user does: Add field, type the name, pick the type, tick Required."""
    row = dialog.add_field()
    dialog.table.item(row, NAME).setText(name)
    dialog.table.cellWidget(row, TYPE).setCurrentText(kind)
    dialog.table.item(row, REQUIRED).setCheckState(Qt.CheckState.Checked if required else Qt.CheckState.Unchecked)


def rows(dialog: SchemaEditor) -> list[tuple[str, str, bool]]:
    return [
        (
            dialog.table.item(r, NAME).text(),
            dialog.table.cellWidget(r, TYPE).currentText(),
            dialog.table.item(r, REQUIRED).checkState() == Qt.CheckState.Checked,
        )
        for r in range(dialog.table.rowCount())
    ]


def test_fields_save_as_json_schema_and_open_again(qtbot, tmp_path):
    dialog = editor(qtbot)
    type_in(dialog, "invoice_number", "string", True)
    type_in(dialog, "total", "number", True)
    type_in(dialog, "paid", "boolean", False)
    path = tmp_path / "invoice.json"
    with qtbot.waitSignal(dialog.saved, timeout=TIMEOUT):
        dialog.save(str(path))
    schema = json.loads(path.read_text())
    assert schema == {
        "$schema": DRAFT,
        "type": "object",
        "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}, "paid": {"type": "boolean"}},
        "required": ["invoice_number", "total"],
    }
    check_schema(schema)
    again = editor(qtbot)
    with qtbot.waitSignal(again.loaded, timeout=TIMEOUT):
        again.load(str(path))
    assert rows(again) == [("invoice_number", "string", True), ("total", "number", True), ("paid", "boolean", False)]
    assert again.schema() == schema


def test_save_adds_json_and_says_saved_and_the_dialogs_start_where_schemas_live(qtbot, tmp_path):
    dialog = editor(qtbot)
    type_in(dialog, "total", "number", True)
    with qtbot.waitSignal(dialog.saved, timeout=TIMEOUT) as saved:
        dialog.save(str(tmp_path / "invoice"))
    assert saved.args == [str(tmp_path / "invoice.json")] and (tmp_path / "invoice.json").exists()
    assert dialog.message.text() == f"Saved {tmp_path / 'invoice.json'}."
    assert not (tmp_path / "invoice").exists()
    assert SchemaEditor(folder=str(tmp_path)).folder == str(tmp_path)
    fresh = SchemaEditor()
    assert fresh.folder and fresh.folder != str(SAMPLE.parent)  # the user's documents folder, not the last PDFs'


def test_opening_and_saving_keeps_what_the_table_does_not_show(qtbot, tmp_path):
    original = {
        "title": "Paper",
        "type": "object",
        "required": ["authors"],
        "properties": {
            "authors": {"type": "array", "items": {"type": "string"}, "description": "Names"},
            "year": {"type": ["integer", "null"], "minimum": 1900},
            "venue": {"type": "string", "enum": ["journal", "conference"]},
            "nothing": {"type": "null"},
        },
    }
    source = tmp_path / "paper.json"
    source.write_text(json.dumps(original))
    dialog = editor(qtbot)
    with qtbot.waitSignal(dialog.loaded, timeout=TIMEOUT):
        dialog.load(str(source))
    assert rows(dialog) == [
        ("authors", "array", True),
        ("year", "integer", False),
        ("venue", "string", False),
        ("nothing", "null", False),
    ]
    type_in(dialog, "doi", "string", False)
    saved = tmp_path / "paper2.json"
    with qtbot.waitSignal(dialog.saved, timeout=TIMEOUT):
        dialog.save(str(saved))
    schema = json.loads(saved.read_text())
    assert schema["title"] == "Paper" and schema["required"] == ["authors"]
    assert schema["properties"]["authors"] == original["properties"]["authors"]
    assert schema["properties"]["venue"]["enum"] == ["journal", "conference"]
    assert schema["properties"]["year"] == original["properties"]["year"]
    assert schema["properties"]["nothing"] == original["properties"]["nothing"]
    assert schema["properties"]["doi"] == {"type": "string"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "array"}', "top level is an object"),
        ('{"type": "object", "properties": {"a": {"type": "colour"}}}', "not a valid JSON Schema"),
    ],
)
def test_a_bad_file_says_why_and_keeps_the_fields(qtbot, tmp_path, content, expected):
    dialog = editor(qtbot)
    type_in(dialog, "kept", "string", False)
    path = tmp_path / "bad.json"
    path.write_text(content)
    dialog.load(str(path))
    qtbot.waitUntil(lambda: "Reading" not in dialog.message.text(), timeout=TIMEOUT)
    assert expected in dialog.message.text() and "Traceback" not in dialog.message.text()
    assert rows(dialog) == [("kept", "string", False)]


def test_fields_that_are_wrong_keep_the_dialog_open_with_the_reason(qtbot, tmp_path):
    dialog = editor(qtbot)
    dialog.buttons.accepted.emit()
    assert dialog.isVisible() and "at least one field" in dialog.message.text()
    type_in(dialog, "name", "string", True)
    type_in(dialog, "name", "number", False)
    dialog.buttons.accepted.emit()
    assert dialog.isVisible() and "'name' is given twice" in dialog.message.text()
    dialog.save(str(tmp_path / "never.json"))
    assert not (tmp_path / "never.json").exists() and "given twice" in dialog.message.text()
    dialog.table.item(1, NAME).setText("")
    dialog.buttons.accepted.emit()
    assert "field 2 has no name" in dialog.message.text()
    dialog.table.item(1, NAME).setText("size")
    dialog.save(str(tmp_path / "no-such-folder" / "s.json"))
    qtbot.waitUntil(
        lambda: "Saving" not in dialog.message.text() and "no name" not in dialog.message.text(), timeout=TIMEOUT
    )
    assert "could not be written" in dialog.message.text() and "Traceback" not in dialog.message.text()


def test_extract_runs_from_the_editor_and_remembers_the_schema(window, qtbot, tmp_path):
    window.add_paths([str(SAMPLE)])
    qtbot.waitUntil(lambda: ingested(window), timeout=TIMEOUT)
    dialog = window.extract_dialog()
    assert rows(dialog) == [("", "string", False)]  # nothing used before: one empty field
    dialog.table.item(0, NAME).setText("Canvas")
    type_in(dialog, "Steps", "string", False)
    path = tmp_path / "canvas.json"
    with qtbot.waitSignal(dialog.saved, timeout=TIMEOUT):
        dialog.save(str(path))
    dialog.buttons.accepted.emit()
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not window.worker.busy and bool(window.tasks.extractions), timeout=TIMEOUT)
    assert [window.results.table.item(r, 0).text() for r in range(window.results.table.rowCount())] == [
        "Canvas",
        "Steps",
    ]
    assert window.results.currentWidget() is window.results.extract_tab
    again = window.extract_dialog()  # the schema used last opens again
    qtbot.waitUntil(lambda: again.path == str(path), timeout=TIMEOUT)
    assert rows(again) == [("Canvas", "string", False), ("Steps", "string", False)]
    again.reject()
