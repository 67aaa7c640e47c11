"""The served OpenAPI document matches the routes that exist."""

from __future__ import annotations

from grok2api_plugins.admin.openapi import SUMMARIES, admin_routes_of

from .support import Admin, auth, changed


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
    assert doc["paths"]["/api/v1/admin/tokens"]["get"]["x-original"] is True
    assert "security" not in doc["paths"]["/api/v1/admin/login"]["post"]
    assert doc["paths"]["/api/v1/admin/jobs/{job_id}"]["get"]["parameters"][0]["name"] == "job_id"
