"""`signoff serve --workers N`: N processes on one port, each a replica on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from bot.core.domain import sha256_hex
from tests.e2e.serve import run, serve

pytestmark = pytest.mark.slow

POSTGRES_URL = os.environ.get("SIGNOFF_TEST_POSTGRES_URL")


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database of its own, made empty for the test and dropped after it."""
    if not POSTGRES_URL:
        pytest.skip("SIGNOFF_TEST_POSTGRES_URL is not set")
    url = make_url(POSTGRES_URL)
    name = f"{url.database}_workers"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The parent pid is the 4th field, after the parenthesised command name.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def test_workers_need_postgresql(tmp_path: Path) -> None:
    done = run("serve", "--workers", "2", cwd=tmp_path)
    assert done.returncode == 2
    assert "--workers" in done.stderr and "PostgreSQL" in done.stderr


async def test_two_workers_share_one_port_and_one_database(
    tmp_path: Path, fresh_database: str
) -> None:
    key = f"sk_{secrets.token_hex(16)}"
    config = tmp_path / "signoff.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": fresh_database,
                "agents": [{"id": "bot", "key_sha256": sha256_hex(key)}],
            }
        )
    )
    with serve(tmp_path, config=config, extra=["--workers", "2"]) as server:
        pids = {
            int(p) for p in re.findall(r"\d+", server.line_matching(r"\(pids ([\d, ]+)\)").group(1))
        }
        assert len(pids) == 2 and children_of(server.process.pid) == pids
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
            body = {"action": {"kind": "invoice", "summary": "File it"}, "confidence": 0.3}
            answers = await asyncio.gather(
                *(api.post("/v1/requests", json=body) for _ in range(40))
            )
            assert [a.status_code for a in answers] == [201] * 40
            listed = (await api.get("/v1/requests", params={"limit": 100})).json()["items"]
            assert len({item["id"] for item in listed}) == 40
            assert (await api.get("/readyz")).status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert not running(pids)
    verified = run("audit", "verify", "--config", str(config), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
