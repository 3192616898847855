"""Slack: approval cards and reminders (`SlackChannel`), clicks, modals and `/signoff`
(`SlackApp`, on slack-bolt), paced per channel (`ChannelPacer`)."""

from adapters.slack.app import SlackApp
from adapters.slack.channel import SlackChannel, slack_client
from adapters.slack.pacer import ChannelPacer

__all__ = ["ChannelPacer", "SlackApp", "SlackChannel", "slack_client"]
