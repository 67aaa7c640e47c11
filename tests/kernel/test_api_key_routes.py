"""A route marked ``api_key_route`` authenticates by API key wherever it lives; no other route changes."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from grok2api import hookimpl
from grok2api.api import IDENTITY, api_key_route

STORE = "storage_local"
KEY = "sk-global-test-key-0123456789"


@api_key_route
async def keyed(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"kind": request[IDENTITY].kind})
        await socket.close()
        return socket
    return web.json_response({"kind": request[IDENTITY].kind})


class KeyedPlugin:
    plugin_name = "keyed"

    @hookimpl
    def grok2api_add_routes(self, app: web.Application) -> list[web.RouteDef]:
        return [web.get("/api/v1/admin/keyed", keyed)]


async def start(gateway: Any, make_settings: Any) -> Any:
    return await gateway(STORE, KeyedPlugin(), settings=make_settings(app={"api_key": KEY}))


async def test_the_marked_route_takes_a_key_by_header_or_query(gateway: Any, make_settings: Any) -> None:
    client = await start(gateway, make_settings)
    assert (await client.get("/api/v1/admin/keyed")).status == 401
    assert (await client.get("/api/v1/admin/keyed", params={"api_key": "sk-wrong"})).status == 401
    for ok in (await client.get("/api/v1/admin/keyed", params={"api_key": KEY}),
               await client.get("/api/v1/admin/keyed", headers={"Authorization": f"Bearer {KEY}"})):
        assert ok.status == 200 and await ok.json() == {"kind": "global"}
    login = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})
    session = (await login.json())["token"]
    refused = await client.get("/api/v1/admin/keyed", headers={"Authorization": f"Bearer {session}"})
    assert refused.status == 401 and (await refused.json())["error"]["code"] == "invalid_api_key"


async def test_other_admin_and_api_routes_keep_their_rules(gateway: Any, make_settings: Any) -> None:
    client = await start(gateway, make_settings)
    assert (await client.get("/api/v1/admin/plugins", params={"api_key": KEY})).status == 401
    assert (await client.get("/api/v1/admin/plugins", headers={"Authorization": f"Bearer {KEY}"})).status == 401
    assert (await client.get("/v1/models", params={"api_key": KEY})).status == 401  # the query opens only marked routes


async def test_a_refused_websocket_is_closed_with_1008(gateway: Any, make_settings: Any) -> None:
    client = await start(gateway, make_settings)
    socket = await client.ws_connect("/api/v1/admin/keyed?api_key=sk-wrong")
    message = await socket.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008
    assert message.extra == "Invalid API key"
    socket = await client.ws_connect(f"/api/v1/admin/keyed?api_key={KEY}")
    assert await socket.receive_json() == {"kind": "global"}
    await socket.close()
