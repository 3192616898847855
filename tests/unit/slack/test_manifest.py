"""manifest.yaml (HTTP) and manifest.socket-mode.yaml are valid Slack app manifests for the
same app: the same scopes, command and cards, reached over HTTPS or over Socket Mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT.parent / "shared" / "reference" / "slack-manifest.schema.json"
MANIFESTS = ["manifest.yaml", "manifest.socket-mode.yaml"]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def manifest() -> dict[str, Any]:
    return load("manifest.yaml")


@pytest.mark.parametrize("name", MANIFESTS)
def test_it_validates_against_slacks_manifest_schema(name: str) -> None:
    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA} is not here")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(json.loads(json.dumps(load(name))))


def test_it_asks_for_what_signoff_uses_and_points_at_slack_events(
    manifest: dict[str, Any],
) -> None:
    assert manifest["display_information"]["name"] == "Signoff"
    assert manifest["features"]["bot_user"]["display_name"] == "Signoff"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write",
        "chat:write.public",
        "commands",
        "usergroups:read",  # who is in a `slack:S…` reviewer group
    }
    # The App Home tab "Waiting for you", drawn when a reviewer opens it; the Messages tab
    # holds the direct messages of `notify: dm` tiers.
    assert manifest["features"]["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": True,
    }
    settings = manifest["settings"]
    assert settings["event_subscriptions"] == {
        "request_url": "https://YOUR-HOST/slack/events",
        "bot_events": ["app_home_opened"],
    }
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://YOUR-HOST/slack/events",
    }
    assert settings["org_deploy_enabled"] is False and settings["socket_mode_enabled"] is False
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/signoff"
    assert command["url"] == "https://YOUR-HOST/slack/events"


def test_the_socket_mode_manifest_is_the_same_app_without_urls(
    manifest: dict[str, Any],
) -> None:
    socket = load("manifest.socket-mode.yaml")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert socket["settings"]["interactivity"] == {"is_enabled": True}
    assert socket["settings"]["event_subscriptions"] == {"bot_events": ["app_home_opened"]}
    assert socket["features"]["app_home"] == manifest["features"]["app_home"]
    [command] = socket["features"]["slash_commands"]
    assert "url" not in command
    http_command = dict(manifest["features"]["slash_commands"][0])
    del http_command["url"]
    assert command == http_command
    for key in ("display_information", "oauth_config", "_metadata"):
        assert socket[key] == manifest[key]
    assert socket["features"]["bot_user"] == manifest["features"]["bot_user"]
    assert "YOUR-HOST" not in (ROOT / "manifest.socket-mode.yaml").read_text()
