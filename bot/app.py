"""Wiring: build the services for a config and serve them as one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from adapters.resume import WebhookResumeTarget
from adapters.web.channel import WebInboxChannel
from bot import http
from bot.clock import SystemClock
from bot.config import LoadedConfig
from bot.engine import Engine
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from bot.ports import Channel, Clock, Repository, ResumeTarget
from bot.scheduler import Scheduler
from bot.services import Services, secret_lookup
from bot.waiters import Waiters
from bot.web_wiring import mount_web
from storage import open_repository

log = logging.getLogger("signoff")


async def build_services(
    config: LoadedConfig,
    *,
    repo: Repository | None = None,
    clock: Clock | None = None,
    resume: ResumeTarget | None = None,
    channels: Mapping[str, Channel] | None = None,
    env: Mapping[str, str] | None = None,
    start_scheduler: bool = True,
) -> Services:
    """Open storage, build engine, worker and scheduler; `Services.stack` closes them in order."""
    settings = config.settings
    clock = clock or SystemClock()
    metrics = Metrics()
    waiters = Waiters()
    owned_repo = repo is None
    if repo is None:
        repo = await open_repository(settings.database_url, migrate=True)
    resume_target: ResumeTarget
    owned_resume = resume is None
    resume_target = resume if resume is not None else WebhookResumeTarget()
    all_channels: dict[str, Channel] = {"web": WebInboxChannel()}
    all_channels.update(channels or {})
    scheduler_ref: list[Scheduler] = []

    def committed(request_id: str | None) -> None:
        waiters.notify(request_id)
        if scheduler_ref:
            scheduler_ref[0].kick(request_id)

    engine = Engine(
        repo,
        config.policy,
        settings.agent_specs(),
        clock,
        channels=frozenset(all_channels),
        metrics=metrics,
        on_commit=committed,
    )
    worker = OutboxWorker(
        repo,
        config.policy,
        clock,
        channels=all_channels,
        resume=resume_target,
        secrets=secret_lookup(config, env),
        metrics=metrics,
        public_url=settings.public_url,
    )
    scheduler = Scheduler(engine, worker)
    scheduler_ref.append(scheduler)
    services = Services(
        config=config,
        repo=repo,
        clock=clock,
        engine=engine,
        worker=worker,
        scheduler=scheduler,
        waiters=waiters,
        metrics=metrics,
        channels=all_channels,
        resume=resume_target,
    )
    if owned_repo:
        services.stack.push_async_callback(repo.close)
    if owned_resume and isinstance(resume_target, WebhookResumeTarget):
        services.stack.push_async_callback(resume_target.aclose)
    if start_scheduler:
        scheduler.start()
        services.stack.push_async_callback(scheduler.stop)
    return services


def create_app(
    config: LoadedConfig,
    *,
    services: Services | None = None,
    **build: Any,
) -> FastAPI:
    """The ASGI app. With `services` given, the caller owns their lifecycle (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        built = await build_services(config, **build)
        app.state.services = built
        async with built.stack:
            yield

    app = FastAPI(
        title="Signoff",
        version="0.1.0",
        description="Human approval for AI agents: routing by risk and confidence, tiered "
        "review in Slack, Teams and the web inbox, signed resume webhooks.",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    app.include_router(http.router)
    http.install_error_handlers(app)
    app.add_middleware(http.BodyLimit)
    mount_web(app, services)
    return app
