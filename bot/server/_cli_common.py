"""What the `signoff` commands share: exit codes, errors on stderr, the config, a repository."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bot.core.errors import ConfigError
from bot.server.config import LoadedConfig, load_config

EXIT_CONFIG = 2
# What a shell reports for a command its reader stopped listening to (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141

T = TypeVar("T")

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
"""Adds `--config` to a command's parser (every command that touches the database has it)."""


def fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"signoff: {message}", file=sys.stderr)
    return code


def config_of(args: argparse.Namespace, path: str | None = None) -> LoadedConfig:
    return load_config(path or getattr(args, "config", None))


def redact(url: str) -> str:
    """A database URL fit to print: its password replaced by stars."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    from routing import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            "--since", f"{value!r} is neither a duration (30d) nor an ISO date"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def requests_since(repo: Any, since: datetime | None) -> list[Any]:
    """Every request agents submitted at or after `since` (all of them for None). Attention
    checks are left out: they are not an agent's proposals and have no outcome."""
    from bot.oversight.watch import id_floor

    requests = []
    cursor = id_floor(since) if since is not None else None
    while True:
        page = await repo.list_requests(limit=500, cursor=cursor)
        requests += [
            r for r in page.items if not r.canary and (since is None or r.created_at >= since)
        ]
        if page.next_cursor is None:
            return requests
        cursor = page.next_cursor


async def with_repo(
    config: LoadedConfig, work: Callable[[Any], Awaitable[T]], *, migrate: bool = False
) -> T:
    from bot.server.audit_cli import open_repo

    repo = await open_repo(config, migrate=migrate)
    try:
        return await work(repo)
    finally:
        await repo.close()
