"""The served OpenAPI document matches the routes that exist, describes each one's body and
answer, and real answers validate against the schemas it documents."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from grok2api.api import REQUEST_LOG
from grok2api_plugins.admin.openapi import SUMMARIES, admin_routes_of
from grok2api_plugins.admin.schemas import OPERATIONS

from .support import Admin, Client, auth, changed, login

TOKENS = [f"openapi-token-{n}-" + "o" * 24 for n in range(3)]


async def test_the_document_names_every_route_and_only_those(admin: Admin) -> None:
    client = await admin()
    token = await changed(client)
    resp = await client.get("/api/v1/admin/openapi.json", headers=auth(token))
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    served = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    routes = admin_routes_of(client.app)
    assert served == routes
    assert routes == set(SUMMARIES)  # every route of this plugin and the kernel is described, none is stale
    assert routes == set(OPERATIONS)  # and has its answer's schema (and its body's, if it takes one)
    assert doc["paths"]["/api/v1/admin/tokens"]["get"]["x-original"] is True
    assert "security" not in doc["paths"]["/api/v1/admin/login"]["post"]
    assert doc["paths"]["/api/v1/admin/jobs/{job_id}"]["get"]["parameters"][0]["name"] == "job_id"
    assert doc["paths"]["/api/v1/admin/tokens/import"]["post"]["requestBody"]["content"]["text/plain"]
    assert "requestBody" not in doc["paths"]["/api/v1/admin/metrics"]["get"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}, (method, path)
            bodies = [operation.get("requestBody", {}).get("content", {}), *(
                r.get("content", {}) for r in operation["responses"].values())]
            for content in bodies:
                for media in content.values():
                    Draft202012Validator.check_schema(media["schema"])  # each is a well-formed JSON Schema


class Checked:
    """Calls the gateway and validates each answer against the schema the document gives it."""

    def __init__(self, client: Client, doc: dict[str, Any], headers: dict[str, str]) -> None:
        self.client, self.doc, self.headers = client, doc, headers
        self.seen: set[tuple[str, str]] = set()

    async def __call__(self, method: str, path: str, route: str | None = None, *, status: int = 200,
                       body: Any = None, data: str | None = None) -> Any:
        resp = await self.client.request(method, path, json=body, data=data, headers=self.headers)
        assert resp.status == status, await resp.text()
        answer = await resp.json()
        route = route or path.split("?")[0]
        responses = self.doc["paths"][route][method.lower()]["responses"]
        schema = (responses.get(str(status)) or responses["default"])["content"]["application/json"]["schema"]
        Draft202012Validator({**schema, "components": self.doc["components"]}).validate(answer)
        self.seen.add((method, route))
        return answer


async def test_real_answers_validate_against_their_schemas(admin: Admin) -> None:
    client = await admin()
    session = await login(client)
    h = auth(session["token"])
    doc = await (await client.get("/api/v1/admin/openapi.json", headers=h)).json()
    check = Checked(client, doc, h)
    await check("POST", "/api/v1/admin/tokens/add", body={"tokens": TOKENS[:2], "note": "n", "tags": ["t"]})
    await check("POST", "/api/v1/admin/tokens/import", data="\n".join(f"sso={t}" for t in TOKENS))
    grouped = await check("GET", "/api/v1/admin/tokens")
    ids = [item["id"] for item in grouped["ssoBasic"]]
    page = await check("GET", "/api/v1/admin/tokens?page=1&page_size=2&status=active")
    await check("POST", "/api/v1/admin/tokens", body={"ssoBasic": [*TOKENS], "version": page["version"]})
    await check("GET", "/api/v1/admin/tokens/counts")
    await check("POST", "/api/v1/admin/tokens/update", body={"id": ids[0], "note": "edited"})
    await check("POST", "/api/v1/admin/tokens/disable", body={"ids": ids[:1]})
    await check("POST", "/api/v1/admin/tokens/enable", body={"ids": ids[:1]})
    job = (await check("POST", "/api/v1/admin/jobs", body={"kind": "disable", "ids": ids[1:2]}, status=202))["job"]
    await check("GET", f"/api/v1/admin/jobs/{job['id']}", "/api/v1/admin/jobs/{job_id}")
    await check("GET", "/api/v1/admin/jobs")
    created = await check("POST", "/api/v1/admin/keys", body={"name": "docs", "preset": "recommended"})
    await check("POST", "/api/v1/admin/keys/update", body={"key": created["data"]["id"], "is_active": False})
    await check("GET", "/api/v1/admin/keys")
    await check("POST", "/api/v1/admin/keys/delete", body={"key": created["data"]["id"]})
    client.app[REQUEST_LOG].record(method="POST", path="/v1/chat/completions", status=200, duration_ms=50,
                                   model="grok-3", key_name="global", first_byte_ms=20, prompt_tokens=3,
                                   completion_tokens=5)
    await client.app[REQUEST_LOG].flush()
    await check("GET", "/api/v1/admin/metrics")
    await check("GET", "/api/v1/admin/logs/requests")
    await check("GET", "/api/v1/admin/logs/files")
    for path in ("/api/v1/admin/config", "/api/v1/admin/config?detail=1", "/api/v1/admin/storage",
                 "/api/v1/admin/version", "/api/v1/admin/cache/local", "/api/v1/admin/cache/list?type=image",
                 "/api/v1/admin/session", "/api/v1/admin/sessions", "/api/v1/admin/plugins",
                 "/api/v1/admin/pages", "/api/v1/admin/openapi.json"):
        await check("GET", path)
    await check("POST", "/api/v1/admin/config", body={"grok": {"max_retry": 2}})
    await check("POST", "/api/v1/admin/config/reset", body={"keys": ["grok.max_retry"]})
    await check("POST", "/api/v1/admin/cache/clear", body={"type": "image"})
    await check("POST", "/api/v1/admin/cache/item/delete", body={"type": "video", "name": "none.mp4"})
    await check("POST", "/api/v1/admin/tokens/update", body={"id": ids[0], "quota": "many"}, status=400)
    await check("POST", "/api/v1/admin/tokens/refresh", body={}, status=400)
    await check("POST", "/api/v1/admin/keys/delete", body={"key": "sk-none"}, status=404)
    await check("GET", "/api/v1/admin/jobs/job-00000000", "/api/v1/admin/jobs/{job_id}", status=404)
    await check("POST", "/api/v1/admin/tokens/delete", body={"ids": ids})
    await check("POST", "/api/v1/admin/logout")
    assert len(check.seen) >= 30
