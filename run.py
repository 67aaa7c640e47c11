#!/usr/bin/env python3
"""Set up and run grok2api with nothing but Python 3.11+.

    python3 run.py          start the gateway (SQLite in ./data), same as `grok2api serve`
    python3 run.py test     run the whole test suite (extra arguments go to pytest)
    python3 run.py <cmd>    any other `grok2api` command, e.g. `python3 run.py tokens list`

The first run creates `.venv/` and installs the project into it; later runs reinstall
only when a pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_environment(with_tests: bool) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"grok2api needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    targets = [f"{ROOT}[test]" if with_tests else str(ROOT)]
    if with_tests:
        targets.append(str(ROOT / "examples" / "hello_plugin"))
    manifests = [ROOT / "pyproject.toml", ROOT / "examples" / "hello_plugin" / "pyproject.toml"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in manifests) + repr(targets).encode()).hexdigest()
    stamp = VENV / ".grok2api-installed"
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    installed = stamp.read_text().split() if stamp.exists() else []
    if digest in installed:
        return
    print("installing grok2api into .venv ...", flush=True)
    command = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for target in targets:
        command += ["-e", target]
    subprocess.run(command, check=True)
    stamp.write_text("\n".join([*installed, digest]))


def main(argv: list[str]) -> int:
    if argv[:1] == ["test"]:
        ensure_environment(with_tests=True)
        return subprocess.call([str(PYTHON), "-m", "pytest", *argv[1:]], cwd=ROOT)
    ensure_environment(with_tests=False)
    return subprocess.call([str(BIN / "grok2api"), *(argv or ["serve"])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
