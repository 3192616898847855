"""Fixtures of the repository contract suite: one repository per test on each backend."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.core.ports import Repository
from storage import InMemoryRepository, SqlRepository, upgrade, upgrade_async
from tests.contract._databases import NO_POSTGRES, POSTGRES_URL, postgres_schema

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; tests copy it, which is much faster than migrating each time."""
    path = tmp_path_factory.mktemp("template") / "signoff.db"
    upgrade(f"sqlite:///{path}")
    return path


@asynccontextmanager
async def migrated_database(kind: str, tmp_path: Path, template: Path) -> AsyncIterator[str]:
    """The URL of a freshly migrated, empty database of `kind` (sqlite or postgres)."""
    if kind == "sqlite":
        path = tmp_path / "signoff.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        await upgrade_async(url)
        yield url


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
async def repository(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Repository]:
    """Each backend in turn: the in-memory reference, SQLite, PostgreSQL (when configured)."""
    if request.param == "memory":
        yield InMemoryRepository()
        return
    async with migrated_database(request.param, tmp_path, sqlite_template) as url:
        repo = SqlRepository.connect(url)
        try:
            yield repo
        finally:
            await repo.close()


@pytest.fixture(params=["sqlite", POSTGRES])
async def sql_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """A migrated, empty SQL database of each kind."""
    async with migrated_database(request.param, tmp_path, sqlite_template) as url:
        yield url


@pytest.fixture
async def sql_repository(sql_url: str) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository.connect(sql_url)
    try:
        yield repo
    finally:
        await repo.close()
