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


def hooks_doc() -> str:
    return (ROOT / "docs" / "hooks.md").read_text()


def test_every_hook_has_a_section_headed_by_its_signature() -> None:
    headings = set(re.findall(r"^## `(.+)`$", hooks_doc(), re.M))
    missing = [sig for sig in hook_signatures().values() if sig not in headings]
    assert not missing, f"docs/hooks.md lacks a section for: {missing}"


def metric_families() -> set[str]:
    """The Prometheus metrics, which share the prefix: the dashboard shows every one
    (``tests/ops/test_deploy.py`` checks it against what the metrics plugin exports)."""
    dashboard = (ROOT / "deploy" / "grafana" / "grok2api-dashboard.json").read_text()
    return {_family(name) for name in re.findall(r"\bgrok2api_[a-z_]+\b", dashboard)}


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", name)


def test_the_docs_name_no_hook_that_does_not_exist() -> None:
    metrics = metric_families()
    for page in (ROOT / "docs").glob("*.md"):
        named = {n for n in re.findall(r"\bgrok2api_[a-z_]+\b", page.read_text()) if _family(n) not in metrics}
        gone = sorted(named - set(hook_signatures()) - {"grok2api_session", "grok2api_plugins"})
        assert not gone, f"{page.name} names hooks that do not exist: {gone}"


def test_the_public_api_lists_what_it_exports() -> None:
    from grok2api import api

    exported = {name for name in vars(api) if name[0].isalpha()}  # not dunders, nor pytest's rewrite helpers
    assert set(api.__all__) - {"__version__"} == exported
    plugins_doc = (ROOT / "docs" / "plugins.md").read_text()
    missing = [name for name in api.__all__ if f"`{name}`" not in plugins_doc]
    assert not missing, f"docs/plugins.md does not list: {missing}"


def test_plugins_import_only_the_public_api() -> None:
    imports = re.compile(r"^\s*(?:from|import) (grok2api(?:\.[a-z_.]+)?)\b", re.M)
    allowed = ("grok2api", "grok2api.api", "grok2api.testing")
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]:
        for module in imports.findall(path.read_text()):
            assert module == "grok2api" or module.startswith(allowed[1:]), f"{path}: imports {module}"


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


def test_every_relative_link_in_the_docs_exists() -> None:
    """Links and pictures (the console's screenshots) between the docs and the README."""
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|<img src=\"([^\"]+)\"")
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for found in link.findall(page.read_text()):
            target = next(t for t in found if t)
            if "://" not in target and not target.startswith(("mailto:", "<")):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
