"""The OpenAI schemas the suite validates against: in the repository, whole, and current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from grok2api.testing.openai_schema import SCHEMAS_PATH, validate

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "spec" / "openai" / "openapi.yaml"


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*map(refs, node.values()))
    if isinstance(node, list):
        return set().union(*map(refs, node))
    return set()


def test_the_schemas_and_their_license_live_in_the_package() -> None:
    assert SCHEMAS_PATH.is_relative_to(ROOT / "grok2api")
    assert "MIT License" in SCHEMAS_PATH.with_name("LICENSE").read_text()


def test_every_reference_resolves_within_the_copy() -> None:
    schemas = orjson.loads(SCHEMAS_PATH.read_bytes())["components"]["schemas"]
    dangling = {ref for ref in refs(schemas) if ref.removeprefix("#/components/schemas/") not in schemas}
    assert not dangling


def test_nullable_fields_take_null_and_nothing_else() -> None:
    validate("ErrorResponse", {"error": {"message": "m", "type": "t", "param": None, "code": None}})
    with pytest.raises(jsonschema.ValidationError):
        validate("ErrorResponse", {"error": {"message": "m", "type": "t", "param": None, "code": 7}})


def test_unknown_schemas_are_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="NoSuchSchema"):
        validate("NoSuchSchema", {})


@pytest.mark.skipif(not SPEC.is_file(), reason=f"OpenAI's OpenAPI document is not at {SPEC}")
def test_the_copy_matches_openais_document() -> None:
    check = [sys.executable, str(ROOT / "scripts" / "update_openai_schemas.py"), "--check", str(SPEC)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
