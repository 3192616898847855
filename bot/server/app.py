"""Wiring: build the services for a config and serve them as one FastAPI app."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from adapters.resume import PerAgentResumeTarget
from adapters.slack import SlackChannel
from adapters.teams import TeamsChannel
from adapters.web.channel import WebInboxChannel
from bot.core.audit_chain import AuditKey, AuditKeyring
from bot.core.clock import SystemClock
from bot.core.errors import ConfigError
from bot.core.groups import REFRESH_SECONDS as GROUPS_REFRESH_SECONDS
from bot.core.ports import AlertSink, Channel, Clock, Notifier, Repository, ResumeTarget
from bot.engine.batches import BatchPlanner
from bot.engine.machine import Engine
from bot.engine.metrics import Metrics
from bot.engine.outbox import LEASE, OutboxWorker
from bot.engine.queue_cards import QueuePlanner
from bot.engine.scheduler import PeriodicJob, Scheduler
from bot.engine.waiters import Waiters
from bot.oversight.cost import CostGauges, cost_figures
from bot.oversight.predict import ActiveModel
from bot.oversight.watch import Watch, gather
from bot.server import http
from bot.server.audit_wiring import AuditKeys, AuditWiring, checkpoint_writer, load_audit_keys
from bot.server.config import LoadedConfig
from bot.server.request_ids import RequestIdFromPath
from bot.server.services import Services, secret_lookup
from bot.server.slack import mount_slack, reviewer_groups, slack_channel, slack_socket_mode
from bot.server.teams import mount_teams, teams_channel
from bot.server.web import mount_web
from storage import InMemoryNotifier, notifier_for, open_repository

log = logging.getLogger("signoff")


MODEL_REFRESH_SECONDS = 60.0

TIMING_ENV = {
    "outbox_interval": "SIGNOFF_OUTBOX_INTERVAL",
    "sweep_interval": "SIGNOFF_SWEEP_INTERVAL",
    "outbox_lease": "SIGNOFF_OUTBOX_LEASE",
    "wait_poll_interval": "SIGNOFF_WAIT_POLL_INTERVAL",
    "batch_interval": "SIGNOFF_BATCH_INTERVAL",
    "queue_interval": "SIGNOFF_QUEUE_INTERVAL",
}


@dataclass(frozen=True)
class Timing:
    """How often the periodic jobs run and how long an outbox claim lasts, in seconds.

    Read from the environment (docs/replicas.md); the defaults suit production, and tests
    shorten them so that SLAs, takeovers and retries happen within seconds.
    """

    outbox_interval: float = 1.0
    sweep_interval: float = 5.0
    outbox_lease: float = LEASE.total_seconds()
    wait_poll_interval: float = 1.0
    batch_interval: float = 30.0
    queue_interval: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Timing:
        """Raises ConfigError naming the variable when a value is not a positive number."""
        values: dict[str, float] = {}
        for name, var in TIMING_ENV.items():
            raw = env.get(var)
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not 0 < value < 86_400:
                raise ConfigError(var, f"must be a number of seconds above 0, got {raw!r}")
            values[name] = value
        return cls(**values)


def worker_id() -> str:
    """Names this process as a lease owner, so an operator can tell which replica holds what."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def build_services(
    config: LoadedConfig,
    *,
    repo: Repository | None = None,
    clock: Clock | None = None,
    resume: ResumeTarget | None = None,
    channels: Mapping[str, Channel] | None = None,
    env: Mapping[str, str] | None = None,
    start_scheduler: bool = True,
    notifier: Notifier | None = None,
) -> Services:
    """Open storage, build engine, worker and scheduler; `Services.stack` closes them in order.

    Without `notifier`, a repository opened here brings its database's notifier (LISTEN/
    NOTIFY on PostgreSQL), and a repository passed in gets one that reaches nobody.
    """
    settings = config.settings
    timing = Timing.from_env(os.environ if env is None else env)
    clock = clock or SystemClock()
    metrics = Metrics()
    waiters = Waiters()
    owned_repo = repo is None
    env_map = os.environ if env is None else env
    given_key = getattr(repo, "audit_key", None)
    audit_keys = AuditKeys(
        AuditKeyring(given_key) if isinstance(given_key, AuditKey) else None,
        "as the repository was given",
    )
    if repo is None:
        audit_keys = load_audit_keys(settings.database_url, env_map, create=True)
        current = audit_keys.keyring.current if audit_keys.keyring else None
        repo = await open_repository(settings.database_url, migrate=True, audit_key=current)
        if notifier is None:
            notifier = notifier_for(repo)
    try:
        audit = AuditWiring(audit_keys, checkpoint_writer(config, repo, clock, env_map))
    except ConfigError:
        if owned_repo:
            await repo.close()
        raise
    notifier = notifier if notifier is not None else InMemoryNotifier()
    resume_target: ResumeTarget
    owned_resume = resume is None
    resume_target = resume if resume is not None else PerAgentResumeTarget(env=env)
    all_channels: dict[str, Channel] = {"web": WebInboxChannel()}
    slack = slack_channel(config, os.environ if env is None else env)
    if slack is not None:
        all_channels["slack"] = slack
    teams = teams_channel(config, os.environ if env is None else env)
    if teams is not None:
        all_channels["teams"] = teams
    all_channels.update(channels or {})
    # Built last (it runs the engine's and the worker's jobs); the closures below read this
    # name when they run, by which time it is set.
    scheduler: Scheduler | None = None
    model: ActiveModel | None = None

    def committed(request_id: str | None, outbox: bool) -> None:
        waiters.notify(request_id)
        # Other replicas: their long-polls on this request wake, their outboxes look too.
        if request_id is not None:
            notifier.publish("request", request_id)
        if outbox:
            # A change without outbox rows (a web-only card is posted in its transaction)
            # gives no worker anything to claim, so no claim is spent looking.
            if scheduler is not None:
                scheduler.kick(request_id)
            notifier.publish("outbox", "")

    def request_changed(request_id: str) -> None:
        if request_id:
            waiters.notify(request_id)
        else:
            waiters.notify_all()

    def outbox_changed(_: str) -> None:
        if scheduler is not None:
            scheduler.kick()

    def agent_changed(agent_id: str) -> None:
        notifier.publish("agent", agent_id)

    def standing_changed() -> None:
        notifier.publish("standing", "")

    # The web inbox's cards are rows of this database: posted inside the change's own
    # transaction. A replacement "web" channel (tests) goes through the outbox as before.
    inline = {
        name: channel
        for name, channel in all_channels.items()
        if isinstance(channel, WebInboxChannel)
    }
    # Slack user groups listed as reviewers: read at start, then every minute.
    groups = reviewer_groups(config, all_channels.get("slack"))
    if groups is not None:
        await groups.refresh()
    engine = Engine(
        repo,
        config.policy,
        settings.agent_specs(),
        clock,
        channels=frozenset(all_channels),
        metrics=metrics,
        on_commit=committed,
        inline_channels=inline,
        public_url=settings.public_url,
        on_agent_change=agent_changed,
        on_standing_change=standing_changed,
        canaries=settings.oversight.canaries.policy(),
        people=settings.directory(),
        wording=settings.wording(config.policy),
        groups=groups,
    )
    sinks: dict[str, AlertSink] = {
        name: channel
        for name, channel in all_channels.items()
        if isinstance(channel, SlackChannel | TeamsChannel) and channel.alerts_channel
    }
    oversight = settings.oversight
    watch = Watch(
        repo,
        clock,
        tiers=[t.name for t in config.policy.tiers],
        thresholds=oversight.thresholds(),
        window=oversight.window,
        destinations=sorted(sinks),
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
        owner=worker_id(),
        lease=timedelta(seconds=timing.outbox_lease),
        agents=engine.agents,
        alert_sinks=sinks,
        caps=settings.outbox.caps(),
        wording=engine.wording,
    )
    planner = BatchPlanner(
        engine, min_items=settings.batch.min_items, max_items=settings.batch.max_items
    )

    async def plan_batches() -> None:
        if await planner.plan() and scheduler is not None:
            scheduler.kick()

    queues = QueuePlanner(engine, after=settings.queue.after, max_items=settings.queue.max_items)

    async def plan_queues() -> None:
        if await queues.plan() and scheduler is not None:
            scheduler.kick()

    jobs = [PeriodicJob("watch", oversight.evaluate_every.total_seconds(), watch.evaluate)]
    if groups is not None:
        jobs.append(PeriodicJob("groups", GROUPS_REFRESH_SECONDS, groups.refresh))
    cost_gauges = CostGauges(metrics.registry)

    async def measure_cost() -> None:
        now = clock.now()
        evidence = await gather(repo, now - oversight.window)
        figures = evidence.figures(
            now, [t.name for t in config.policy.tiers], oversight.thresholds()
        )
        cost_gauges.update(
            cost_figures(
                evidence.requests,
                oversight.hourly_cost,
                start=figures.start,
                width=figures.width,
                buckets=len(figures.buckets),
            )
        )

    jobs.append(PeriodicJob("cost", oversight.evaluate_every.total_seconds(), measure_cost))
    if settings.prediction.mode != "off":
        # The active model is read at start and re-read every minute, so `signoff predict
        # activate` reaches every replica without a restart.
        model = ActiveModel(repo)
        await model.refresh()
        engine.predictor = model
        jobs.append(PeriodicJob("model", MODEL_REFRESH_SECONDS, model.refresh))
    if planner.enabled:
        jobs.append(PeriodicJob("batches", timing.batch_interval, plan_batches))
    if queues.enabled and {"slack", "teams"} & set(all_channels):
        jobs.append(PeriodicJob("queues", timing.queue_interval, plan_queues))
    jobs += audit.jobs()
    scheduler = Scheduler(
        engine,
        worker,
        outbox_interval=timing.outbox_interval,
        sweep_interval=timing.sweep_interval,
        jobs=jobs,
    )
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
        notifier=notifier,
        watch=watch,
        planner=planner,
        queues=queues,
        audit=audit,
        measure_cost=measure_cost,
        model=model,
        wait_poll_interval=timing.wait_poll_interval,
    )
    if owned_repo:
        services.stack.push_async_callback(repo.close)
    if owned_resume and isinstance(resume_target, PerAgentResumeTarget):
        services.stack.push_async_callback(resume_target.aclose)
    notifier.subscribe("request", request_changed)
    notifier.subscribe("outbox", outbox_changed)
    notifier.subscribe("agent", engine.forget_agent_state)
    notifier.subscribe("standing", engine.forget_standing)
    await notifier.start()
    services.stack.push_async_callback(notifier.close)
    await audit.start(repo, clock)
    services.stack.push_async_callback(audit.final_checkpoint)
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
        async with AsyncExitStack() as stack:
            current = services
            if current is None:
                current = await build_services(config, **build)
                await stack.enter_async_context(current.stack)
            app.state.services = current
            # Entered after the services, so it closes first: no envelope arrives while the
            # engine and the outbox shut down.
            await stack.enter_async_context(slack_socket_mode(app, current))
            yield
            # Here, not only in the services' stack: after a SIGTERM uvicorn re-raises the
            # signal once the server has stopped, so `signoff serve` never unwinds that stack.
            await current.audit.final_checkpoint()

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
    mount_slack(app, services, None, build.get("env"))
    mount_teams(app, services, None, build.get("env"))
    http.install_error_handlers(app)
    http.document_webhooks(app)
    app.add_middleware(http.BodyLimit)
    app.add_middleware(RequestIdFromPath)
    mount_web(app, services)
    return app
