"""Setting up: `signoff init`, `keys new`, `web hash-password`, `web login-link`, `db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from bot.server._cli_common import WithConfig, config_of, fail, redact, with_repo
from bot.server.config import DEMO_AGENT
from bot.server.demo_key import demo_key_path, new_api_key, write_demo_key


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: WithConfig
) -> None:
    init = sub.add_parser("init", help="write a complete, commented signoff.yaml (defaults)")
    init.add_argument("path", nargs="?", default="signoff.yaml", metavar="PATH")
    init.set_defaults(func=cmd_init)

    keys = sub.add_parser("keys", help="API keys for agents").add_subparsers(
        dest="keys_command", required=True, metavar="COMMAND"
    )
    new = with_config(
        keys.add_parser(
            "new",
            help="print a new API key and its sha256 for the config "
            "(for `demo` in the embedded default: replace the kept demo key)",
        )
    )
    new.add_argument("agent", help="the agent id")
    new.set_defaults(func=cmd_keys_new)

    web = sub.add_parser("web", help="web inbox helpers").add_subparsers(
        dest="web_command", required=True, metavar="COMMAND"
    )
    hp = web.add_parser("hash-password", help="read a password on stdin, print a password_hash")
    hp.set_defaults(func=cmd_hash_password)
    link = with_config(
        web.add_parser(
            "login-link",
            help="print a one-time sign-in link for the web inbox (works on a running server)",
        )
    )
    link.add_argument(
        "--reviewer",
        metavar="NAME",
        help="a name under web.reviewers (default: the built-in admin, when none is configured)",
    )
    link.set_defaults(func=cmd_login_link)
    db = sub.add_parser("db", help="database").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    up = with_config(db.add_parser("upgrade", help="apply migrations (Alembic) up to the latest"))
    up.set_defaults(func=cmd_db_upgrade)


def cmd_keys_new(args: argparse.Namespace) -> int:
    key, digest = new_api_key()
    config = config_of(args) if args.agent == DEMO_AGENT else None
    if config is not None and config.settings.embedded:
        # The embedded default's demo agent: replace the kept key, which a running server
        # stops accepting at once (it looks keys up in the database).
        path = demo_key_path(config.settings.database_url)

        async def work(repo: Any) -> None:
            await repo.set_agent_key(DEMO_AGENT, digest, datetime.now(UTC))

        asyncio.run(with_repo(config, work, migrate=True))
        write_demo_key(path, key)
        print(f"agent: {args.agent}")
        print(f"api_key: {key}")
        print(f"key_sha256: {digest}")
        print(
            f"The demo key kept in {path} is replaced; the old one stops working.", file=sys.stderr
        )
        return 0
    print(f"agent: {args.agent}")
    print(f"api_key: {key}")
    print(f"key_sha256: {digest}")
    print(
        "Give the api_key to the agent; put key_sha256 under agents[].key_sha256.", file=sys.stderr
    )
    return 0


def cmd_login_link(args: argparse.Namespace) -> int:
    from adapters.web.inbox import BUILTIN_LOGIN
    from adapters.web.sessions import LoginTokens

    config = config_of(args)
    reviewers = sorted(config.settings.web.reviewers)
    allowed = reviewers or [BUILTIN_LOGIN]
    login = (args.reviewer or "").removeprefix("web:") or (None if reviewers else BUILTIN_LOGIN)
    if login is None:
        return fail(f"web.reviewers is configured: name one with --reviewer ({', '.join(allowed)})")
    if login not in allowed:
        return fail(f"no web reviewer {login!r} (one of: {', '.join(allowed)})")

    async def work(repo: Any) -> str:
        return await LoginTokens(repo).issue(login, datetime.now(UTC))

    token = asyncio.run(with_repo(config, work, migrate=True))
    print(f"{config.settings.public_url.rstrip('/')}/login/token/{token}")
    print(f"One-time sign-in link for web:{login}, valid for 24 hours.", file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.server.init_config import write_config

    path = Path(args.path)
    try:
        write_config(path)
    except FileExistsError:
        return fail(f"{path} already exists; not overwriting it (move it away first)", 1)
    except OSError as exc:
        return fail(f"cannot write {path}: {exc.strerror}", 1)
    print(f"wrote {path}: every section at its default, with comments")
    print(f"next: signoff policy check {path}   then: signoff serve --config {path}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from adapters.web.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        return fail("no password given on standard input", 1)
    print(hash_password(password))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage import upgrade

    config = config_of(args)
    upgrade(config.settings.database_url)
    print(f"database at {redact(config.settings.database_url)} is at the latest schema")
    return 0
