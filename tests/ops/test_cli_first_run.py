"""The ``grok2api`` command as a new operator meets it: a quick ``--help`` in plain text,
quiet commands, clean ends of a closed pipe, keys and masks that read well, and start-up
lines that say what to do next."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from loguru import logger

from grok2api.cli.main import EXIT_BROKEN_PIPE, configured_disabled, main
from grok2api.cli.serve import _announce
from grok2api.config.settings import load_settings
from grok2api.keys.service import random_alphanumeric
from grok2api.logs.logger import mask_secret
from grok2api.web.appkeys import KEYS, POOL

#: what ``--help`` must not import: the web stack, the Grok client, the storage engines, the settings models
HEAVY = ("aiohttp", "curl_cffi", "sqlalchemy", "pydantic", "pydantic_settings", "redis", "asyncpg", "aiomysql")
REST_MARKUP = re.compile(r"``|:(func|class|meth|data|mod):`")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    env["DATA_DIR"] = str(data_dir)
    return env


def test_help_imports_nothing_heavy(data_dir: Path) -> None:
    script = (
        "import sys\n"
        "from grok2api.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    status = exc.code\n"
        "print('MODULES', __import__('json').dumps(sorted({m.split('.')[0] for m in sys.modules})), status)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=_env(data_dir), capture_output=True, text=True,
                         timeout=60, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("MODULES "))
    modules, status = json.loads(line.split(" ", 1)[1].rsplit(" ", 1)[0]), line.rsplit(" ", 1)[1]
    assert status == "0"
    assert sorted(set(HEAVY) & set(modules)) == []
    assert "serve" in out and "tokens" in out and "fake-upstream" in out


def test_help_texts_are_plain_text(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    names = re.findall(r"^    ([a-z][a-z-]+)\s", capsys.readouterr().out, re.MULTILINE)
    assert {"serve", "keys", "tokens", "storage"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        assert text.startswith("usage: ") and not REST_MARKUP.search(text), (name, text)


def test_a_closed_pipe_ends_the_command_quietly(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = [f"pipe-{i:05d}-abcdefghijklmnopqrstuvwxyz" for i in range(1500)]  # far more than a pipe buffers
    assert main(["tokens", "add", *tokens]) == 0
    capsys.readouterr()
    proc = subprocess.Popen([sys.executable, "-m", "grok2api", "tokens", "list", "--json"], env=_env(data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    status = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    assert json.loads(first)["token"].startswith("pipe")
    assert status == EXIT_BROKEN_PIPE and "Traceback" not in err and "BrokenPipe" not in err, err


def test_commands_are_quiet_unless_verbose(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list"]) == 0
    assert " INFO " not in capsys.readouterr().err
    assert main(["-v", "keys", "list"]) == 0
    assert re.search(r" INFO +storage: local", capsys.readouterr().err)


def test_generated_keys_are_letters_and_digits(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^key: sk-[A-Za-z0-9]{32}$", out, re.MULTILINE), out
    assert re.search(r"^created key-[A-Za-z0-9]{8} ", out, re.MULTILINE), out
    assert re.fullmatch(r"[A-Za-z0-9]{4000}", random_alphanumeric(4000))


def test_short_secrets_are_masked_apart() -> None:
    tokens = ["tok-basic-1", "tok-basic-2", "sso-a", "sso-b", "abcdefgh01", "abcdefgh02"]
    masks = [mask_secret(t) for t in tokens]
    assert len(set(masks)) == len(tokens), masks
    for token, masked in zip(tokens, masks, strict=True):
        assert masked.startswith("***") and len(masked) - 3 <= len(token) // 4
    assert mask_secret("abc") == "***"
    assert mask_secret("sk-0123456789abcdef") == "sk-0…cdef"


async def test_start_up_says_what_to_do_next(gateway, make_settings) -> None:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(f"{message.record['level'].name} {message.record['message']}"),
                      level="INFO")
    try:
        client = await gateway("storage_local")
        await _announce(client.app)
        first = "\n".join(lines)
        assert "no admin console is installed yet" in first and "/api/v1/admin/login" in first
        assert "WARNING the admin password is still the default 'admin'" in first
        assert "WARNING no API key exists" in first and "grok2api keys create" in first
        assert "WARNING the account pool is empty" in first and "grok2api tokens add" in first

        lines.clear()
        settings = make_settings(app={"app_key": "a-real-password"})
        client = await gateway("storage_local", settings=settings)
        await client.app[KEYS].create(name="ops")
        await client.app[POOL].add(["acct-ready-1"])
        await _announce(client.app)
        second = "\n".join(lines)
        assert "WARNING" not in second, second
        assert "1 Grok account(s) in the pool; add more with 'grok2api tokens add" in second
    finally:
        logger.remove(sink)


@pytest.mark.parametrize("source", ["none", "file", "list_env", "names_env", "both_env"])
def test_help_reads_disabled_plugins_as_the_settings_do(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                         source: str) -> None:
    if source == "file":
        (data_dir / "config.toml").write_text('[plugins]\ndisabled = ["metrics"]\n')
    if source in ("list_env", "both_env"):
        monkeypatch.setenv("GROK2API_PLUGINS__DISABLED", '["images", "metrics"]')
    if source in ("names_env", "both_env"):
        monkeypatch.setenv("GROK2API_DISABLE_PLUGINS", "images, chat")
    assert configured_disabled() == load_settings().plugins.disabled


def test_an_unreadable_config_leaves_the_help_listing_everything(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("[plugins\n")
    assert configured_disabled() == []
