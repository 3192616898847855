"""Wiring Slack into Signoff: the channel for the outbox, `POST /slack/events`, and the
Socket Mode connection.

Slack is on when the bot token named in the `slack:` config block is set together with a
way to hear from Slack (CONTRACT sections 2 and 3): the signing secret (Slack calls
`POST /slack/events`), the app token (Signoff connects out to Slack over Socket Mode, for
hosts without a public URL), or both. Otherwise nothing here does anything and
`POST /slack/events` answers 404.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from adapters.slack import (
    ChannelPacer,
    SlackApp,
    SlackChannel,
    SlackSocketMode,
    SlackUserGroups,
    slack_client,
)
from bot.core.domain import ApprovalRequest
from bot.core.groups import ReviewerGroups
from bot.core.ports import Channel
from bot.core.views import CardView, inbox_link
from bot.server.config import LoadedConfig, SlackCredentials
from bot.server.services import Services

log = logging.getLogger("signoff.slack")

EVENTS_PATH = "/slack/events"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def slack_channel(
    config: LoadedConfig,
    env: Mapping[str, str] | None = None,
    *,
    pacer: ChannelPacer | None = None,
) -> SlackChannel | None:
    """The Slack channel for the outbox, or None when the credentials are not set."""
    slack = config.settings.slack
    credentials = slack.credentials(_env(env))
    if credentials is None:
        return None
    return SlackChannel(
        slack_client(credentials.bot_token, slack.api_url),
        alerts_channel=slack.alerts_channel,
        pacer=pacer,
        dashboard_url=f"{config.settings.public_url.rstrip('/')}/dashboard",
    )


def reviewer_groups(config: LoadedConfig, channel: Channel | None) -> ReviewerGroups | None:
    """The Slack user groups (`slack:S…`) that tiers list as reviewers, read through the
    channel's client; None when Slack is off or no tier lists one."""
    if not isinstance(channel, SlackChannel):
        return None
    listed = [r for tier in config.policy.tiers for r in tier.reviewers]
    groups = ReviewerGroups(SlackUserGroups(channel.client), listed)
    return groups if groups.groups else None


class _SlackMount:
    """Builds the `SlackApp` once, when first needed: Slack's first HTTP request, or the
    Socket Mode start in the app's lifespan. It is kept in `app.state.slack`."""

    def __init__(
        self, app: FastAPI, channel: SlackChannel | None, env: Mapping[str, str] | None
    ) -> None:
        self._app = app
        self._channel = channel
        self._env = env
        self._tried = False

    def credentials(self, services: Services) -> SlackCredentials | None:
        return services.config.settings.slack.credentials(_env(self._env))

    def get(self, services: Services) -> SlackApp | None:
        if not self._tried:
            self._tried = True
            self._app.state.slack = self._build(services)
        slack: SlackApp | None = self._app.state.slack
        return slack

    def _build(self, services: Services) -> SlackApp | None:
        settings = services.config.settings
        credentials = self.credentials(services)
        if credentials is None:
            return None
        chosen = self._channel or services.channels.get("slack")
        client = (
            chosen.client
            if isinstance(chosen, SlackChannel)
            else slack_client(credentials.bot_token, settings.slack.api_url)
        )
        public_url = settings.public_url.rstrip("/")
        first_tier = services.config.policy.tiers[0].name

        def view(request: ApprovalRequest) -> CardView:
            return services.engine.views.view(request, request.tier or first_tier, "slack")

        slack = SlackApp(
            client=client,
            signing_secret=credentials.signing_secret,
            review=lambda: services.engine,
            inbox_url=lambda request_id: inbox_link(public_url, request_id),
            views=view,
        )
        if isinstance(chosen, SlackChannel):
            chosen.on_change = slack.card_changed
        services.stack.push_async_callback(slack.aclose)
        return slack


def mount_slack(
    app: FastAPI,
    services: Services | None = None,
    channel: SlackChannel | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Serve Slack's interactivity and slash command requests at `POST /slack/events`.

    `services` may be None when the app builds them in its lifespan: the Slack app is then
    made on first use from `app.state.services`. `channel` shares its Web API client;
    without it the services' "slack" channel is used, else a new client. The built
    `SlackApp` is kept in `app.state.slack` (None while Slack is off).
    """
    app.state.slack = None
    mount = _SlackMount(app, channel, env)
    app.state.slack_mount = mount
    if services is not None:
        mount.get(services)

    async def slack_events(request: Request) -> Response:
        current: Services | None = getattr(request.app.state, "services", None)
        latest: _SlackMount = request.app.state.slack_mount
        slack = latest.get(current) if current is not None else None
        if slack is None:
            return JSONResponse(
                {"error": "not_found", "detail": "Slack is not configured"}, status_code=404
            )
        return await slack.handle(request)

    app.add_api_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)


@asynccontextmanager
async def slack_socket_mode(app: FastAPI, services: Services) -> AsyncIterator[None]:
    """Hold a Socket Mode connection to Slack while the block runs, when the app token is
    set (and Slack is mounted); otherwise do nothing. The connection is kept in
    `app.state.slack_socket`."""
    app.state.slack_socket = None
    mount: _SlackMount | None = getattr(app.state, "slack_mount", None)
    credentials = mount.credentials(services) if mount is not None else None
    app_token = credentials.app_token if credentials is not None else None
    slack = mount.get(services) if mount is not None and app_token else None
    if slack is None or not app_token:
        yield
        return
    socket = SlackSocketMode(slack, app_token)
    await socket.start()
    app.state.slack_socket = socket
    try:
        yield
    finally:
        app.state.slack_socket = None
        await socket.aclose()
