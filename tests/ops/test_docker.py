"""The Docker image and compose file, checked without a Docker daemon (none runs on CI):
their structure, and that the wheel the image installs holds everything the gateway needs."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {"redis": "redis", "pgsql": "pgsql", "mysql": "mysql"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_each_profile_runs_one_gateway_pointed_at_its_engine(compose) -> None:
    services = compose["services"]
    gateways = {name: s for name, s in services.items() if name.startswith("grok2api")}
    assert {tuple(s["profiles"]) for s in gateways.values()} == {("local",), ("redis",), ("pgsql",), ("mysql",)}
    for service in gateways.values():
        (profile,) = service["profiles"]
        env = service["environment"]
        assert env["SERVER_STORAGE_TYPE"] == profile
        if profile == "local":
            assert "SERVER_STORAGE_URL" not in env
            continue
        engine = ENGINES[profile]
        assert services[engine]["profiles"] == [profile]
        assert f"@{engine}:" in env["SERVER_STORAGE_URL"]
        assert service["depends_on"][engine]["condition"] == "service_healthy"
    ports = {tuple(s["ports"]) for s in gateways.values()}
    assert len(ports) == 1  # one gateway at a time on the published port


def test_every_service_has_a_healthcheck_and_data_in_named_volumes(compose) -> None:
    named = set(compose["volumes"])
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in named, f"{name} keeps data in {source}, not a named volume"
        assert "ports" not in service or name.startswith("grok2api"), f"{name} publishes a port"


def test_env_example_sets_every_variable_the_compose_file_reads() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    given = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    assert used <= given, f".env.example lacks {sorted(used - given)}"
    assert "COMPOSE_PROFILES=local" in example


def test_the_image_is_multi_stage_non_root_with_a_healthcheck_and_a_version() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 2
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/health", dockerfile, re.M)
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
    assert re.search(r'^CMD \["grok2api", "serve"\]', dockerfile, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".venv-test", "data", "logs", ".env"} <= set(ignored)


def test_the_wheel_the_image_installs_holds_the_kernel_the_plugins_and_their_data(tmp_path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("grok2api-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("grok2api/api.py", "grok2api/web/app.py", "grok2api/cli/main.py",
                   "grok2api_plugins/chat/hooks.py", "grok2api_plugins/storage_local/hooks.py"):
        assert module in names, module
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "grok2api = grok2api.cli.main:main" in text and "chat = grok2api_plugins.chat.hooks" in text
    packages = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    on_disk = {str(p.parent.relative_to(ROOT)).replace("plugins", "grok2api_plugins", 1)
               for p in [*ROOT.glob("grok2api/**/__init__.py"), *ROOT.glob("plugins/**/__init__.py")]
               if "tests" not in p.parts}
    assert on_disk <= packages, f"packages missing from the wheel: {sorted(on_disk - packages)}"
