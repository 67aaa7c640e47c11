"""run.py becomes the command it starts: a signal to its process id reaches the gateway, exit codes pass through.

Each test runs a copy of run.py in a temporary tree whose two environments are stand-ins
stamped as installed, so nothing is installed: the serving one's ``grok2api`` starts the real
gateway of this environment, its ``python`` fails loudly should run.py try to install; the
test one's ``ruff``, ``mypy`` and ``python`` record who ran them, where and how, the checks
pass and ``python`` exits like pytest finding no tests.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from contextlib import suppress
from pathlib import Path
from types import ModuleType

import pytest

from grok2api.testing.engines import free_port

ROOT = Path(__file__).resolve().parents[2]
NO_TESTS = 5  # pytest's exit code when it collected nothing

pytestmark = pytest.mark.skipif(os.name != "posix", reason="run.py hands over by exec only on POSIX")


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "examples" / "hello_plugin").mkdir(parents=True)
    (root / "run.py").write_bytes((ROOT / "run.py").read_bytes())
    for manifest in ("pyproject.toml", "examples/hello_plugin/pyproject.toml"):
        (root / manifest).write_text("# a stand-in\n")
    run = load(root / "run.py")
    script(run.SERVE.executable("python"), "echo 'run.py tried to install into .venv' >&2; exit 97")
    gateway = Path(sysconfig.get_path("scripts")) / "grok2api"  # this environment's, installed like any other
    script(run.SERVE.executable("grok2api"), f'exec {shlex.quote(str(gateway))} "$@"')
    for name, code in (("ruff", 0), ("mypy", 0), ("python", NO_TESTS)):
        record(run.TEST.executable(name), tmp_path / "ran", code)
    for environment in (run.SERVE, run.TEST):
        environment.stamp.write_text(environment.digest())
    return root


def record(path: Path, log: Path, code: int, output: str = "") -> None:
    """A stand-in that appends its name, process id, directory and arguments to ``log``."""
    line = f'echo "{path.name} $$ $(pwd -P) $*" >> {shlex.quote(str(log))}'
    script(path, f"{line}; printf %s {shlex.quote(output)}; exit {code}")


def ran(tmp_path: Path) -> list[tuple[str, int, Path, list[str]]]:
    runs = []
    for line in (tmp_path / "ran").read_text().splitlines():
        name, pid, cwd, *args = line.split()
        runs.append((name, int(pid), Path(cwd), args))
    return runs


def gateway_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    unreachable = "http://127.0.0.1:1"  # no account is loaded, so Grok is never called; if it were, loopback
    env.update(DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="WARNING", GROK2API_TOKEN__AUTO_REFRESH="false",
               GROK2API_GROK__BASE_URL=unreachable, GROK2API_GROK__ASSETS_URL=unreachable)
    return env


def healthy(port: int) -> bool:
    with suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
        return resp.status == 200
    return False


def test_the_test_command_checks_then_becomes_pytest_in_the_repository(tree: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.Popen([sys.executable, str(tree / "run.py"), "test", "-q", "-k", "probe"], cwd=elsewhere,
                            stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == NO_TESTS, err
    (ruff, _, ruff_cwd, ruff_args), (mypy, _, mypy_cwd, mypy_args), pytest_run = ran(tmp_path)
    assert (ruff, ruff_cwd, ruff_args, mypy, mypy_cwd, mypy_args) == ("ruff", tree.resolve(), ["check"], "mypy",
                                                                      tree.resolve(), [])
    assert pytest_run == ("python", proc.pid, tree.resolve(), ["-m", "pytest", "-q", "-k", "probe"])
    assert (tree / ".venv-test" / "mypy-path" / "grok2api_plugins").resolve() == (tree / "plugins").resolve()


def test_a_failing_check_ends_the_test_command_before_pytest(tree: Path, tmp_path: Path) -> None:
    error = 'grok2api/x.py:1: error: Name "y" is not defined  [name-defined]\n'
    record(load(tree / "run.py").TEST.executable("mypy"), tmp_path / "ran", 1, error)
    result = subprocess.run([sys.executable, str(tree / "run.py"), "test"], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout) == (1, error), result.stderr
    assert [name for name, *_ in ran(tmp_path)] == ["ruff", "mypy"]


def test_switching_commands_reinstalls_nothing(tree: Path, tmp_path: Path) -> None:
    stamps = {path: path.read_text() for path in tree.glob(".venv*/.run-py-installed")}
    for command in (["test"], ["--help"], ["test"]):
        result = subprocess.run([sys.executable, str(tree / "run.py"), *command], env=gateway_env(tmp_path),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == (NO_TESTS if command == ["test"] else 0), result.stderr
        assert "installing" not in result.stdout
    assert len(stamps) == 2 and stamps == {path: path.read_text() for path in stamps}


def test_a_signal_to_run_py_stops_the_gateway(tree: Path, tmp_path: Path) -> None:
    port = free_port()
    with (tmp_path / "gateway.log").open("w+") as log:
        proc = subprocess.Popen([sys.executable, str(tree / "run.py"), "serve", "--host", "127.0.0.1", "--port",
                                 str(port)], cwd=tree, env=gateway_env(tmp_path), stdout=log, stderr=log,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not healthy(port):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
                time.sleep(0.05)
            cmdline = Path(f"/proc/{proc.pid}/cmdline")
            if cmdline.exists():  # Linux shows it: the process run.py started is the gateway now
                assert b"run.py" not in cmdline.read_bytes()
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=20) == 0, (tmp_path / "gateway.log").read_text()
            with pytest.raises(ProcessLookupError):
                os.killpg(proc.pid, 0)  # nothing of its session is left running
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
