#!/usr/bin/env python3
"""Set up and run grok2api with nothing but Python 3.11+.

    python3 run.py          start the gateway (SQLite in ./data), same as `grok2api serve`
    python3 run.py test     ruff, mypy, then the whole test suite (extra arguments go to pytest)
    python3 run.py <cmd>    any other `grok2api` command, e.g. `python3 run.py tokens list`

The gateway and its commands run from `.venv/`, which holds grok2api alone; the tests run
from `.venv-test/`, which adds the test extras and the example plugin (served, it would
add its model to the gateway). Each is created on first use and reinstalled only when
what goes into it changed, so switching between the commands reinstalls nothing. run.py
then becomes the command (exec): a signal sent to its process id reaches the gateway or
pytest, and their exit code is its own. Windows has no exec; there it waits on a child.
Before pytest, the test command runs ruff and mypy; the first that fails ends it with
its output and exit code.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
HELLO = ROOT / "examples" / "hello_plugin"


@dataclass(frozen=True)
class Environment:
    """A virtual environment run.py owns: where it is and what it installs into it (editable)."""

    path: Path
    targets: tuple[str, ...]
    manifests: tuple[Path, ...]

    @property
    def stamp(self) -> Path:
        return self.path / ".run-py-installed"

    def executable(self, name: str) -> Path:
        if os.name == "nt":
            return self.path / "Scripts" / f"{name}.exe"
        return self.path / "bin" / name

    def digest(self) -> str:
        """What the stamp records: the targets and their manifests, so a change to either reinstalls."""
        content = b"".join(path.read_bytes() for path in self.manifests) + repr(self.targets).encode()
        return hashlib.sha256(content).hexdigest()

    def ensure(self) -> None:
        digest = self.digest()
        if self.stamp.is_file() and self.stamp.read_text().strip() == digest:
            return
        if not self.stamp.is_file():
            # new, half-built, or left by an older run.py that served and tested from one environment
            print(f"creating {self.path.name} ...", flush=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(self.path)
        print(f"installing grok2api into {self.path.name} ...", flush=True)
        command = [str(self.executable("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        for target in self.targets:
            command += ["-e", target]
        subprocess.run(command, check=True)
        self.stamp.write_text(digest)


SERVE = Environment(ROOT / ".venv", (str(ROOT),), (ROOT / "pyproject.toml",))
TEST = Environment(ROOT / ".venv-test", (f"{ROOT}[test]", str(HELLO)),
                   (ROOT / "pyproject.toml", HELLO / "pyproject.toml"))


CHECKS = (("ruff", "check"), ("mypy",))


def link_plugins() -> None:
    """Give mypy the name grok2api_plugins for plugins/ (``mypy_path`` in pyproject.toml):
    mypy cannot follow the import hook by which the editable install maps that name."""
    link = TEST.path / "mypy-path" / "grok2api_plugins"
    if link.is_symlink():
        return
    link.parent.mkdir(exist_ok=True)
    try:
        link.symlink_to(Path("..", "..", "plugins"), target_is_directory=True)
    except OSError as exc:
        sys.exit(f"mypy needs {link} to link to plugins/ ({exc}); on Windows, allow symbolic links (Developer Mode)")


def check() -> int:
    """Lint and type-check the tree: the exit code of the first check that fails, else 0."""
    link_plugins()
    for name, *args in CHECKS:
        code = subprocess.call([str(TEST.executable(name)), *args], cwd=ROOT)
        if code:
            return code
    return 0


def hand_over(command: list[str], cwd: Path | None = None) -> int:
    """Become ``command``, so nothing is left running when this process id is signalled."""
    if os.name == "nt":
        return subprocess.call(command, cwd=cwd)
    if cwd is not None:
        os.chdir(cwd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - any python3 may start run.py
        sys.exit(f"grok2api needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if argv[:1] == ["test"]:
        TEST.ensure()
        return check() or hand_over([str(TEST.executable("python")), "-m", "pytest", *argv[1:]], cwd=ROOT)
    SERVE.ensure()
    return hand_over([str(SERVE.executable("grok2api")), *(argv or ["serve"])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
