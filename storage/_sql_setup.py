"""Opening a database: URLs, drivers, pools and SQLite's pragmas and write lock."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    event,
    literal_column,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.core.errors import (
    ConfigError,
)
from signoff_client.canonical import tolerating_depth
from storage._statements import (
    AUDIT_HEAD_ID,
)

# SQLite waits this long for the write lock before it reports "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL that does not answer within this many seconds counts as unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 5
# Connections kept open. SQLAlchemy's default (5) made every transaction beyond the fifth
# concurrent one open and close a connection (a PostgreSQL backend, or an aiosqlite thread
# and its pragmas), which cost more than the transaction; beyond the overflow, callers
# queue for a connection instead.
POOL_SIZE = 20
POOL_OVERFLOW = 10

# Read-only work opts out of SQLite's BEGIN IMMEDIATE so readers never queue for the lock.
_READ_ONLY = "signoff_read_only"

# Literal (not bound) so the planners can match the partial indexes' predicate.
_PENDING: ColumnElement[str] = literal_column("'pending'")

_AUDIT_HEAD_ID = AUDIT_HEAD_ID


def async_url(url: str) -> URL:
    """Translate a user's database URL to the async driver Signoff runs on.

    `sqlite:///PATH` (any sqlite driver) becomes `sqlite+aiosqlite:///PATH`;
    `postgresql://...`, `postgres://...` and `postgresql+<driver>://...` become
    `postgresql+psycopg://...` (psycopg 3 in async mode).

    Raises ConfigError (path `database_url`) when the URL cannot be parsed or names
    another database.
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise ConfigError(
            "database_url",
            "not a database URL (expected sqlite:///PATH or postgresql://USER@HOST/DB)",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        _require_psycopg()
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(
        "database_url", f"unsupported database {backend!r} (use sqlite or postgresql)"
    )


def _require_psycopg() -> None:
    """The PostgreSQL driver is an extra (`signoff[postgres]`): the base install, which
    serves SQLite, runs without it, so only a PostgreSQL URL asks for it."""
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "database_url",
            "a PostgreSQL URL needs the psycopg driver, which is not installed: "
            "install signoff[postgres] (pip install 'signoff[postgres]')",
        )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL or an in-memory SQLite.

    Raises ConfigError for an unusable URL (see `async_url`).
    """
    target = async_url(url)
    database = target.database
    if target.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or target.query.get("mode") == "memory":
        return None
    return Path(database)


def load_stored_json(text: str | bytes) -> Any:
    """json.loads for stored columns, also for values stored before inputs were limited to
    32 levels (an accepted value may never make a read fail)."""
    return tolerating_depth(lambda: json.loads(text))


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url` (see `async_url`), set up for Signoff's locking scheme.

    Creating it does not connect. Raises ConfigError for an unusable URL.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(
            target,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            json_deserializer=load_stored_json,
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in target.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    # pre_ping: a PostgreSQL restart must cost one failed checkout, not one failed request.
    return create_async_engine(
        target,
        pool_pre_ping=True,
        connect_args=connect_args,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        json_deserializer=load_stored_json,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not issue its own (deferred) BEGIN; `_on_begin` does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL makes NORMAL crash-safe; only a power loss can drop the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "do_connect")
    def _check_directory(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> None:
        # A failed aiosqlite connect leaves its worker thread to finish after the caller has
        # its exception, and that thread fails if the event loop has closed by then (as when
        # `signoff db upgrade` exits). Catching the usual cause, a missing directory, before
        # aiosqlite starts avoids the stray thread error and names the directory.
        database = str(cparams.get("database", cargs[0] if cargs else ""))
        if database and database != ":memory:" and not cparams.get("uri"):
            directory = os.path.dirname(os.path.abspath(database))
            if not os.path.isdir(directory):
                raise dialect.loaded_dbapi.OperationalError(
                    f"unable to open database file: directory {directory} does not exist"
                )

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock (SQLite
        # answers SQLITE_BUSY at once to avoid deadlock); IMMEDIATE queues at BEGIN instead.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")
