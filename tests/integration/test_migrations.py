"""`alembic upgrade head` must build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

import storage
from bot.core.errors import ConfigError, StorageError
from storage import upgrade, upgrade_async
from storage.migrate import MIGRATIONS, alembic_config
from storage.models import Base
from storage.sql import create_engine
from tests.contract._databases import NO_POSTGRES, POSTGRES_URL, postgres_schema

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'signoff.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        yield url


def _schema_report(connection: Connection) -> dict[str, Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    inspector = inspect(connection)
    predicates = {
        index["name"]: index.get("dialect_options", {})
        for index in inspector.get_indexes("requests")
        if index["name"] and index["name"].endswith("_pending")
    }
    return {
        "diff": compare_metadata(context, Base.metadata),
        "revision": context.get_current_revision(),
        "tables": sorted(inspector.get_table_names()),
        "partial": predicates,
        "head": connection.execute(text("SELECT id, seq, hash FROM audit_head")).all(),
    }


async def _report(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_schema_report)
    finally:
        await engine.dispose()


async def test_upgrade_head_builds_exactly_the_models(empty_url: str) -> None:
    await upgrade_async(empty_url)

    report = await _report(empty_url)

    assert report["diff"] == []
    assert report["revision"] == ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert report["tables"] == sorted([*Base.metadata.tables, "alembic_version"])
    # Autogenerate does not compare index predicates, so check the partial ones directly.
    assert set(report["partial"]) == {"ix_requests_deadline_pending", "ix_requests_remind_pending"}
    for options in report["partial"].values():
        where = str(options.get("postgresql_where") or options.get("sqlite_where"))
        assert "status" in where
        assert "pending" in where
    assert report["head"] == [(1, 0, "0" * 64)]


async def test_upgrade_twice_is_a_no_op(empty_url: str) -> None:
    await upgrade_async(empty_url)
    await upgrade_async(empty_url)

    assert (await _report(empty_url))["diff"] == []


async def test_downgrade_to_base_removes_everything(empty_url: str) -> None:
    await upgrade_async(empty_url)
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()

    assert tables == ["alembic_version"]
    await upgrade_async(empty_url)
    assert (await _report(empty_url))["diff"] == []


def test_sync_upgrade_works_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed package has no repo root to run from: migrations resolve next to the code.
    monkeypatch.chdir(tmp_path)
    assert MIGRATIONS.parent == Path(storage.__file__).resolve().parent

    upgrade("sqlite:///./here.db")

    assert (tmp_path / "here.db").exists()


async def test_sync_upgrade_refuses_to_run_inside_an_event_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="upgrade_async"):
        upgrade(f"sqlite:///{tmp_path / 'x.db'}")


def test_alembic_cli_upgrades_with_the_shipped_ini(tmp_path: Path) -> None:
    target = tmp_path / "cli.db"
    alembic = [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "storage" / "alembic.ini")]
    env = {**os.environ, "PYTHONWARNINGS": "error"}

    offline = subprocess.run(
        [*alembic, "-x", f"url=sqlite:///{target}", "upgrade", "head", "--sql"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    online = subprocess.run(
        [*alembic, "-x", f"url=sqlite:///{target}", "upgrade", "head"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )

    # Offline mode prints the DDL and touches no database; online mode then migrates.
    assert "CREATE TABLE requests" in offline.stdout
    assert online.returncode == 0
    assert asyncio.run(_report(f"sqlite:///{target}"))["diff"] == []


@pytest.mark.parametrize("url", ["mysql://root@localhost/signoff", "::not a url::"])
def test_an_unsupported_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="database_url"):
        upgrade(url)


def test_an_unreachable_database_is_a_storage_error_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot migrate the database") as raised:
        upgrade("postgresql://postgres:s3cret@127.0.0.1:1/test")
    assert time.monotonic() - started < 5
    assert "s3cret" not in str(raised.value)


def test_a_sqlite_file_in_a_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="unable to open database file"):
        upgrade(f"sqlite:///{tmp_path / 'missing' / 'signoff.db'}")
