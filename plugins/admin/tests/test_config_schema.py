"""``GET /api/v1/admin/config?detail=1`` describes every key for the config page: type, accepted
values, bounds, description; a plugin's write-only field is a secret like the kernel's."""

from __future__ import annotations

from collections.abc import Callable

from grok2api.api import Settings
from grok2api.testing.pytest_plugin import GatewayFactory

from .support import PLUGINS, Admin, auth, body_of, changed


async def test_every_key_has_a_type_and_a_description(admin: Admin) -> None:
    client = await admin()
    h = auth(await changed(client))
    detail = await body_of(await client.get("/api/v1/admin/config?detail=1", headers=h))
    fields = detail["fields"]
    keys = {f"{section}.{key}" for section, table in detail["config"].items() for key in table}
    assert keys == set(fields)
    assert all(field["description"] for field in fields.values()), [k for k, f in fields.items()
                                                                    if not f["description"]]
    assert fields["grok.thinking"]["type"] == "boolean"
    assert fields["app.image_format"] == {**fields["app.image_format"], "type": "string",
                                          "choices": ["url", "base64", "b64_json"], "default": "url"}
    assert fields["grok.max_retry"]["type"] == "integer" and fields["grok.max_retry"]["minimum"] == 0
    assert fields["grok.timeout"]["type"] == "number" and fields["grok.timeout"]["exclusiveMinimum"] == 0
    codes = fields["grok.retry_status_codes"]
    assert codes["type"] == "array" and codes["items"] == "integer"
    assert fields["app.api_key"]["secret"] is True and "default" not in fields["app.api_key"]
    assert fields["admin.min_password_length"]["maximum"] == 128


async def test_a_plugin_write_only_field_is_never_shown(gateway: GatewayFactory,
                                                        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    client = await gateway(*PLUGINS, "metrics", "images", settings=settings)
    h = auth(await changed(client))
    resp = await client.post("/api/v1/admin/config", json={"metrics": {"token": "scrape-secret-0123456789"}}, headers=h)
    await body_of(resp)
    detail = await body_of(await client.get("/api/v1/admin/config?detail=1", headers=h))
    assert detail["config"]["metrics"]["token"] == "***" and "scrape-secret" not in str(detail)
    assert detail["fields"]["metrics.token"]["secret"] is True and "metrics.token" in detail["secrets"]
    assert detail["fields"]["grok.image_generation_method"]["choices"] == ["imagine_ws_experimental", "legacy"]
    again = await body_of(await client.post("/api/v1/admin/config", json={"metrics": {"token": "***"}}, headers=h))
    assert again["changed"] == []  # the redacted value posted back changes nothing
