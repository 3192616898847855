"""Fail fast on missing secrets: what `signoff serve` and `signoff policy check` refuse.

Without these checks a missing secret starts silently and fails later, one delivery at a
time: an agent without its webhook secret retries every webhook for 24 hours; tiers that
name Slack channels run with Slack off. Each check names the environment variable to set
and the key path that asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.resume.spec import WebhookResume
from bot.core.errors import ConfigError
from bot.server.config import Settings


def _missing(env: Mapping[str, str], name: str) -> bool:
    return not env.get(name, "").strip()


def needs_slack(settings: Settings) -> bool:
    """Some tier posts to a Slack channel or lists a Slack reviewer."""
    return any(
        tier.slack_channel or any(r.startswith("slack:") for r in tier.reviewers)
        for tier in settings.tiers
    )


def needs_teams(settings: Settings) -> bool:
    """Some tier posts to a Teams conversation or lists a Teams reviewer."""
    return any(
        tier.teams_channel or any(r.startswith("teams:") for r in tier.reviewers)
        for tier in settings.tiers
    )


def check_secrets(settings: Settings, env: Mapping[str, str]) -> None:
    """Raise ConfigError naming the first environment variable the configuration needs and
    the environment lacks (unset or empty).

    Checked: every agent's `webhook_secret_env`; the Slack bot token and a way to hear
    from Slack (signing secret or app token) when tiers use Slack, unless
    `slack.enabled: false`; the Teams app id and password when tiers use Teams with
    `teams.auth: botframework`, unless `teams.enabled: false`; every `*_env` a resume
    target names.
    """
    for index, agent in enumerate(settings.agents or []):
        name = agent.webhook_secret_env
        if name and _missing(env, name):
            raise ConfigError(
                f"agents[{index}].webhook_secret_env",
                f"environment variable {name} is not set: agent {agent.id!r} signs its "
                "webhooks with it (a whsec_... secret)",
            )
        resume = agent.resume
        if resume is None or isinstance(resume, WebhookResume):
            continue
        for key, value in resume.model_dump().items():
            if key.endswith("_env") and isinstance(value, str) and _missing(env, value):
                raise ConfigError(
                    f"agents[{index}].resume.{key}",
                    f"environment variable {value} is not set: the {resume.kind} resume "
                    f"target of agent {agent.id!r} needs it",
                )
    slack = settings.slack
    if slack.enabled is True or (slack.enabled is None and needs_slack(settings)):
        why = "slack.enabled is true" if slack.enabled else "tiers name Slack channels or reviewers"
        if _missing(env, slack.bot_token_env):
            raise ConfigError(
                "slack.bot_token_env",
                f"environment variable {slack.bot_token_env} is not set ({why}; set "
                "slack.enabled: false to run without Slack)",
            )
        if _missing(env, slack.signing_secret_env) and _missing(env, slack.app_token_env):
            raise ConfigError(
                "slack.signing_secret_env",
                f"environment variable {slack.signing_secret_env} (or {slack.app_token_env} "
                f"for Socket Mode) is not set ({why}; set slack.enabled: false to run "
                "without Slack)",
            )
    teams = settings.teams
    wanted = teams.enabled is True or (teams.enabled is None and needs_teams(settings))
    if wanted and teams.auth == "botframework":
        why = "teams.enabled is true" if teams.enabled else "tiers name Teams channels or reviewers"
        for key, name in (
            ("teams.app_id_env", teams.app_id_env),
            ("teams.app_password_env", teams.app_password_env),
        ):
            if _missing(env, name):
                raise ConfigError(
                    key,
                    f"environment variable {name} is not set ({why}; set teams.enabled: "
                    "false to run without Teams)",
                )
