"""`signoff serve`: the HTTP service, the scheduler and the start-up banner."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

from bot.core import logs
from bot.core.errors import ConfigError
from bot.server._cli_common import WithConfig, redact
from bot.server.config import DEMO_AGENT, LoadedConfig, load_config
from bot.server.demo_key import demo_key_path, kept_demo_key, key_digest
from bot.server.preflight import check_secrets
from bot.server.workers import check_workers, run_workers


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: WithConfig
) -> None:
    serve = with_config(sub.add_parser("serve", help="run the HTTP service and the scheduler"))
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes on one port, each a replica (PostgreSQL only; default 1)",
    )
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=logs.LEVELS,
        help=f"default ${logs.LOG_LEVEL_ENV}, else INFO (library chatter shows from WARNING)",
    )
    serve.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help=f"text, or json: one object per line (default ${logs.LOG_FORMAT_ENV}, else text)",
    )
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.host:
        env["SIGNOFF_HOST"] = args.host
    if args.port:
        env["SIGNOFF_PORT"] = str(args.port)
    config = load_config(args.config, env)
    check_secrets(config.settings, env)
    workers = args.workers or 1
    check_workers(workers, config.settings.database_url)
    if workers > 1:
        child = [*(["--config", args.config] if args.config else [])]
        for flag, value in (
            ("--host", args.host),
            ("--port", args.port),
            ("--log-level", args.log_level),
            ("--log-format", args.log_format),
        ):
            if value:
                child += [flag, str(value)]
        return run_workers(workers, config.settings.host, config.settings.port, child)
    return asyncio.run(_serve(config, listen_fd=args.listen_fd))


def inherited_sockets(listen_fd: int | None) -> list[socket.socket] | None:
    """The socket a worker of `--workers N` accepts on (its parent bound it), taken as the
    TCP socket it is: uvicorn's own `fd=` reads it as a Unix socket, and asyncio then leaves
    Nagle's algorithm on for every connection (a 40 ms stall per answer against a client's
    delayed ACK)."""
    return [socket.socket(fileno=listen_fd)] if listen_fd is not None else None


async def _serve(config: LoadedConfig, listen_fd: int | None = None) -> int:
    import uvicorn

    from bot.server.app import build_services, create_app
    from bot.server.web import issue_login_link

    settings = config.settings
    # Set by `--workers N` for its children (bot.server.workers): worker 1 says it all, the
    # others one line each (one login link, and a count a supervisor can wait for).
    worker = os.environ.get("SIGNOFF_WORKER", "1")
    services = await build_services(config)
    async with services.stack:
        banner = [
            f"Signoff {'(embedded default) ' if settings.embedded else ''}"
            f"is running at http://{settings.host}:{settings.port}",
            f"  database: {redact(settings.database_url)}",
            f"  channels: {', '.join(sorted(services.channels))}",
            *(f"  {line}" for line in services.audit.banner()),
        ]
        slack = settings.slack.credentials(os.environ)
        if slack is not None:
            ways = [("POST /slack/events", slack.signing_secret), ("Socket Mode", slack.app_token)]
            banner.append(f"  slack: {' and '.join(way for way, on in ways if on)}")
        if settings.embedded:
            path = demo_key_path(settings.database_url)
            try:
                key = kept_demo_key(path)
            except OSError as exc:
                raise ConfigError("", f"cannot keep the demo key in {path}: {exc}") from exc
            await services.repo.set_agent_key(DEMO_AGENT, key_digest(key), services.clock.now())
            banner.append(f"  agent: {DEMO_AGENT}")
            banner.append(f"  api key: {key}")
            banner.append(f"    (kept in {path}; `signoff keys new {DEMO_AGENT}` replaces it)")
        if worker != "1":
            banner = [
                f"Signoff worker {worker} is running at http://{settings.host}:{settings.port}"
            ]
        elif not settings.web.reviewers and settings.web.oidc is None:
            banner.append(f"  login: {await issue_login_link(services)}")
            banner.append("    (one-time; `signoff web login-link` prints another)")
        app = create_app(config, services=services)

        class BannerServer(uvicorn.Server):
            """Prints the banner once the socket listens: the last thing said at start-up."""

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started and not self.should_exit:
                    print("\n".join(banner), flush=True)

        server = BannerServer(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                # Logging is set up once, by `bot.core.logs`; uvicorn adds no handlers or levels.
                log_config=None,
                log_level=None,
                lifespan="on",
                server_header=False,
            )
        )
        await server.serve(sockets=inherited_sockets(listen_fd))
    return 0
