"""Shared fixtures: the repository backends every engine test runs on."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.core.ports import Repository
from storage.memory import InMemoryRepository

POSTGRES_URL = os.environ.get("SIGNOFF_TEST_POSTGRES_URL")
BACKENDS = ["memory", "sqlite", "postgres"]

RepoFactory = Callable[[], Awaitable[Repository]]


async def reset_postgres(url: str) -> None:
    """Empty the test database so every test starts from a fresh migration."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as conn:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        await conn.execute("CREATE SCHEMA public")


def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'signoff.db'}"
    assert POSTGRES_URL is not None
    return POSTGRES_URL


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres" and not POSTGRES_URL:
        pytest.skip("SIGNOFF_TEST_POSTGRES_URL is not set")
    return name


@pytest.fixture
async def repo_factory(backend: str, tmp_path: Path) -> AsyncIterator[RepoFactory]:
    """Opens repositories on one shared store: a second call plays a restarted process."""
    opened: list[Repository] = []
    memory = InMemoryRepository()
    if backend == "postgres":
        assert POSTGRES_URL is not None
        await reset_postgres(POSTGRES_URL)

    async def make() -> Repository:
        if backend == "memory":
            return memory
        from storage import open_repository

        repo = await open_repository(database_url(backend, tmp_path), migrate=True)
        opened.append(repo)
        return repo

    yield make
    for repo in opened:
        await repo.close()


@pytest.fixture
async def repo(repo_factory: RepoFactory) -> Repository:
    return await repo_factory()
