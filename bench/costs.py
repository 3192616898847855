"""What one submit, vote, escalation and card delivery costs on PostgreSQL, for
docs/capacity.md: CPU milliseconds of the Signoff process, SQL statements (an executemany
counts once: one round trip), and bytes of write-ahead log (what PostgreSQL writes,
replicates and archives for it).

In process, on the real `Engine`, `OutboxWorker` and `SqlRepository`, with a chat channel
that answers at once (so a delivery's cost is Signoff's own, not the platform's). Each
operation runs `--count` times from 32 concurrent callers, as a replica under load would
(submits and votes group-commit); figures are per operation.

    .venv/bin/python -m bench.costs [--count 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event

from adapters.resume import WebhookResumeTarget
from bench._common import postgres_dsn, postgres_schema, table, write_results
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus, Verdict
from bot.core.views import CardView
from bot.engine.machine import Engine
from bot.engine.metrics import Metrics
from bot.engine.outbox import OutboxWorker
from bot.server.config import parse_config
from signoff_client.submission import Submission, SubmissionAction
from storage import SqlRepository, upgrade_async

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALLERS = 32


class InstantChannel:
    """A chat channel that posts and edits at once (no platform latency or limit)."""

    name = "slack"

    def __init__(self) -> None:
        self.posted = 0

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        self.posted += 1
        return {"channel": view.target, "ts": str(self.posted), "target": view.target}

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None


@dataclass
class Cost:
    operations: int
    cpu_s: float
    wall_s: float
    statements: int
    wal_bytes: int

    def row(self, name: str) -> list[Any]:
        n = self.operations
        return [
            name,
            n,
            self.cpu_s / n * 1000,
            self.statements / n,
            self.wal_bytes / n,
            n / self.wall_s,
        ]


def config() -> Any:
    return parse_config(
        {
            "agents": [{"id": "bench-bot", "key_sha256": "0" * 64}],
            "routing": {"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}},
            "tiers": [
                {"name": "junior", "sla": "1h", "slack_channel": "C1", "reviewers": ["slack:U1"]},
                {"name": "senior", "sla": "1h", "slack_channel": "C2", "reviewers": ["slack:U2"]},
            ],
        },
        env={},
    )


async def run(url: str, count: int) -> dict[str, Cost]:
    await upgrade_async(url)
    repo = SqlRepository.connect(url)
    statements = [0]

    def counted(*_: Any) -> None:
        statements[0] += 1

    event.listen(repo.engine.sync_engine, "before_cursor_execute", counted)
    clock = ManualClock(T0)
    loaded = config()
    metrics = Metrics()
    engine = Engine(
        repo,
        loaded.policy,
        loaded.settings.agent_specs(),
        clock,
        channels=frozenset({"slack"}),
        metrics=metrics,
    )
    worker = OutboxWorker(
        repo,
        loaded.policy,
        clock,
        channels={"slack": InstantChannel()},
        resume=WebhookResumeTarget(),
        secrets=lambda _: None,
        metrics=metrics,
        public_url="http://signoff.test",
    )
    dsn = postgres_dsn(url)

    def wal() -> int:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0]) if row else 0

    async def measure(work: Callable[[], Awaitable[None]], operations: int) -> Cost:
        statements[0] = 0
        wal_before = await asyncio.to_thread(wal)
        cpu, wall = time.process_time(), time.perf_counter()
        await work()
        cost = Cost(
            operations,
            time.process_time() - cpu,
            time.perf_counter() - wall,
            statements[0],
            0,
        )
        cost.wal_bytes = await asyncio.to_thread(wal) - wal_before
        return cost

    ids: list[str] = []

    async def submits() -> None:
        queue = list(range(count))

        async def caller() -> None:
            while queue:
                n = queue.pop()
                result = await engine.submit(
                    "bench-bot",
                    Submission(
                        action=SubmissionAction(
                            kind="refund", summary=f"Refund order {n}", payload={"order": n}
                        ),
                        confidence=0.3,
                    ),
                )
                ids.append(str(result.response["id"]))

        await asyncio.gather(*(caller() for _ in range(CALLERS)))

    async def deliveries() -> None:
        while await worker.drain(batch=200):
            pass

    async def escalations() -> None:
        clock.advance(timedelta(hours=2))
        while await engine.sweep(limit=500):
            pass

    async def votes() -> None:
        queue = list(ids)

        async def caller() -> None:
            while queue:
                await engine.vote(queue.pop(), "slack:U2", Verdict.APPROVE, channel="slack")

        await asyncio.gather(*(caller() for _ in range(CALLERS)))

    try:
        found = {"submit": await measure(submits, count)}
        posts = await repo.count_outbox(OutboxKind.POST_CARD, OutboxStatus.PENDING)
        found["card delivery (post)"] = await measure(deliveries, posts)
        found["escalation (sweep)"] = await measure(escalations, count)
        await deliveries()
        found["vote (approve)"] = await measure(votes, count)
        return found
    finally:
        await repo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Per-operation costs on PostgreSQL")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with postgres_schema("bench_costs") as url:
        found = asyncio.run(run(url, args.count))
    table(
        "Cost per operation, PostgreSQL, in process (32 concurrent callers)",
        ["operation", "count", "CPU ms", "statements", "WAL bytes", "per second"],
        [cost.row(name) for name, cost in found.items()],
    )
    write_results(
        "costs",
        {"config": vars(args), "results": {name: vars(cost) for name, cost in found.items()}},
    )


if __name__ == "__main__":
    main()
