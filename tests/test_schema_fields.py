"""The schema editor's model without Qt (``inference.tasks.schema``): fields to JSON Schema and back, losing nothing,
and the errors a user reads."""

from __future__ import annotations

import json

import pytest

from inference.errors import ConfigError
from inference.tasks.schema import DRAFT, SchemaField, fields_schema, load_schema, save_schema, schema_fields


def test_fields_round_trip_through_a_file(tmp_path):
    fields = [
        SchemaField("total", "number", True, "Amount due"),
        SchemaField("tags", "array", False, "", {"items": {"type": "string"}}),
    ]
    schema = fields_schema(fields, {"title": "Invoice"})
    assert schema == {
        "$schema": DRAFT,
        "title": "Invoice",
        "type": "object",
        "required": ["total"],
        "properties": {
            "total": {"type": "number", "description": "Amount due"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    path = save_schema(schema, tmp_path / "invoice.json")
    assert json.loads(path.read_text()) == schema
    assert schema_fields(load_schema(path)) == fields


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([SchemaField(" ")], "field 1 has no name"),
        ([SchemaField("a"), SchemaField("a", "number")], "'a' is given twice"),
        ([SchemaField("a", "colour")], "unknown type 'colour'"),
    ],
)
def test_wrong_fields_are_named(fields, message):
    with pytest.raises(ConfigError, match=message):
        fields_schema(fields)


def test_a_folder_that_does_not_exist_is_a_message(tmp_path):
    with pytest.raises(ConfigError, match="could not be written"):
        save_schema(fields_schema([SchemaField("a")]), tmp_path / "missing" / "s.json")


def test_a_list_of_types_keeps_the_types_the_editor_does_not_edit():
    schema = {
        "type": "object",
        "properties": {
            "year": {"type": ["integer", "null"]},
            "note": {"type": ["null", "string"]},
            "gone": {"type": "null"},
        },
    }
    fields = schema_fields(schema)
    assert [(f.name, f.type) for f in fields] == [("year", "integer"), ("note", "string"), ("gone", "null")]
    assert fields_schema(fields)["properties"] == schema["properties"]
    fields[0].type = "number"  # the user edits the shown type: the edit takes its place, null stays
    fields[1].type = "null"  # the same type twice is written once
    properties = fields_schema(fields)["properties"]
    assert properties["year"] == {"type": ["number", "null"]}
    assert properties["note"] == {"type": "null"}
