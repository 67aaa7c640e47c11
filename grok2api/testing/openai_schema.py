"""Validate response bodies against OpenAI's published schemas.

The spec lives at ``<repo>/../shared/spec/openai/openapi.yaml``. It is an OpenAPI 3.1
document that still carries OpenAPI 3.0's ``nullable: true`` in places; a JSON Schema
validator ignores that keyword, so it is rewritten into a ``null`` alternative first.

    from grok2api.testing.openai_schema import validate
    validate("CreateChatCompletionResponse", body)   # raises jsonschema.ValidationError
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "openai" / "openapi.yaml"
_BASE = "urn:openai:openapi"


def fix_nullable(node: Any) -> Any:
    """Rewrite every ``nullable: true`` schema into ``anyOf: [schema, {type: null}]``."""
    if isinstance(node, list):
        return [fix_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: fix_nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [fixed, {"type": "null"}]}
    return fixed


@functools.cache
def _registry() -> Registry:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = fix_nullable(yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=loader))
    return Registry().with_resource(_BASE, Resource.from_contents(document, default_specification=DRAFT202012))


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``#/components/schemas/<name>``; unknown names raise ``KeyError``."""
    registry = _registry()
    if name not in registry.contents(_BASE)["components"]["schemas"]:
        raise KeyError(f"no schema named {name!r} in {SPEC_PATH}")
    return jsonschema.Draft202012Validator({"$ref": f"{_BASE}#/components/schemas/{name}"}, registry=registry)


def validate(name: str, body: Any) -> None:
    """Raise :class:`jsonschema.ValidationError` when ``body`` does not fit schema ``name``."""
    validator(name).validate(body)
