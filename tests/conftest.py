"""Shared fixtures: the repository backends every engine test runs on."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.core.ports import Repository
from storage.memory import InMemoryRepository


def _worker_database() -> None:
    """Under pytest-xdist each worker gets a PostgreSQL database of its own (the given one's
    name plus the worker id, created when missing), because the tests reset the `public`
    schema of the database they use. Runs before any test module reads the URL."""
    url = os.environ.get("SIGNOFF_TEST_POSTGRES_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["SIGNOFF_TEST_POSTGRES_URL"] = parsed.set(database=name).render_as_string(
        hide_password=False
    )


_worker_database()
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
