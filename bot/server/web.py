"""Wiring for the web inbox: build it from the services and mount it on the FastAPI app."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from adapters.web.inbox import (
    BUILTIN_LOGIN,
    STATIC_DIR,
    WebInbox,
    WebLogin,
    WebSettings,
    web_router,
)
from adapters.web.legal import legal_router
from adapters.web.oidc import CALLBACK_PATH, OidcSettings
from bot.core.audit_chain import AuditKeyring
from bot.core.domain import OutboxMessage
from bot.server.config import Settings
from bot.server.services import Services

log = logging.getLogger("signoff.web")

SESSION_SECRET_ENV = "SIGNOFF_SESSION_SECRET"


def web_inbox(services: Services, env: Mapping[str, str] | None = None) -> WebInbox:
    """The process's one WebInbox, made on first use and kept in `services.web_inbox`.

    `issue_login_link` runs before the app exists and `mount_web` after, so both must see
    the same one-time tokens and session secret.
    """
    if services.web_inbox is not None:
        return services.web_inbox
    source = os.environ if env is None else env
    settings = services.config.settings
    configured = source.get(SESSION_SECRET_ENV, "")
    if configured and len(configured) < 16:
        log.warning("%s is shorter than 16 characters; using a random secret", SESSION_SECRET_ENV)
        configured = ""
    # Without a configured secret, sessions last as long as this process.
    secret = configured.encode("utf-8") if configured else secrets.token_bytes(32)

    async def requeue(message: OutboxMessage, actor: str) -> OutboxMessage | None:
        return await services.requeue_delivery(message, actor=actor)

    inbox = WebInbox(
        review=services.engine,
        wording=services.engine.wording,
        repo=services.repo,
        clock=services.clock,
        policy=services.config.policy,
        settings=WebSettings(
            reviewers={
                name: WebLogin(entry.password_hash, entry.name or name)
                for name, entry in settings.web.reviewers.items()
            },
            session_secret=secret,
            oidc=oidc_settings(settings, source),
            session_max_age=settings.web.session_ttl,
            public_url=settings.public_url,
            agents=tuple(services.engine.agents),
            thresholds=settings.oversight.thresholds(),
            batch_min_items=settings.batch.min_items,
            batch_max_items=settings.batch.max_items,
            hourly_cost=settings.oversight.hourly_cost,
            likely_at=settings.prediction.likely_at,
            audit_keyring=audit_keyring(services),
        ),
        requeue=requeue,
    )
    services.web_inbox = inbox
    return inbox


def oidc_settings(settings: Settings, env: Mapping[str, str]) -> OidcSettings | None:
    """`web.oidc` with its client secret from the environment (config loading has checked
    that the variable is set); the provider sends browsers back to `public_url`."""
    oidc = settings.web.oidc
    if oidc is None:
        return None
    return OidcSettings(
        issuer=oidc.issuer,
        client_id=oidc.client_id,
        client_secret=env.get(oidc.client_secret_env) if oidc.client_secret_env else None,
        scopes=tuple(oidc.scopes),
        identity_claim=oidc.identity_claim,
        redirect_uri=settings.public_url.rstrip("/") + CALLBACK_PATH,
    )


def mount_web(
    app: FastAPI, services: Services | None = None, env: Mapping[str, str] | None = None
) -> None:
    """Serve the inbox pages and their static files from `app`.

    Without `services`, each request finds them in `app.state.services` (set by the app's
    lifespan), so `create_app` can mount the inbox before the services exist.
    """
    if services is not None:
        web_inbox(services, env)

    def resolve(request: Request) -> WebInbox:
        current: Services = services if services is not None else request.app.state.services
        return web_inbox(current, env)

    app.include_router(web_router(resolve))
    app.include_router(legal_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


async def issue_login_link(services: Services, login: str | None = None) -> str:
    """A one-time sign-in link for `login` (default: the built-in `admin`), stored in the
    database so whichever replica the browser reaches redeems it.

    Raises ValueError when `login` may not sign in with a link (not a web reviewer of this
    config, or `web.oidc` alone signs people in).
    """
    inbox = web_inbox(services)
    return await inbox.issue_login_link(login or BUILTIN_LOGIN)


def audit_keyring(services: Services) -> AuditKeyring | None:
    """The keys the audit page checks links with: those the services were built with, else
    the repository's own."""
    keyring: AuditKeyring | None = services.audit.keys.keyring
    return keyring
