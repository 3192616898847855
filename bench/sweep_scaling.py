"""Sweep scaling: one SLA sweep over 1,000 overdue requests among 10,000 pending, against the
same sweep among 1,000,000 pending. The cost should follow the overdue items, not the queue.

Rows are seeded by bulk SQL (one stored request copied with INSERT ... SELECT), then the
real `Engine.sweep` escalates the overdue ones (tier move, card post rows, audit events)
until all 1,000 moved up. Three rounds per size, each over a fresh group of 1,000; the
median counts.

Escalations against submits, in the same run and process: before the sweeps of the small
size, `SUBMITS` submits go through the real `Engine.submit` from 32 concurrent callers
(each a new request with its start tier move, outbox row and audit events, group-committed
as `signoff serve` does); escalations per second are 1,000 over the median sweep.

    .venv/bin/python -m bench.sweep_scaling [--backend postgres|sqlite|both]

Targets: time(1,000,000) / time(10,000) <= 1.5; escalations/s >= 1.0x submits/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import clone_requests, postgres_schema, table, vacuum_analyze, write_results
from bot.core.clock import ManualClock
from bot.engine.machine import Engine
from bot.server.config import parse_config
from signoff_client.submission import Submission, SubmissionAction
from storage import SqlRepository, upgrade_async

TARGET_RATIO = 1.5
TARGET_THROUGHPUT = 1.0
OVERDUE = 1_000
SUBMITS = 1_000
SUBMITTERS = 32
ROUNDS = 3
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROUND_GAP = timedelta(minutes=10)


def config() -> Any:
    return parse_config(
        {
            "agents": [{"id": "bench-bot", "key_sha256": "0" * 64}],
            "routing": {"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}},
            "tiers": [
                {"name": "junior", "sla": "1h", "reviewers": ["web:jan"]},
                {"name": "senior", "sla": "1h", "reviewers": ["web:sam"]},
                {"name": "manager", "sla": "1h", "reviewers": ["web:max"]},
            ],
        },
        env={},
    )


async def seed(repo: SqlRepository, engine: Engine, pending: int) -> None:
    template = await engine.submit(
        "bench-bot",
        Submission(
            action=SubmissionAction(kind="refund", summary="Refund order 1", payload={"order": 1}),
            confidence=0.3,
        ),
    )
    template_id = str(template.response["id"])
    # Each round's group falls due 30 s before that round's sweep; the rest wait for weeks.
    for round_no in range(ROUNDS):
        due = T0 + round_no * ROUND_GAP - timedelta(seconds=30)
        await clone_requests(
            repo.engine, template_id, OVERDUE, deadline_at=due, prefix=f"o{round_no}"
        )
    rest = pending - ROUNDS * OVERDUE - 1
    await clone_requests(
        repo.engine, template_id, rest, deadline_at=T0 + timedelta(days=30), prefix="p"
    )


async def submits_per_second(engine: Engine) -> float:
    """`SUBMITS` submits from `SUBMITTERS` concurrent callers, per second of wall time."""
    queue = list(range(SUBMITS))

    async def caller() -> None:
        while queue:
            n = queue.pop()
            await engine.submit(
                "bench-bot",
                Submission(
                    action=SubmissionAction(
                        kind="refund", summary=f"Refund order {n}", payload={"order": n}
                    ),
                    confidence=0.3,
                ),
            )

    begun = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(SUBMITTERS)))
    return SUBMITS / (time.perf_counter() - begun)


async def measure(url: str, pending: int, with_submits: bool) -> dict[str, Any]:
    await upgrade_async(url)
    repo = SqlRepository.connect(url)
    clock = ManualClock(T0 - timedelta(minutes=5))
    loaded = config()
    engine = Engine(repo, loaded.policy, loaded.settings.agent_specs(), clock)
    try:
        started = time.perf_counter()
        await seed(repo, engine, pending)
        await vacuum_analyze(url)
        seeded = time.perf_counter() - started
        # Submitted items fall due weeks later: the sweeps below never see them.
        submit_rate = await submits_per_second(engine) if with_submits else None
        rounds = []
        for round_no in range(ROUNDS):
            clock.advance(T0 + round_no * ROUND_GAP - clock.now())
            begun = time.perf_counter()
            moved = 0
            while moved < OVERDUE:
                step = await engine.sweep(limit=200)
                if step == 0:
                    break
                moved += step
            rounds.append(time.perf_counter() - begun)
            assert moved == OVERDUE, f"round {round_no} moved {moved}"
        found: dict[str, Any] = {"pending": pending, "seed_s": seeded, "rounds_s": rounds}
        if submit_rate is not None:
            found["submits_per_s"] = submit_rate
        return found
    finally:
        await repo.close()


async def run_backend(backend: str, workdir: Path, sizes: list[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for size in sizes:
        first = size == sizes[0]
        if backend == "postgres":
            with postgres_schema("bench_sweep") as url:
                found[str(size)] = await measure(url, size, first)
        else:
            path = workdir / f"sweep-{size}.db"
            found[str(size)] = await measure(f"sqlite:///{path}", size, first)
            await asyncio.to_thread(_remove, workdir, f"sweep-{size}.db*")
        rounds = found[str(size)]["rounds_s"]
        found[str(size)]["median_s"] = statistics.median(rounds)
        print(f"  {backend} {size:>9,} pending: sweeps {', '.join(f'{r:.2f}s' for r in rounds)}")
    small, large = (found[str(s)]["median_s"] for s in sizes)
    found["ratio"] = large / small
    found["escalations_per_s"] = OVERDUE / small
    found["submits_per_s"] = found[str(sizes[0])]["submits_per_s"]
    found["throughput_ratio"] = found["escalations_per_s"] / found["submits_per_s"]
    return found


def _remove(directory: Path, pattern: str) -> None:
    for leftover in directory.glob(pattern):
        leftover.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description="SLA sweep cost against queue size")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    sizes = [args.small, args.large]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        for backend in ("postgres", "sqlite"):
            if args.backend in (backend, "both"):
                results[backend] = asyncio.run(run_backend(backend, Path(tmp), sizes))
    rows = []
    for backend, found in results.items():
        for size in sizes:
            entry = found[str(size)]
            rows.append(
                [backend, f"{size:,}", OVERDUE, entry["median_s"] * 1000, entry["seed_s"], ""]
            )
        verdict = "met" if found["ratio"] <= TARGET_RATIO else "MISSED"
        rows.append([backend, "ratio", "", "", "", f"{found['ratio']:.2f} ({verdict})"])
    table(
        f"SLA sweep of {OVERDUE:,} overdue requests (median of {ROUNDS}), target ratio <= 1.5",
        ["database", "pending", "overdue", "sweep ms", "seed s", "large/small"],
        rows,
    )
    table(
        f"Escalations against submits, same process (target >= {TARGET_THROUGHPUT:.1f}x)",
        ["database", "escalations/s", "submits/s", "ratio"],
        [
            [
                backend,
                found["escalations_per_s"],
                found["submits_per_s"],
                f"{found['throughput_ratio']:.2f}x "
                f"({'met' if found['throughput_ratio'] >= TARGET_THROUGHPUT else 'MISSED'})",
            ]
            for backend, found in results.items()
        ],
    )
    write_results(
        "sweep_scaling",
        {
            "config": vars(args),
            "target_ratio": TARGET_RATIO,
            "target_throughput": TARGET_THROUGHPUT,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
