"""The kernel picks up a separately installed plugin through its entry point alone."""

from __future__ import annotations


async def test_installed_plugin_serves_its_model_through_its_filter(gateway) -> None:
    client = await gateway(entrypoints=True)
    models = [m["id"] for m in (await (await client.get("/v1/models")).json())["data"]]
    assert "hello-1" in models
    resp = await client.post("/v1/chat/completions",
                             json={"model": "hello-1", "messages": [{"role": "user", "content": "darn it"}]})
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "Hello! You said: d*rn it"


async def test_disabled_by_name_it_is_gone(gateway, make_settings) -> None:
    client = await gateway(entrypoints=True, settings=make_settings(plugins={"disabled": ["hello"]}))
    models = [m["id"] for m in (await (await client.get("/v1/models")).json())["data"]]
    assert "hello-1" not in models


def test_filter_holds_back_a_split_word() -> None:
    from hello_plugin.polite import PoliteStream

    stream = PoliteStream()
    out = stream.feed("oh da") + stream.feed("rn, da") + stream.flush()
    assert out == "oh d*rn, da"
