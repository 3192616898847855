"""Outbox delivery throughput: Signoff's outbox worker delivering signed webhooks against
procrastinate (a dedicated PostgreSQL job queue) running the same delivery as a task, on
the same database, to the same zero-latency receiver in another process.

Both drain a backlog of N deliveries that is already queued: Signoff's rows are seeded by
bulk SQL, procrastinate's jobs by `batch_defer_async`. Each side runs with 1 and with 4
concurrent workers in one process (Signoff: workers with their own lease owner, as
replicas would be; procrastinate: `concurrency=4`). Every delivery is the same signed POST
(`WebhookResumeTarget`), so the difference is the queue's own work: claim, record, audit.

    .venv/bin/python -m bench.outbox_throughput [--jobs 3000]

Needs the bench extra (`pip install -e '.[bench]'`). Target: Signoff >= 50% of procrastinate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

import aiohttp
from sqlalchemy import text

from adapters.resume import WebhookResumeTarget
from bench._common import (
    WEBHOOK_SECRET,
    Process,
    postgres_dsn,
    postgres_schema,
    serve_module,
    table,
    write_results,
)
from bot.core.clock import SystemClock
from bot.core.ports import WebhookDelivery
from bot.engine.machine import Engine
from bot.engine.metrics import Metrics
from bot.engine.outbox import OutboxWorker
from bot.server.config import parse_config
from signoff_client.submission import Submission, SubmissionAction
from storage import SqlRepository, upgrade_async

TARGET_RATIO = 0.5


def config(callback: str) -> Any:
    return parse_config(
        {
            "agents": [
                {
                    "id": "bench-bot",
                    "key_sha256": "0" * 64,
                    "callback_url": callback,
                    "webhook_secret_env": "BENCH_SECRET",
                }
            ],
        },
        env={},
    )


async def received(sink: Process) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{sink.url}/_records") as answer:
        count: int = (await answer.json())["count"]
        return count


async def signoff_run(url: str, sink: Process, jobs: int, workers: int) -> dict[str, Any]:
    await upgrade_async(url)
    repo = SqlRepository.connect(url)
    loaded = config(f"{sink.url}/resume")
    clock = SystemClock()
    engine = Engine(repo, loaded.policy, loaded.settings.agent_specs(), clock)
    resume = WebhookResumeTarget()
    try:
        done = await engine.submit(
            "bench-bot",
            Submission(
                action=SubmissionAction(kind="refund", summary="Refund 1", payload={"o": 1}),
                confidence=0.95,
            ),
        )
        request_id = str(done.response["id"])
        async with repo.engine.begin() as conn:
            # The one webhook the submit queued, copied to a backlog of `jobs` rows.
            await conn.execute(
                text(
                    "INSERT INTO outbox (id, kind, request_id, agent_id, payload, created_at,"
                    " next_attempt_at, attempts, status, last_error, lease_owner,"
                    " lease_expires_at)"
                    " SELECT 'msg_bench' || lpad(CAST(g AS text), 17, '0'), kind, request_id,"
                    " agent_id, payload, created_at, next_attempt_at, 0, 'pending', NULL, NULL,"
                    " NULL FROM outbox, generate_series(1, :n) AS g WHERE request_id = :rid"
                ),
                {"n": jobs - 1, "rid": request_id},
            )
        await repo.engine.dispose()  # start the timed part with a cold pool, like procrastinate
        before = await received(sink)
        started = time.perf_counter()
        pool = [
            OutboxWorker(
                repo,
                loaded.policy,
                clock,
                channels={},
                resume=resume,
                secrets=lambda _agent: WEBHOOK_SECRET,
                metrics=Metrics(),
                public_url="http://127.0.0.1",
            )
            for _ in range(workers)
        ]
        counts = await asyncio.gather(*(w.drain(batch=50, max_rounds=10**6) for w in pool))
        elapsed = time.perf_counter() - started
        delivered = await received(sink) - before
        return {"jobs": sum(counts), "delivered": delivered, "seconds": elapsed}
    finally:
        await resume.aclose()
        await repo.close()


async def procrastinate_run(url: str, sink: Process, jobs: int, workers: int) -> dict[str, Any]:
    import procrastinate

    dsn = postgres_dsn(url)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    resume = WebhookResumeTarget()
    body = {"type": "request.resolved", "timestamp": "2026-01-05T09:00:00Z", "data": {}}

    @app.task(name="deliver")
    async def deliver(delivery_id: str, url: str, body: dict[str, Any]) -> None:
        attempt = await resume.deliver(
            WebhookDelivery(id=delivery_id, url=url, body=body, secret=WEBHOOK_SECRET, attempt=1)
        )
        if not attempt.ok:
            raise RuntimeError(f"delivery failed: {attempt.error or attempt.status_code}")

    try:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            target = f"{sink.url}/resume"
            batch: list[dict[str, Any]] = [
                {"delivery_id": f"msg_{i}", "url": target, "body": {**body, "data": {"i": i}}}
                for i in range(jobs)
            ]
            await deliver.batch_defer_async(*batch)
        before = await received(sink)
        started = time.perf_counter()
        async with app.open_async():
            await app.run_worker_async(
                concurrency=workers, wait=False, install_signal_handlers=False
            )
        elapsed = time.perf_counter() - started
        delivered = await received(sink) - before
        return {"jobs": jobs, "delivered": delivered, "seconds": elapsed}
    finally:
        await resume.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Outbox delivery throughput vs procrastinate")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    # procrastinate warns that the benchmark defines its App in __main__; that is deliberate.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    results: dict[str, Any] = {}
    with serve_module("webhook-sink", "bench._servers", "sink") as sink:
        for workers in args.workers:
            found: dict[str, Any] = {}
            with postgres_schema("bench_outbox") as url:
                found["signoff"] = asyncio.run(signoff_run(url, sink, args.jobs, workers))
            with postgres_schema("bench_procrastinate") as url:
                found["procrastinate"] = asyncio.run(
                    procrastinate_run(url, sink, args.jobs, workers)
                )
            for side in found.values():
                side["per_s"] = side["delivered"] / side["seconds"]
            found["ratio"] = found["signoff"]["per_s"] / found["procrastinate"]["per_s"]
            results[str(workers)] = found
    rows = []
    for workers, found in results.items():
        for name in ("procrastinate", "signoff"):
            side = found[name]
            rows.append([workers, name, side["delivered"], side["seconds"], side["per_s"], ""])
        verdict = "met" if found["ratio"] >= TARGET_RATIO else "MISSED"
        rows.append([workers, "ratio", "", "", "", f"{found['ratio']:.0%} ({verdict})"])
    table(
        f"Webhook deliveries from a backlog of {args.jobs:,} (PostgreSQL), target >= 50%",
        ["workers", "queue", "delivered", "seconds", "per s", "signoff/procrastinate"],
        rows,
    )
    write_results(
        "outbox_throughput",
        {"config": vars(args), "target_ratio": TARGET_RATIO, "results": results},
    )


if __name__ == "__main__":
    main()
