"""``deploy/``: the Grafana dashboard and the Prometheus alert rules name only metrics the
metrics plugin exports, and the dashboard shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bgrok2api_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",)}


async def exported(gateway: Any) -> dict[str, set[str]]:
    """Each family the plugin exports, with the sample names a query may use (the text
    format lists a counter's ``_created`` samples as a gauge family of their own)."""
    client = await gateway("storage_local", "chat", "metrics")
    login = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})
    token = (await login.json())["token"]
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    return {f.name: {f.name + s for s in SUFFIXES[f.type]}
            for f in text_string_to_metric_families(await resp.text())
            if f.name.startswith("grok2api_") and not f.name.endswith("_created")}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "grok2api-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


async def test_the_dashboard_and_alerts_use_only_exported_metrics(gateway: Any) -> None:
    families = await exported(gateway)
    known = set().union(*families.values())
    used_by_dashboard = {n for expr in dashboard_exprs() for n in NAME.findall(expr)}
    used_by_alerts = {n for rule in alert_rules() for n in NAME.findall(rule["expr"])}
    assert sorted(used_by_dashboard - known) == [] and sorted(used_by_alerts - known) == []
    shown = {family for family, names in families.items() if names & used_by_dashboard}
    assert sorted(set(families) - shown) == []  # every exported metric has a panel


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"] in {"critical", "warning"}, rule
        assert rule["annotations"]["summary"], rule
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
