"""When Slack is on, and how Slack reaches Signoff: signed HTTP, Socket Mode, or both."""

from __future__ import annotations

import pytest

from bot.server.config import SlackConfig, SlackCredentials

BOT, SECRET, APP = "xoxb-1", "signing-secret-1", "xapp-1-A0-1-abc"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"SLACK_BOT_TOKEN": BOT}, None),  # it could post cards, but never hear a click
        ({"SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_TOKEN": APP}, None),
        ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": ""}, None),
        ({"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": SECRET}, SlackCredentials(BOT, SECRET)),
        ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP}, SlackCredentials(BOT, None, APP)),
        (
            {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_TOKEN": APP},
            SlackCredentials(BOT, SECRET, APP),
        ),
    ],
)
def test_slack_needs_the_bot_token_and_a_way_to_hear_from_slack(
    env: dict[str, str], expected: SlackCredentials | None
) -> None:
    assert SlackConfig().credentials(env) == expected


def test_the_variable_names_come_from_the_config() -> None:
    config = SlackConfig(bot_token_env="BOT", app_token_env="APP")
    assert config.credentials({"BOT": BOT, "APP": APP}) == SlackCredentials(BOT, None, APP)
    assert config.credentials({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP}) is None


def test_no_secret_shows_in_a_repr() -> None:
    shown = repr(SlackCredentials(BOT, SECRET, APP))
    assert BOT not in shown and SECRET not in shown and APP not in shown
