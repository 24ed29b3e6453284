"""JSON Schema for ``extract``: check the schema, coerce found strings to its types, validate (``jsonschema``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import ConfigError


def load_schema(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("schema file not found", path=path) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"the schema is not valid JSON ({exc})", path=path) from exc
    check_schema(schema, path)
    return schema


def check_schema(schema: Any, path: str | Path | None = None) -> None:
    import jsonschema
    import jsonschema.validators

    if not isinstance(schema, dict):
        raise ConfigError("a schema must be a JSON object", path=path)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"not a valid JSON Schema: {exc.message}", path=path) from exc
    if schema.get("type", "object") != "object":
        raise ConfigError('extract needs a schema whose top level is an object ("type": "object")', path=path)


def validate(value: Any, schema: dict[str, Any]) -> list[str]:
    """Every validation error, as 'where: what' lines (empty when valid)."""
    import jsonschema.validators

    validator = jsonschema.validators.validator_for(schema)(schema)
    out = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        out.append(f"{where}: {err.message}")
    return out


def coerce(text: str, spec: dict[str, Any]) -> Any:
    """A found string as the schema type asks; ValueError when it cannot be."""
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    text = text.strip()
    if kind in ("number", "integer"):
        m = re.search(r"-?\d[\d,' ]*(?:\.\d+)?", text)
        if not m:
            raise ValueError(text)
        number = float(re.sub(r"[,' ]", "", m.group(0)))
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        low = text.lower()
        if low in ("yes", "true", "y", "1", "x", "\u2713"):
            return True
        if low in ("no", "false", "n", "0", ""):
            return False
        raise ValueError(text)
    if kind == "array":
        return [p.strip() for p in re.split(r"[;,]", text) if p.strip()]
    if kind == "object":
        raise ValueError(text)
    if "enum" in spec:
        for option in spec["enum"]:
            if str(option).lower() == text.lower():
                return option
        raise ValueError(text)
    return text


def parse_json_object(text: str) -> Any:
    """The first JSON object in a model's output (fenced or bare); ValueError when there is none."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, flags=re.S)
    candidates = [fenced.group(1)] if fenced else []
    start = text.find("{")
    while start != -1:
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start : i + 1])
                    break
        start = text.find("{", start + 1)
        if len(candidates) > 8:
            break
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError("the output holds no JSON object")


# the schema editor's model: a flat list of fields -----------------------------------------------------------------
FIELD_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass
class SchemaField:
    """One property of an object schema as the editor shows it; ``extra`` keeps its other keywords (``enum``,
    ``items``, ``format``, nested ``properties``...) as they were, so that loading and saving loses nothing. A list of
    types (``["integer", "null"]``) stays in ``extra["type"]``: the editor shows and edits its first type other than
    ``null``, and saving puts the edited type back in its place, keeping the others."""

    name: str
    type: str = "string"
    required: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def schema_fields(schema: dict[str, Any]) -> list[SchemaField]:
    """The fields of an object schema, in its order (checked first: a ConfigError says what is wrong)."""
    check_schema(schema)
    required = set(schema.get("required") or ())
    out = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = dict(spec) if isinstance(spec, dict) else {}
        kind = spec.pop("type", "string")
        if isinstance(kind, list) and kind:  # ["string", "null"]: the editor shows the first real type
            spec["type"] = list(kind)
            kind = kind[_shown(kind)]
        out.append(
            SchemaField(
                name,
                kind if kind in FIELD_TYPES else "string",
                name in required,
                str(spec.pop("description", "")),
                spec,
            )
        )
    return out


def _shown(types: list[Any]) -> int:
    """Where in a list of types the editor's one type sits: the first that is not ``null``."""
    return next((i for i, k in enumerate(types) if k != "null"), 0)


def _field_type(f: SchemaField) -> str | list[Any]:
    """The field's type as saved: the edited type, in its place among the loaded list's other types."""
    loaded = f.extra.get("type")
    if not isinstance(loaded, list) or not loaded:
        return f.type
    types = list(loaded)
    types[_shown(types)] = f.type
    types = list(dict.fromkeys(types))
    return types if len(types) > 1 else types[0]


def fields_schema(fields: list[SchemaField], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of these fields (``base``'s other top-level keywords kept); a ConfigError names a field
    without a name, a name given twice or an unknown type."""
    seen: set[str] = set()
    properties: dict[str, Any] = {}
    for number, f in enumerate(fields, 1):
        name = f.name.strip()
        if not name:
            raise ConfigError(f"field {number} has no name")
        if name in seen:
            raise ConfigError(f"the field name {name!r} is given twice")
        if f.type not in FIELD_TYPES:
            raise ConfigError(f"field {name!r}: unknown type {f.type!r} (one of {', '.join(FIELD_TYPES)})")
        seen.add(name)
        spec = {"type": _field_type(f), **({"description": f.description.strip()} if f.description.strip() else {})}
        properties[name] = {**spec, **{k: v for k, v in f.extra.items() if k not in ("type", "description")}}
    schema = {k: v for k, v in (base or {}).items() if k not in ("properties", "required", "type")}
    schema = {"$schema": DRAFT, **schema, "type": "object", "properties": properties}
    required = [f.name.strip() for f in fields if f.required]
    if required:
        schema["required"] = required
    check_schema(schema)
    return schema


def save_schema(schema: dict[str, Any], path: str | Path) -> Path:
    """Write a checked schema as indented JSON (the file gets the umask's mode)."""
    path = Path(path)
    check_schema(schema, path)
    try:
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"the schema could not be written ({exc.strerror or exc})", path=path) from exc
    return path
