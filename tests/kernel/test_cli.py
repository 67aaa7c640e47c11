"""The `grok2api` command, run as operators run it: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    environ.update(DATA_DIR=str(data_dir), **env)
    return subprocess.run([sys.executable, "-m", "grok2api", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_plugins_lists_builtins_and_the_installed_example(data_dir: Path) -> None:
    out = run(data_dir, "plugins")
    assert out.returncode == 0, out.stderr
    names = {line.split()[0]: line for line in out.stdout.splitlines()}
    for builtin in ("chat", "storage_local", "storage_redis", "storage_pgsql", "storage_mysql", "hello"):
        assert builtin in names, out.stdout
    assert "enabled" in names["hello"] and "grok2api_register_models" in names["hello"]
    disabled = run(data_dir, "plugins", GROK2API_DISABLE_PLUGINS="hello")
    line = next(text for text in disabled.stdout.splitlines() if text.startswith("hello"))
    assert "disabled" in line


def test_config_show_masks_secrets(data_dir: Path) -> None:
    """The kernel's secrets and every field a plugin's section marks writeOnly."""
    (data_dir / "config.toml").write_text('[app]\napi_key = "sk-top-secret-value-42"\n'
                                          '[metrics]\ntoken = "metrics-scrape-secret-7"\n'
                                          '[[alerts.webhooks]]\nurl = "https://hooks.example/T000/B000/hook-secret-9"\n')
    out = run(data_dir, "config", "show", GROK2API_GROK__CF_CLEARANCE="cf-secret-clearance-99")
    assert out.returncode == 0, out.stderr
    for secret in ("sk-top-secret-value-42", "cf-secret-clearance-99", "metrics-scrape-secret-7", "hook-secret-9"):
        assert secret not in out.stdout
    assert '"timeout": 120' in out.stdout


def test_config_check_names_the_bad_key(data_dir: Path) -> None:
    assert run(data_dir, "config", "check").returncode == 0
    (data_dir / "config.toml").write_text("[token]\nfail_threshold = 0\n")
    out = run(data_dir, "config", "check")
    assert out.returncode == 2
    assert "token.fail_threshold" in out.stderr


def test_missing_storage_plugin_stops_start(data_dir: Path) -> None:
    out = run(data_dir, "config", "check", SERVER_STORAGE_TYPE="mongo")
    assert out.returncode == 2
    assert "'mongo'" in out.stderr and "local" in out.stderr
