"""Documentation that must not drift from the code."""

import inspect
import re
from pathlib import Path

from grok2api.config.settings import SECTIONS
from grok2api.plugin import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def hook_signatures() -> dict[str, str]:
    return {
        name: f"{name}{inspect.signature(fn)}".replace("'", "")
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("grok2api_")
    }


def test_every_hook_has_a_section_headed_by_its_signature() -> None:
    headings = set(re.findall(r"^## `(.+)`$", (ROOT / "docs" / "hooks.md").read_text(), re.M))
    missing = [sig for sig in hook_signatures().values() if sig not in headings]
    assert not missing, f"docs/hooks.md lacks a section for: {missing}"


def test_every_hook_has_a_docstring() -> None:
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("grok2api_"):
            assert (fn.__doc__ or "").strip(), name


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for section, model in SECTIONS.items():
        if section == "server":
            continue  # documented by their SERVER_* variables
        for key in model.model_fields:
            assert f"`{section}.{key}`" in readme, f"README lacks {section}.{key}"
