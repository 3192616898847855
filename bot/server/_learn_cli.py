"""`signoff standing ...` and `signoff predict ...`: learning from the history (issue 18)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.domain import isoformat
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.server.config import LoadedConfig, load_config

EXIT_REFUSED = 1
EXIT_USAGE = 2

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def _fail(message: str, code: int) -> int:
    print(f"signoff: {message}", file=sys.stderr)
    return code


async def _with_repo(config: LoadedConfig, work: Callable[[Any], Any]) -> Any:
    from storage import open_repository

    repo = await open_repository(config.settings.database_url, migrate=False)
    try:
        return await work(repo)
    finally:
        await repo.close()


def _duration(value: str) -> timedelta:
    from routing import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


# -- standing approvals ---------------------------------------------------------------------


def cmd_standing_grant(args: argparse.Namespace) -> int:
    from bot.core.learning import GrantRequest
    from bot.engine.standing import grant
    from routing import Risk

    config = load_config(args.config)
    ask = GrantRequest(
        grantor=args.by,
        agent_id=args.agent,
        kind=args.kind,
        ttl=args.ttl,
        max_uses=args.max_uses,
        reason=args.reason,
        when=args.when,
        max_risk=Risk(args.max_risk),
        allow_high=args.allow_high,
    )
    agents = config.settings.agent_specs()

    async def work(repo: Any) -> Any:
        return await grant(repo, config.policy, agents, ask, datetime.now(UTC), channel="cli")

    try:
        made = asyncio.run(_with_repo(config, work))
    except InvalidInput as exc:
        return _fail(f"cannot grant: --{exc.field.replace('_', '-')}: {exc.problem}", EXIT_USAGE)
    except (NotAllowed, NotFound) as exc:
        return _fail(f"cannot grant: {exc}", EXIT_REFUSED)
    print(made.id)
    print(
        f"{made.grantor} approves {made.kind} requests of {made.agent_id}"
        f"{' where ' + made.when if made.when else ''} up to {made.max_risk.value} risk, "
        f"{made.max_uses} uses until {isoformat(made.expires_at)}",
        file=sys.stderr,
    )
    return 0


def cmd_standing_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = datetime.now(UTC)

    async def work(repo: Any) -> Any:
        return await repo.standing_approvals(active_at=None if args.all else now)

    grants = asyncio.run(_with_repo(config, work))
    if args.json:
        print(json.dumps([g.to_json() for g in grants], indent=2))
        return 0
    if not grants:
        print("no active standing approvals" if not args.all else "no standing approvals")
        return 0
    print(f"{'id':30} {'grantor':16} {'agent':14} {'kind':12} {'risk':6} {'uses':9} state")
    for g in grants:
        state = (
            f"revoked by {g.revoked_by}"
            if g.revoked_at
            else ("active until " if g.active_at(now) else "ended ") + str(isoformat(g.expires_at))
        )
        print(
            f"{g.id:30} {g.grantor:16} {g.agent_id:14} {g.kind:12} {g.max_risk.value:6} "
            f"{f'{g.uses}/{g.max_uses}':9} {state}"
        )
        if g.when:
            print(f"{'':30} when {g.when}")
    return 0


def cmd_standing_revoke(args: argparse.Namespace) -> int:
    from bot.engine.standing import revoke

    config = load_config(args.config)

    async def work(repo: Any) -> Any:
        return await revoke(
            repo, args.id, args.by, datetime.now(UTC), channel="cli", policy=config.policy
        )

    try:
        done = asyncio.run(_with_repo(config, work))
    except (NotAllowed, NotFound) as exc:
        return _fail(f"cannot revoke: {exc}", EXIT_REFUSED)
    print(f"{done.id} revoked by {done.revoked_by} after {done.uses} of {done.max_uses} uses")
    return 0


def add_commands(sub: Any, with_config: WithConfig) -> None:
    """Register `standing` and `predict` on the top-level subparsers."""
    standing = sub.add_parser(
        "standing", help="standing approvals: approve requests like this for a while"
    ).add_subparsers(dest="standing_command", required=True, metavar="COMMAND")
    grant = with_config(
        standing.add_parser(
            "grant",
            help="let a reviewer approve matching requests in advance; prints the new id",
            description="A grant approves escalate-lane requests of AGENT whose action kind "
            "is KIND, that need one approval, whose risk is at most --max-risk and for which "
            "the CEL condition --when holds (the same variables as routing rules). The "
            "grantor must review at the tier where such items start; --max-risk high needs "
            "--allow-high and a reviewer of the top tier.",
        )
    )
    grant.add_argument("--by", required=True, metavar="REVIEWER", help="e.g. slack:U0AAA")
    grant.add_argument("--agent", required=True)
    grant.add_argument("--kind", required=True, help="the action kind covered")
    grant.add_argument("--when", metavar="CEL", help='e.g. amount <= 200.0 && domain == "ops"')
    grant.add_argument("--ttl", required=True, type=_duration, help="how long: 30m, 2h, 1d")
    grant.add_argument("--max-uses", required=True, type=_positive, metavar="N")
    grant.add_argument("--reason", required=True, metavar="TEXT")
    grant.add_argument(
        "--max-risk", choices=["low", "medium", "high"], default="medium", help="default medium"
    )
    grant.add_argument("--allow-high", action="store_true", help="required for --max-risk high")
    grant.set_defaults(func=cmd_standing_grant)
    listing = with_config(standing.add_parser("list", help="active standing approvals"))
    listing.add_argument("--all", action="store_true", help="also expired and revoked ones")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_standing_list)
    revoke = with_config(standing.add_parser("revoke", help="end a standing approval now"))
    revoke.add_argument("id", metavar="ID")
    revoke.add_argument("--by", required=True, metavar="REVIEWER")
    revoke.set_defaults(func=cmd_standing_revoke)
