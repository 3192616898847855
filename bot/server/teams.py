"""Wiring for Microsoft Teams: build the channel from the config, serve `POST /api/messages`.

Kept out of `bot/app.py` so that the app builds without knowing botbuilder exists; every
botbuilder import stays in `adapters/teams/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from adapters.teams import PATH, TeamsBot, TeamsChannel, TeamsCredentials, messages_endpoint
from adapters.teams.endpoint import Endpoint
from bot.core.domain import ApprovalRequest
from bot.core.errors import ConfigError
from bot.core.ports import Channel
from bot.core.views import BatchView, CardView
from bot.server.config import LoadedConfig
from bot.server.services import Services


def teams_channel(
    config: LoadedConfig,
    env: Mapping[str, str] | None = None,
    *,
    openid_metadata_url: str | None = None,
) -> TeamsChannel | None:
    """The Teams channel when `teams:` is on (`enabled: true`, or its app id is set), else None.

    Credentials are read from the environment variables the config names. With
    `auth: botframework` (the default) the app id and password must be set. `auth: none`
    turns inbound token checks off and logs a warning. `openid_metadata_url` points token
    validation at other signing keys (tests serve their own); leave it unset in production.

    Raises ConfigError naming the missing setting (the tenant id is needed as soon as a
    tier sends its Teams reviewers direct messages).
    """
    source = os.environ if env is None else env
    teams = config.settings.teams
    if not teams.is_on(source):
        return None
    credentials = TeamsCredentials(
        app_id=source.get(teams.app_id_env, ""),
        app_password=source.get(teams.app_password_env, ""),
        tenant_id=source.get(teams.tenant_id_env) or None,
    )
    verify = teams.auth == "botframework"
    if verify and not credentials.app_id:
        raise ConfigError(
            "teams.app_id_env",
            f"{teams.app_id_env} is not set: Bot Framework authentication needs the bot's "
            "app id (or set teams.auth: none for local testing only)",
        )
    if verify and not credentials.app_password:
        raise ConfigError(
            "teams.app_password_env",
            f"{teams.app_password_env} is not set: the bot needs its client secret to post",
        )
    direct = [
        t.name
        for t in config.policy.tiers
        if t.notify != "channel" and any(r.startswith("teams:") for r in t.reviewers)
    ]
    if direct and not credentials.tenant_id:
        raise ConfigError(
            "teams.tenant_id_env",
            f"{teams.tenant_id_env} is not set: tier {direct[0]} sends Teams direct messages "
            "(notify: dm or both), and Teams opens a 1:1 chat only within a tenant",
        )
    return TeamsChannel.create(
        credentials,
        service_url=teams.service_url,
        verify=verify,
        openid_metadata_url=openid_metadata_url,
        alerts_channel=teams.alerts_channel,
        dashboard_url=f"{config.settings.public_url.rstrip('/')}/dashboard",
    )


def mount_teams(
    app: FastAPI,
    services: Services | None = None,
    channel: Channel | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Serve the Bot Framework's `POST /api/messages`; it answers 404 while Teams is off.

    `services` may be None when the app builds them in its lifespan: the bot is then made
    on the first request from `app.state.services`. `channel` defaults to the services'
    "teams" channel (the one the outbox posts through, so both share one adapter and one
    auth). `env` is accepted for symmetry with `teams_channel` and not read: everything
    taken from the environment already travels inside the channel. Mounting twice is
    harmless.
    """
    del env
    if any(getattr(route, "path", None) == PATH for route in app.router.routes):
        return
    made: dict[int, Endpoint | None] = {}

    def endpoint_for(current: Services) -> Endpoint | None:
        key = id(current)
        if key not in made:
            chosen = channel if channel is not None else current.channels.get("teams")
            made.clear()
            made[key] = (
                messages_endpoint(chosen, _bot(current))
                if isinstance(chosen, TeamsChannel)
                else None
            )
        return made[key]

    if services is not None:
        endpoint_for(services)

    async def teams_messages(request: Request) -> Response:
        current: Services | None = services or getattr(request.app.state, "services", None)
        endpoint = endpoint_for(current) if current is not None else None
        if endpoint is None:
            return JSONResponse(
                {"error": "not_found", "detail": "Microsoft Teams is not configured"},
                status_code=404,
            )
        return await endpoint(request)

    app.add_api_route(
        PATH, teams_messages, methods=["POST"], include_in_schema=False, name="teams_messages"
    )


def _bot(services: Services) -> TeamsBot:
    """The bot over the engine, drawing cards exactly as the outbox draws them."""
    policy = services.config.policy
    tiers = [t.name for t in policy.tiers]

    def view(request: ApprovalRequest, tier: str) -> CardView:
        # The tier comes from the clicked card's data; fall back to where the item sits.
        if tier not in tiers:
            tier = request.tier if request.tier in tiers else tiers[0]
        target = policy.tier(tier).teams_channel or tier
        return services.worker.view(request, tier, target)

    async def batch_view(batch_id: str) -> BatchView | None:
        batch = await services.repo.batch(batch_id)
        return await services.worker.batch_view(batch) if batch is not None else None

    return TeamsBot(services.engine, view, batch_view)
