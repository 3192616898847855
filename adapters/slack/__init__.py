"""Slack: approval cards and reminders (`SlackChannel`), clicks, modals, `/signoff` and
the App Home (`SlackApp`, on slack-bolt, over HTTP or `SlackSocketMode`), paced per
channel (`ChannelPacer`); user group members (`SlackUserGroups`)."""

from adapters.slack.app import SlackApp
from adapters.slack.channel import SlackChannel, slack_client
from adapters.slack.groups import SlackUserGroups
from adapters.slack.pacer import ChannelPacer
from adapters.slack.socket_mode import SlackSocketMode

__all__ = [
    "ChannelPacer",
    "SlackApp",
    "SlackChannel",
    "SlackSocketMode",
    "SlackUserGroups",
    "slack_client",
]
