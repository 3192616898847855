"""Storage: the SQL and in-memory repositories and the schema migrations.

Only this package imports SQLAlchemy.
"""

from __future__ import annotations

from bot.core.audit_chain import AuditKey
from storage.memory import InMemoryRepository
from storage.migrate import upgrade, upgrade_async
from storage.notify import InMemoryNotifier, PostgresNotifier
from storage.sql import SqlRepository, sqlite_path

__all__ = [
    "InMemoryNotifier",
    "InMemoryRepository",
    "PostgresNotifier",
    "SqlRepository",
    "notifier_for",
    "open_repository",
    "sqlite_path",
    "upgrade",
    "upgrade_async",
]


async def open_repository(
    url: str, *, migrate: bool, audit_key: AuditKey | None = None
) -> SqlRepository:
    """A ready SqlRepository for `url`: migrated first when `migrate`, then pinged.

    Raises ConfigError for an unusable URL and StorageError when the database cannot be
    reached (or migrated); no engine is left open on failure.
    """
    if migrate:
        await upgrade_async(url)
    repository = SqlRepository.connect(url, audit_key=audit_key)
    try:
        await repository.ping()
    except BaseException:
        await repository.close()
        raise
    return repository


def notifier_for(repository: SqlRepository) -> PostgresNotifier | InMemoryNotifier:
    """The notifier for the repository's database, not started yet.

    LISTEN/NOTIFY on PostgreSQL; on SQLite (one process) a notifier that reaches nobody.
    """
    if repository.engine.dialect.name == "postgresql":
        return PostgresNotifier(repository.engine)
    return InMemoryNotifier()
