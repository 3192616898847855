"""`signoff serve --workers N`: N processes on one port, each a replica on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
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


def _worker_config(tmp_path: Path, database: str) -> tuple[Path, str]:
    key = f"sk_{secrets.token_hex(16)}"
    config = tmp_path / "signoff.yaml"
    config.write_text(
        yaml.safe_dump(
            {"database_url": database, "agents": [{"id": "bot", "key_sha256": sha256_hex(key)}]}
        )
    )
    return config, key


def _socket_inodes(pid: int) -> set[int]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                found.add(int(target[8:-1]))
    return found


def _tcp(port: int) -> list[tuple[str, int]]:
    """(state, inode) of every IPv4 TCP socket whose local port is `port`."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            rows.append((fields[3], int(fields[9])))
    return rows


LISTEN, ESTABLISHED = "0A", "01"


async def test_keep_alive_connections_opened_at_once_spread_over_the_workers(
    tmp_path: Path, fresh_database: str
) -> None:
    config, key = _worker_config(tmp_path, fresh_database)
    with serve(tmp_path, config=config, extra=["--workers", "2"]) as server:
        pids = set(children_of(server.process.pid))
        # Each worker listens on a socket of its own (SO_REUSEPORT) ...
        port = int(server.url.rsplit(":", 1)[1])
        listening = {inode for state, inode in _tcp(port) if state == LISTEN}
        owned = [_socket_inodes(pid) & listening for pid in pids]
        assert len(listening) == 2 and all(len(inodes) == 1 for inodes in owned), owned
        assert owned[0] != owned[1]
        for _ in range(100):
            if sum("is running at" in line for line in server.lines) == 2:
                break
            await asyncio.sleep(0.1)
        # ... so a burst of new keep-alive connections (as a load generator or an agent's
        # pool opens them) is spread by the kernel instead of taken by whichever woke first.
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, limits=limits) as api:
            answers = await asyncio.gather(*(api.get("/v1/agents/bot") for _ in range(32)))
            assert {a.status_code for a in answers} == {200}
            established = {inode for state, inode in _tcp(port) if state == ESTABLISHED}
            held = {pid: len(_socket_inodes(pid) & established) for pid in pids}
        assert sum(held.values()) >= 16 and min(held.values()) >= 4, held


def test_a_second_server_on_a_port_in_use_is_refused(tmp_path: Path, fresh_database: str) -> None:
    config, _ = _worker_config(tmp_path, fresh_database)
    with serve(tmp_path, config=config, extra=["--workers", "2"]) as server:
        port = server.url.rsplit(":", 1)[1]
        second = run(
            "serve", "--config", str(config), "--port", port, "--workers", "2", cwd=tmp_path
        )
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
