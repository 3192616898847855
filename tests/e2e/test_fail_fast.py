"""`signoff serve` and `signoff policy check` refuse to start without the secrets the
configuration needs, naming the environment variable (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serve import run, serve

DIGEST = "0" * 64
WEB_TIERS = [{"name": "junior", "sla": "15m", "reviewers": ["web:jan"]}]
SLACK_TIERS = [
    {"name": "junior", "sla": "15m", "reviewers": ["web:jan"]},
    {"name": "senior", "sla": "1h", "reviewers": ["slack:U0CCC"]},
]
TEAMS_TIERS = [{"name": "junior", "sla": "15m", "teams_channel": "19:abc@thread.tacv2"}]
HOOK = {
    "id": "invoice-bot",
    "key_sha256": DIGEST,
    "callback_url": "http://127.0.0.1:9/resume",
    "webhook_secret_env": "INVOICE_BOT_WEBHOOK_SECRET",
}
RESTATE = {
    "id": "restate-bot",
    "key_sha256": DIGEST.replace("0", "1"),
    "resume": {
        "kind": "restate",
        "ingress": "http://127.0.0.1:9",
        "auth_token_env": "RESTATE_TOKEN",
    },
}
SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret"}
TEAMS_ENV = {"TEAMS_APP_ID": "app-id", "TEAMS_APP_PASSWORD": "pw"}


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "signoff.yaml"
    path.write_text(json.dumps({"database_url": f"sqlite:///{tmp_path / 'x.db'}", **config}))
    return path


CASES: list[tuple[str, dict[str, Any], dict[str, str], str, str]] = [
    (
        "webhook secret unset",
        {"agents": [HOOK], "tiers": WEB_TIERS},
        {},
        "agents[0].webhook_secret_env",
        "INVOICE_BOT_WEBHOOK_SECRET",
    ),
    (
        "webhook secret empty",
        {"agents": [HOOK], "tiers": WEB_TIERS},
        {"INVOICE_BOT_WEBHOOK_SECRET": ""},
        "agents[0].webhook_secret_env",
        "INVOICE_BOT_WEBHOOK_SECRET",
    ),
    (
        "slack reviewers without a token",
        {"tiers": SLACK_TIERS},
        {"SLACK_SIGNING_SECRET": "s3cret"},
        "slack.bot_token_env",
        "SLACK_BOT_TOKEN",
    ),
    (
        "slack channel without a signing secret",
        {"tiers": [{"name": "junior", "sla": "15m", "slack_channel": "C0JUNIOR"}]},
        {"SLACK_BOT_TOKEN": "xoxb-1"},
        "slack.signing_secret_env",
        "SLACK_SIGNING_SECRET",
    ),
    (
        "teams channel without the app password",
        {"tiers": TEAMS_TIERS},
        {"TEAMS_APP_ID": "app-id"},
        "teams.app_password_env",
        "TEAMS_APP_PASSWORD",
    ),
    (
        "teams channel without the app id",
        {"tiers": TEAMS_TIERS},
        {},
        "teams.app_id_env",
        "TEAMS_APP_ID",
    ),
    (
        "resume target token unset",
        {"agents": [RESTATE], "tiers": WEB_TIERS},
        {},
        "agents[0].resume.auth_token_env",
        "RESTATE_TOKEN",
    ),
]


@pytest.mark.parametrize(
    ("config", "env", "path", "variable"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_missing_secrets_exit_2_naming_the_variable(
    tmp_path: Path, config: dict[str, Any], env: dict[str, str], path: str, variable: str
) -> None:
    # Only what the case gives: no credential of the calling shell leaks in.
    cleared = {name: "" for name in (*SLACK_ENV, *TEAMS_ENV, "SLACK_APP_TOKEN")}
    file = write(tmp_path, config)
    served = run(
        "serve", "--config", str(file), "--port", "1", cwd=tmp_path, env={**cleared, **env}
    )
    assert served.returncode == 2, served.stderr
    assert path in served.stderr and variable in served.stderr
    assert not (tmp_path / "x.db").exists()
    checked = run("policy", "check", str(file), cwd=tmp_path, env={**cleared, **env})
    assert checked.returncode == 2, checked.stdout
    assert path in checked.stderr and variable in checked.stderr


def test_the_same_configs_start_once_the_secrets_are_set(tmp_path: Path) -> None:
    config = {
        "agents": [HOOK, RESTATE],
        "tiers": [*SLACK_TIERS, {"name": "manager", "sla": "4h", "teams_channel": "19:x"}],
        "teams": {"auth": "botframework"},
    }
    env = {
        **SLACK_ENV,
        **TEAMS_ENV,
        "INVOICE_BOT_WEBHOOK_SECRET": "whsec_c2VjcmV0",
        "RESTATE_TOKEN": "t",
    }
    checked = run("policy", "check", str(write(tmp_path, config)), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr


def test_disabled_platforms_need_no_credentials(tmp_path: Path) -> None:
    config = {
        "tiers": [*SLACK_TIERS, {"name": "manager", "sla": "4h", "teams_channel": "19:x"}],
        "slack": {"enabled": False},
        "teams": {"enabled": False},
    }
    with serve(tmp_path, config=write(tmp_path, config), env=SLACK_ENV) as server:
        # Slack stays off even though its credentials are in the environment.
        assert server.line_matching(r"channels: (.*)").group(1) == "web"


def test_teams_without_bot_framework_auth_needs_no_credentials(tmp_path: Path) -> None:
    config = {"tiers": TEAMS_TIERS, "teams": {"enabled": True, "auth": "none"}}
    checked = run("policy", "check", str(write(tmp_path, config)), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
