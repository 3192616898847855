"""Shared pieces of the benchmarks: databases, seeding, processes, load, results.

Benchmarks are not tests: they print a table, write JSON to bench/results/ and exit 0 even
when a target is missed (the table says so). Each one measures Signoff and a bare baseline
in the same run, because absolute numbers on shared machines drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg
from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import UtcDateTime
from storage.sql import create_engine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SIGNOFF = str(Path(sys.executable).with_name("signoff"))
POSTGRES_URL = os.environ.get(
    "SIGNOFF_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/signoff_bench"
)
API_KEY = "sk_bench_" + secrets.token_hex(8)
KEY_SHA256 = hashlib.sha256(API_KEY.encode()).hexdigest()
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA=="


# -- output -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] + [""] * (len(headers) - len(row)) for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def write_results(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {"benchmark": name, "at": stamp, "machine": machine(), **data}
    path = RESULTS / f"{name}-{stamp}.json"
    text_ = json.dumps(payload, indent=2, default=str)
    path.write_text(text_)
    (RESULTS / f"{name}-latest.json").write_text(text_)
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- databases ------------------------------------------------------------------------------


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_postgres_database(url: str = POSTGRES_URL) -> None:
    """Create the bench database when it does not exist yet (needs CREATEDB)."""
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,))
        if found.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{target.database}"')


@contextlib.contextmanager
def postgres_schema(prefix: str, url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh schema in the bench database; yields a URL whose connections live in it."""
    ensure_postgres_database(url)
    schema = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_plain(url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def postgres_dsn(url: str) -> str:
    """A libpq URL for psycopg or procrastinate from a SQLAlchemy one."""
    return _plain(url)


async def vacuum_analyze(url: str) -> None:
    if make_url(url).get_backend_name() == "postgresql":
        async with await psycopg.AsyncConnection.connect(_plain(url), autocommit=True) as conn:
            await conn.execute("VACUUM ANALYZE")
        return
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def clone_requests(
    engine: AsyncEngine,
    template_id: str,
    count: int,
    *,
    deadline_at: datetime | None,
    prefix: str,
) -> None:
    """Copy one stored request `count` times in one INSERT ... SELECT (ids `req_<prefix>...`),
    with its start tier move, giving each copy `deadline_at`. Fast: a million rows take
    seconds on PostgreSQL and under a minute on SQLite."""
    postgres = engine.dialect.name == "postgresql"
    series = (
        "generate_series(1, :n) AS g(x)"
        if postgres
        else "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :n)"
        " SELECT x FROM s) AS g"
    )
    pad = "lpad(CAST(g.x AS text), 20, '0')" if postgres else "printf('%020d', g.x)"
    columns = (
        "agent_id, thread_id, action, modified_action, confidence, status, lane, risk, "
        "reasons, tier, approvals_required, review, review_status, amount, currency, "
        "reversible, domain, sentiment, requested_by, callback_url, labels, context, outcome, "
        "created_at, updated_at, decided_at, remind_at, version"
    )
    new_id = f"'req_{prefix}' || {pad}"
    insert_requests = text(
        f"INSERT INTO requests (id, deadline_at, {columns}) "
        f"SELECT {new_id}, :deadline, {', '.join('t.' + c.strip() for c in columns.split(','))} "
        f"FROM requests t, {series} WHERE t.id = :template"
    ).bindparams(bindparam("deadline", type_=UtcDateTime()))
    insert_moves = text(
        "INSERT INTO tier_moves (request_id, seq, from_tier, to_tier, at, reason) "
        f"SELECT {new_id}, m.seq, m.from_tier, m.to_tier, m.at, m.reason "
        f"FROM tier_moves m, {series} WHERE m.request_id = :template"
    )
    async with engine.begin() as conn:
        await conn.execute(
            insert_requests, {"n": count, "template": template_id, "deadline": deadline_at}
        )
        await conn.execute(insert_moves, {"n": count, "template": template_id})


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process and its worker processes used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in _process_tree(self.popen.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident set in MB, from /proc."""
        status = Path(f"/proc/{self.popen.pid}/status").read_text()
        values = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        }
        return values["VmRSS"] / 1024, values["VmHWM"] / 1024


@contextlib.contextmanager
def process(
    name: str,
    args: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    health: str = "/healthz",
    logdir: Path | None = None,
    started: tuple[str, int] | None = None,
) -> Iterator[Process]:
    """Run `args` (which must serve HTTP on `port`) until the block ends. `started`: a line
    its log must hold so many times before the run begins (every worker of `--workers N`
    says it is running: one that starts late would otherwise get no keep-alive connection
    of the load generator for the whole run)."""
    logdir = logdir or RESULTS / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    full_env.update(env or {})
    with log.open("wb") as out:
        popen = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        proc = Process(name, f"http://127.0.0.1:{port}", popen, log)
        try:
            deadline = time.monotonic() + 60
            while True:
                if popen.poll() is not None:
                    raise RuntimeError(f"{name} exited {popen.returncode}:\n{log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(proc.url + health, timeout=1).status_code == 200 and (
                        started is None or log.read_text().count(started[0]) >= started[1]
                    ):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not come up:\n{log.read_text()}")
                time.sleep(0.1)
            yield proc
        finally:
            popen.terminate()
            try:
                popen.wait(15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def signoff_config(path: Path, database_url: str, **extra: Any) -> Path:
    """A config file with one agent (`bench-bot`, key `API_KEY`) and the given sections."""
    agent: dict[str, Any] = {"id": "bench-bot", "key_sha256": KEY_SHA256}
    agent.update(extra.pop("agent", {}))
    config = {"database_url": database_url, "agents": [agent], **extra}
    path.write_text(json.dumps(config))
    return path


def _process_tree(root: int) -> list[int]:
    """`root` and every process below it (a `--workers N` server's workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += children.get(pid, [])
    return found


def serve_signoff(
    name: str, config: Path, *, env: Mapping[str, str] | None = None, workers: int = 1
) -> contextlib.AbstractContextManager[Process]:
    port = free_port()
    extra = ["--workers", str(workers)] if workers > 1 else []
    return process(
        name,
        [SIGNOFF, "serve", "--config", str(config), "--port", str(port), *extra],
        port=port,
        env={"SIGNOFF_LOG_LEVEL": "WARNING", **(env or {})},
        health="/readyz",
        started=("is running at", workers),
    )


def serve_module(
    name: str, module: str, *args: str, env: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[Process]:
    port = free_port()
    return process(
        name,
        [sys.executable, "-m", module, "--port", str(port), *args],
        port=port,
        env=env,
    )


# -- load -----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def closed_loop(
    url: str,
    make_body: Callable[[int], Any],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    headers: Mapping[str, str] | None = None,
    expect: int = 201,
) -> LoadResult:
    """`concurrency` clients each POST back to back; counts what finished inside the window."""
    result = LoadResult()
    counter = iter(range(10**9))
    started = time.perf_counter()
    window = (started + warmup, started + warmup + duration)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=dict(headers or {})) as session:

        async def client() -> None:
            while (now := time.perf_counter()) < window[1]:
                body = make_body(next(counter))
                try:
                    async with session.post(url, json=body) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 0
                done = time.perf_counter()
                if window[0] <= now and done <= window[1]:
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if status == expect:
                        result.ok += 1
                        result.latencies.append(done - now)
                    else:
                        result.errors += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = duration
    return result


async def open_loop(
    rate: float, duration: float, send: Callable[[int], Coroutine[Any, Any, None]]
) -> int:
    """Start `send(i)` at a steady `rate` per second (not waiting for answers); returns count."""
    count = int(rate * duration)
    started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    return count
