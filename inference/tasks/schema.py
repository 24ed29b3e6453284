"""JSON Schema for ``extract``: check the schema, coerce found strings to its types, validate (``jsonschema``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError


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

    if not isinstance(schema, dict):
        raise ConfigError("a schema must be a JSON object", path=path)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"not a valid JSON Schema: {exc.message}", path=path) from exc
    if schema.get("type", "object") != "object":
        raise ConfigError("extract needs a schema whose top level is an object (\"type\": \"object\")", path=path)


def validate(value: Any, schema: dict[str, Any]) -> list[str]:
    """Every validation error, as 'where: what' lines (empty when valid)."""
    import jsonschema

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
                    candidates.append(text[start:i + 1])
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
