"""A JSON Schema check for tool arguments: the subset tool definitions use.

Why not ``jsonschema``: it would become a run-time dependency (with three of its own)
for the handful of keywords function parameters are written with. Checked here:
``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties`` (false or a schema), ``items``, ``anyOf``/``oneOf``/``allOf``,
string and array length bounds and numeric ranges. Unknown keywords (``format``,
``$ref``, ``pattern``…) are not enforced: a call is refused only for what is surely
wrong, never for what the check does not understand.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    types = _TYPES.get(kind)
    return types is None or isinstance(value, types)


def schema_errors(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema``: one message per problem, empty when it fits."""
    if not isinstance(schema, dict):
        return []
    errors: list[str] = []
    kinds = schema.get("type")
    if isinstance(kinds, str):
        kinds = [kinds]
    if isinstance(kinds, list) and not any(_is(value, k) for k in kinds if isinstance(k, str)):
        return [f"{path}: expected {' or '.join(map(str, kinds))}"]
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        errors.append(f"{path}: not one of the allowed values")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and all(schema_errors(value, o, path) for o in options):
            errors.append(f"{path}: matches none of {key}")
    for sub in schema.get("allOf") or []:
        errors += schema_errors(value, sub, path)
    if isinstance(value, dict):
        errors += _object(value, schema, path)
    elif isinstance(value, list):
        errors += _array(value, schema, path)
    elif isinstance(value, str):
        errors += _bounds(len(value), schema, "minLength", "maxLength", path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        errors += _bounds(value, schema, "minimum", "maximum", path)
    return errors


def _object(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}.{name}: required" for name in schema.get("required") or []
              if isinstance(name, str) and name not in value]
    declared = schema.get("properties")
    properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            errors += schema_errors(item, properties[name], f"{path}.{name}")
        elif extra is False:
            errors.append(f"{path}.{name}: not allowed")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{path}.{name}")
    return errors


def _array(value: list[Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = _bounds(len(value), schema, "minItems", "maxItems", path)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            errors += schema_errors(item, items, f"{path}[{i}]")
    return errors


def _bounds(size: float, schema: dict[str, Any], low: str, high: str, path: str) -> list[str]:
    errors = []
    if isinstance(schema.get(low), (int, float)) and size < schema[low]:
        errors.append(f"{path}: below {low} {schema[low]}")
    if isinstance(schema.get(high), (int, float)) and size > schema[high]:
        errors.append(f"{path}: above {high} {schema[high]}")
    return errors
