"""`bot.core.ports.Repository` on SQLAlchemy asyncio: SQLite (aiosqlite) or PostgreSQL (psycopg 3).

Every write is one transaction. Concurrency rests on three mechanisms:

* requests carry a `version`; an update only lands `WHERE id = :id AND version = :expected`;
* outbox claims lease rows (owner, expiry) chosen with `FOR UPDATE SKIP LOCKED` on
  PostgreSQL; on SQLite every write transaction starts with `BEGIN IMMEDIATE`, which takes
  the database's single write lock up front, because SQLAlchemy drops `FOR UPDATE` there;
* the audit chain's tail lives in one `audit_head` row; every append locks it as the last
  step of its transaction, so sequence numbers stay contiguous and each link sees its
  predecessor, while the lock is held only for the moment before commit.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.audit_chain import AuditKey
from storage._batch import ApplyBatcher
from storage._sql_oversight import SqlOversight
from storage._sql_reads import SqlReads
from storage._sql_sessions import SqlSessions
from storage._sql_setup import _READ_ONLY, async_url, create_engine, load_stored_json, sqlite_path
from storage._sql_writes import SqlWrites
from storage._statements import DialectStatements

__all__ = ["SqlRepository", "async_url", "create_engine", "load_stored_json", "sqlite_path"]


class SqlRepository(SqlWrites, SqlReads, SqlSessions, SqlOversight):
    """Implements `bot.core.ports.Repository` on SQLite or PostgreSQL.

    Build it with `SqlRepository.connect(url)` (no I/O happens until the first call) and
    release it with `close()`. The schema must exist: run `storage.upgrade` first, or use
    `storage.open_repository(url, migrate=True)`. Every method raises `StorageError` when
    the database cannot be reached or refuses the operation.
    """

    def __init__(self, engine: AsyncEngine, *, audit_key: AuditKey | None = None) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{_READ_ONLY: True})
        self._postgres = engine.dialect.name == "postgresql"
        self._statements = DialectStatements(self._postgres)
        # SQLite: this process's writers take turns here before BEGIN IMMEDIATE. Waiting
        # for SQLite's lock instead means its busy handler's sleeps (up to 100 ms each)
        # between retries, so a released lock sat idle while 30 writers slept. The SQLite
        # lock still orders writes against other processes (the CLI).
        self._write_turn = None if self._postgres else asyncio.Lock()
        self._batcher = ApplyBatcher(self._apply_one, self._apply_many)
        self._where = engine.url.render_as_string(hide_password=True)
        # Links new audit events with HMAC under this key (None: unkeyed, as before keys).
        self.audit_key = audit_key

    @classmethod
    def connect(cls, url: str, *, audit_key: AuditKey | None = None) -> SqlRepository:
        """A repository for a user's database URL (see `async_url`); does not connect yet.

        Raises ConfigError when the URL is unusable.
        """
        return cls(create_engine(url), audit_key=audit_key)
