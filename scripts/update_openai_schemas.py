#!/usr/bin/env python3
"""Regenerate the OpenAI schemas the tests validate against, from OpenAI's OpenAPI document.

    .venv-test/bin/python scripts/update_openai_schemas.py [OPENAPI_YAML]           # rewrite the copy
    .venv-test/bin/python scripts/update_openai_schemas.py --check [OPENAPI_YAML]   # exit 1 when it is stale

OPENAPI_YAML defaults to ``../shared/spec/openai/openapi.yaml`` beside the repository; its
LICENSE (MIT) is copied too. The copy in ``grok2api/testing/openai_spec/`` lets the suite
run in any clone, and holds only what validation needs: every schema of
``components.schemas``, with annotations (descriptions, titles, examples, ``x-*``
extensions) dropped and OpenAPI 3.0's ``nullable: true``, which a JSON Schema validator
ignores, rewritten as a ``null`` alternative. One schema per line, so a diff names the
schemas that changed. Needs PyYAML (the test extras).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT.parent / "shared" / "spec" / "openai" / "openapi.yaml"
TARGET = ROOT / "grok2api" / "testing" / "openai_spec"

ANNOTATIONS = frozenset({"$comment", "description", "example", "examples", "title"})
ONE_SCHEMA = frozenset({"additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items",
                        "not", "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties"})
SCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
SCHEMA_MAP = frozenset({"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"})


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.2, which OpenAPI uses, has no timestamps: ``2024-10-01`` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


def clean(schema: Any) -> Any:
    """``schema`` without annotations, its ``nullable: true`` as ``anyOf: [.., {type: null}]``, all the way down."""
    if isinstance(schema, list):  # the pre-2020-12 tuple form of ``items``
        return [clean(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or key == "nullable" or key.startswith("x-"):
            continue
        if key in ONE_SCHEMA or key in SCHEMA_LIST:
            out[key] = clean(value)
        elif key in SCHEMA_MAP:
            out[key] = {name: clean(sub) for name, sub in value.items()}
        else:
            out[key] = value
    return {"anyOf": [out, {"type": "null"}]} if schema.get("nullable") is True else out


def render(document: dict[str, Any]) -> str:
    """The data file: the document's identity and its cleaned ``components.schemas``, one schema a line."""
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    info = {key: document["info"][key] for key in ("title", "version")}
    lines = [f"{dump(name)}:{dump(clean(schema))}" for name, schema in document["components"]["schemas"].items()]
    head = f'{{"openapi":{dump(document["openapi"])},"info":{dump(info)},"components":{{"schemas":{{\n'
    return head + ",\n".join(lines) + "\n}}}\n"


def expected(spec: Path) -> dict[str, bytes]:
    """The files ``TARGET`` should hold, by name."""
    document = yaml.load(spec.read_text(encoding="utf-8"), Loader=_Loader)
    return {"schemas.json": render(document).encode(), "LICENSE": (spec.parent / "LICENSE").read_bytes()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="OpenAI's openapi.yaml")
    parser.add_argument("--check", action="store_true", help="only report whether the committed copy is current")
    args = parser.parse_args(argv)
    files = expected(args.spec)
    if args.check:
        stale = [name for name, data in files.items()
                 if not (TARGET / name).is_file() or (TARGET / name).read_bytes() != data]
        if stale:
            print(f"stale: {', '.join(stale)} in {TARGET}; run scripts/update_openai_schemas.py", file=sys.stderr)
        return 1 if stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (TARGET / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
