"""manifest.yaml is a valid Slack app manifest that points Slack at Signoff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT.parent / "shared" / "reference" / "slack-manifest.schema.json"


@pytest.fixture
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    return data


def test_it_validates_against_slacks_manifest_schema(manifest: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA} is not here")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(json.loads(json.dumps(manifest)))


def test_it_asks_for_what_signoff_uses_and_points_at_slack_events(
    manifest: dict[str, Any],
) -> None:
    assert manifest["display_information"]["name"] == "Signoff"
    assert manifest["features"]["bot_user"]["display_name"] == "Signoff"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write",
        "chat:write.public",
        "commands",
        "users:read",
    }
    settings = manifest["settings"]
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://YOUR_PUBLIC_URL/slack/events",
    }
    assert settings["org_deploy_enabled"] is False and settings["socket_mode_enabled"] is False
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/signoff"
    assert command["url"] == "https://YOUR_PUBLIC_URL/slack/events"
