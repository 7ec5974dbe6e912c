"""docker-compose.yml, deploy/Caddyfile and deploy/prometheus.yml agree on the bot instances
(docs/deploy.md: adding one means touching all three), and the compose file passes no empty
token on (an empty TELEGRAM_TOKEN is a token, and would start Telegram)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def instances(services: dict[str, Any]) -> list[str]:
    """The services that run `khuyenhoc run`: the bot image with its default command."""
    return sorted(
        name
        for name, svc in services.items()
        if svc.get("image") == "khuyenhoc-bot:latest" and "command" not in svc
    )


def test_the_proxy_and_prometheus_know_every_instance() -> None:
    services = compose()["services"]
    bots = instances(services)
    assert bots == ["bot1", "bot2"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert sorted(upstreams.group(1).split()) == [f"{b}:8080" for b in bots]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert sorted(targets) == [f"{b}:8080" for b in bots]
    assert services["proxy"]["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]


def test_instances_start_after_the_migrations_on_postgresql() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["khuyenhoc", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in instances(services):
        svc = services[name]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert "ports" not in svc  # reached through the proxy only


def test_optional_settings_are_passed_on_only_when_set() -> None:
    for name in instances(compose()["services"]):
        env = compose()["services"][name]["environment"]
        for key in ("TELEGRAM_TOKEN", "ZALO_TOKEN", "PUBLIC_URL"):
            assert env[key] is None, f"{name}: {key} must be passed on bare, not with an empty default"
