"""`signoff agents stop|start|list`: the stop button on the server host.

Whoever can run commands on the server host with its config already holds the database;
so the command line is where a person starts an agent outside the chat channels. The actor
recorded in the audit log is `cli:<os user>`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from bot.core.clock import SystemClock
from bot.core.domain import isoformat
from bot.core.errors import NotFound
from bot.server.config import LoadedConfig, load_config


def cli_actor() -> str:
    """`cli:<os user>`: who pressed the button, as far as the host can tell."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


async def _set_stopped(config: LoadedConfig, agent_id: str, stopped: bool, reason: str) -> Any:
    from adapters.web.channel import WebInboxChannel
    from bot.engine.machine import Engine
    from bot.server.audit_cli import open_repo
    from storage import notifier_for

    repo = await open_repo(config)
    notifier = notifier_for(repo)
    try:
        await notifier.start()

        def committed(request_id: str | None, outbox: bool) -> None:
            # Running replicas: their long-polls wake and their outbox workers look now.
            if request_id is not None:
                notifier.publish("request", request_id)
            if outbox:
                notifier.publish("outbox", "")

        engine = Engine(
            repo,
            config.policy,
            config.settings.agent_specs(),
            SystemClock(),
            on_commit=committed,
            inline_channels={"web": WebInboxChannel()},
            public_url=config.settings.public_url,
            on_agent_change=lambda agent: notifier.publish("agent", agent),
            people=config.settings.directory(),
            wording=config.settings.wording(config.policy),
        )
        return await engine.set_stopped(
            agent_id, stopped, actor=cli_actor(), reason=reason, channel="cli"
        )
    finally:
        await notifier.close()
        await repo.close()


def _change(args: argparse.Namespace, stopped: bool) -> int:
    config = load_config(args.config)
    reason = args.reason.strip()
    if not reason:
        print("signoff: --reason must say why", file=sys.stderr)
        return 2
    try:
        state = asyncio.run(_set_stopped(config, args.agent, stopped, reason))
    except NotFound:
        known = ", ".join(sorted(config.settings.agent_specs()))
        print(f"signoff: no agent {args.agent!r} (agents: {known})", file=sys.stderr)
        return 2
    word = "stopped" if state.stopped else "started"
    print(f"agent {state.agent_id} {word} by {state.by} at {isoformat(state.at)}: {state.reason}")
    return 0


def cmd_agents_stop(args: argparse.Namespace) -> int:
    return _change(args, True)


def cmd_agents_start(args: argparse.Namespace) -> int:
    return _change(args, False)


def cmd_agents_list(args: argparse.Namespace) -> int:
    from bot.server.audit_cli import open_repo

    config = load_config(args.config)

    async def states() -> list[tuple[str, Any]]:
        repo = await open_repo(config)
        try:
            return [(a, await repo.agent_state(a)) for a in sorted(config.settings.agent_specs())]
        finally:
            await repo.close()

    for agent_id, state in asyncio.run(states()):
        if state is None or not state.stopped:
            since = f" since {isoformat(state.at)} (started by {state.by})" if state else ""
            print(f"{agent_id}\trunning{since}")
        else:
            print(f"{agent_id}\tSTOPPED since {isoformat(state.at)} by {state.by}: {state.reason}")
    return 0


def add_agents_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Any,
) -> None:
    """`signoff agents ...` under the main parser's subcommands."""
    agents = sub.add_parser("agents", help="stop, start and list agents").add_subparsers(
        dest="agents_command", required=True, metavar="ACTION"
    )
    stop = with_config(
        agents.add_parser("stop", help="stop an agent: reject its pending and new requests")
    )
    stop.add_argument("agent", metavar="AGENT")
    stop.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    stop.set_defaults(func=cmd_agents_stop)
    start = with_config(agents.add_parser("start", help="start a stopped agent again"))
    start.add_argument("agent", metavar="AGENT")
    start.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    start.set_defaults(func=cmd_agents_start)
    listing = with_config(agents.add_parser("list", help="every agent and whether it is stopped"))
    listing.set_defaults(func=cmd_agents_list)
