"""Schema migrations, run programmatically (`signoff db upgrade`, `open_repository`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from bot.core.errors import StorageError
from storage.sql import create_engine

# Next to this module, so it resolves inside an installed wheel as well as in the repo.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Replicas starting together each migrate at start-up; on PostgreSQL they queue on this
# transaction-level advisory lock, so the first creates the schema and the rest find it
# current (instead of failing on a half-created table). SQLite's BEGIN IMMEDIATE queues them.
_MIGRATION_LOCK = 0x5167_6E6F_6666


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for Signoff's migrations, optionally bound to an open connection."""
    config = Config()
    # configparser interpolates '%', so a path holding one must escape it.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`, in one transaction.

    Raises ConfigError for an unusable URL and StorageError when the database cannot be
    reached or refuses a migration step.
    """
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    except sa_exc.SQLAlchemyError as exc:
        cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        lines = str(cause).strip().splitlines()
        where = engine.url.render_as_string(hide_password=True)
        detail = lines[0] if lines else type(cause).__name__
        raise StorageError(f"cannot migrate the database {where}: {detail}") from exc
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Synchronous `upgrade_async` for the CLI; must not be called from a running event loop.

    Raises ConfigError for an unusable URL and StorageError when the database cannot be
    reached or refuses a migration step.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_async(url, revision))
    else:
        raise RuntimeError(
            "upgrade() runs its own event loop; from async code, use upgrade_async()"
        )
