"""Wiring Slack into Signoff: the channel for the outbox and `POST /slack/events`.

Slack is on when both the bot token and the signing secret named in the `slack:` config
block are set in the environment (CONTRACT sections 2 and 3); otherwise nothing here does
anything and `POST /slack/events` answers 404.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from adapters.slack import ChannelPacer, SlackApp, SlackChannel, slack_client
from bot.config import LoadedConfig
from bot.services import Services

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
    token, _secret = credentials
    return SlackChannel(
        slack_client(token, slack.api_url),
        alerts_channel=slack.alerts_channel,
        pacer=pacer,
        dashboard_url=f"{config.settings.public_url.rstrip('/')}/dashboard",
    )


def mount_slack(
    app: FastAPI,
    services: Services | None = None,
    channel: SlackChannel | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Serve Slack's interactivity and slash command requests at `POST /slack/events`.

    `services` may be None when the app builds them in its lifespan: the Slack app is then
    made on the first request from `app.state.services`. `channel` shares its Web API
    client; without it the services' "slack" channel is used, else a new client. The
    built `SlackApp` is kept in `app.state.slack` (None while Slack is off).
    """
    app.state.slack = None

    def build(current: Services) -> SlackApp | None:
        settings = current.config.settings
        credentials = settings.slack.credentials(_env(env))
        if credentials is None:
            return None
        token, secret = credentials
        chosen = channel or current.channels.get("slack")
        client = (
            chosen.client
            if isinstance(chosen, SlackChannel)
            else slack_client(token, settings.slack.api_url)
        )
        public_url = settings.public_url.rstrip("/")
        slack = SlackApp(
            client=client,
            signing_secret=secret,
            review=lambda: current.engine,
            inbox_url=lambda request_id: f"{public_url}/requests/{request_id}",
        )
        current.stack.push_async_callback(slack.aclose)
        app.state.slack = slack
        return slack

    tried = services is not None
    if services is not None:
        build(services)

    async def slack_events(request: Request) -> Response:
        nonlocal tried
        current: Services | None = getattr(request.app.state, "services", None)
        if not tried and current is not None:
            tried = True
            build(current)
        slack: SlackApp | None = request.app.state.slack
        if slack is None:
            return JSONResponse(
                {"error": "not_found", "detail": "Slack is not configured"}, status_code=404
            )
        return await slack.handle(request)

    app.add_api_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)
