"""The SQL repository's connection handling: one transaction per write, reads that never
queue for SQLite's write lock, driver errors wrapped as StorageError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from sqlalchemy import exc as sa_exc
from sqlalchemy import (
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.core.audit_chain import AuditKey
from bot.core.errors import (
    StorageError,
)
from storage._batch import ApplyBatcher
from storage._statements import (
    DialectStatements,
)


class SqlBase:
    """The engine, the audit key and the transaction helpers every part of the repository uses."""

    # Set by SqlRepository.__init__, which joins the parts.
    _engine: AsyncEngine
    _reader: AsyncEngine
    _postgres: bool
    _statements: DialectStatements
    _write_turn: asyncio.Lock | None
    _batcher: ApplyBatcher
    _where: str
    audit_key: AuditKey | None

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine (for migrations and tests)."""
        return self._engine

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._turn():
            try:
                async with self._engine.begin() as conn:
                    yield conn
            except sa_exc.SQLAlchemyError as exc:
                raise self._storage_error(exc) from exc

    def _turn(self) -> AbstractAsyncContextManager[object]:
        return self._write_turn if self._write_turn is not None else nullcontext()

    @asynccontextmanager
    async def _read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read transaction; `snapshot` makes several SELECTs agree on PostgreSQL too."""
        try:
            async with self._reader.begin() as conn:
                if snapshot and self._postgres:
                    await conn.execute(
                        text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    )
                yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise self._storage_error(exc) from exc

    def _storage_error(self, exc: sa_exc.SQLAlchemyError) -> StorageError:
        # str(exc) would carry the SQL and its parameters; the driver's own first line is
        # what an operator needs, and the URL is rendered without its password.
        cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        lines = str(cause).strip().splitlines()
        detail = lines[0] if lines else type(cause).__name__
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return StorageError(f"cannot use the database {self._where}: {detail}")
        return StorageError(f"the database {self._where} refused the operation: {detail}")

    async def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection; the repository is unusable afterwards."""
        await self._batcher.close()
        await self._engine.dispose()
