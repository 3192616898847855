"""Memory: the resident set of one `signoff serve` replica whose database holds 100,000
pending requests, against the same replica on an empty database (the baseline).

The replica is exercised the way a busy one is: the scheduler's outbox and SLA sweeps run
(every 0.5 s here), the agent API lists pending requests page by page, /metrics counts the
queue by tier, and 1,000 new requests arrive. Reported: RSS after start-up, after the work,
and the peak (VmHWM).

    .venv/bin/python -m bench.memory [--pending 100000] [--backend postgres|sqlite|both]

Target: < 300 MB with 100,000 pending.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    API_KEY,
    clone_requests,
    closed_loop,
    postgres_schema,
    serve_signoff,
    signoff_config,
    table,
    vacuum_analyze,
    write_results,
)
from bot.core.clock import SystemClock
from bot.engine.machine import Engine
from bot.server.config import parse_config
from signoff_client.submission import Submission, SubmissionAction
from storage import SqlRepository, upgrade_async

TARGET_MB = 300.0
TIERS = [
    {"name": "junior", "sla": "1d", "reviewers": ["web:jan"]},
    {"name": "senior", "sla": "1d", "reviewers": ["web:sam"]},
]
ROUTING = {"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}}


async def seed(url: str, pending: int) -> None:
    await upgrade_async(url)
    if pending == 0:
        return
    repo = SqlRepository.connect(url)
    try:
        loaded = parse_config(
            {
                "agents": [{"id": "bench-bot", "key_sha256": "0" * 64}],
                "routing": ROUTING,
                "tiers": TIERS,
            },
            env={},
        )
        engine = Engine(repo, loaded.policy, loaded.settings.agent_specs(), SystemClock())
        template = await engine.submit(
            "bench-bot",
            Submission(
                action=SubmissionAction(
                    kind="refund", summary="Refund order 1", payload={"order": 1, "note": "x" * 200}
                ),
                confidence=0.3,
                context={"summary": "A customer asks for a refund", "conversation": ["hi"] * 5},
            ),
        )
        deadline = datetime.now(UTC) + timedelta(days=7)
        await clone_requests(
            repo.engine, str(template.response["id"]), pending - 1, deadline_at=deadline, prefix="m"
        )
    finally:
        await repo.close()
    await vacuum_analyze(url)


def exercise(url: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    listed = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        cursor: str | None = None
        for _ in range(50):
            params: dict[str, Any] = {"status": "pending", "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/requests", params=params).json()
            listed += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        for _ in range(5):
            assert client.get("/metrics").status_code == 200

    def body(i: int) -> dict[str, Any]:
        return {"action": {"kind": "refund", "summary": f"Refund {i}"}, "confidence": 0.3}

    submitted = asyncio.run(
        closed_loop(
            f"{url}/v1/requests", body, concurrency=8, duration=8, warmup=0, headers=headers
        )
    )
    return {"listed": listed, "submitted": submitted.ok}


def measure(name: str, database_url: str, workdir: Path) -> dict[str, Any]:
    config = signoff_config(
        workdir / f"{name}.yaml", database_url, routing=ROUTING, tiers=TIERS, web={"reviewers": {}}
    )
    env = {"SIGNOFF_SWEEP_INTERVAL": "0.5", "SIGNOFF_OUTBOX_INTERVAL": "0.5"}
    with serve_signoff(name, config, env=env) as server:
        time.sleep(3)
        idle, _ = server.rss_mb()
        work = exercise(server.url)
        time.sleep(3)
        after, peak = server.rss_mb()
    return {"idle_mb": idle, "after_mb": after, "peak_mb": peak, **work}


def main() -> None:
    parser = argparse.ArgumentParser(description="Resident memory of one replica")
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        for backend in ("postgres", "sqlite"):
            if args.backend not in (backend, "both"):
                continue
            found: dict[str, Any] = {}
            for label, pending in (("empty", 0), ("loaded", args.pending)):
                if backend == "postgres":
                    with postgres_schema("bench_memory") as url:
                        asyncio.run(seed(url, pending))
                        found[label] = measure(f"memory-{backend}-{label}", url, workdir)
                else:
                    url = f"sqlite:///{workdir / f'memory-{label}.db'}"
                    asyncio.run(seed(url, pending))
                    found[label] = measure(f"memory-{backend}-{label}", url, workdir)
                found[label]["pending"] = pending
            results[backend] = found
    rows = []
    for backend, found in results.items():
        for label in ("empty", "loaded"):
            m = found[label]
            rows.append(
                [backend, f"{m['pending']:,}", m["idle_mb"], m["after_mb"], m["peak_mb"], ""]
            )
        peak = found["loaded"]["peak_mb"]
        verdict = "met" if peak < TARGET_MB else "MISSED"
        rows.append([backend, "target", "", "", "", f"peak < {TARGET_MB:.0f} MB: {verdict}"])
    table(
        "Resident memory of one replica (MB)",
        ["database", "pending", "idle", "after work", "peak", ""],
        rows,
    )
    write_results("memory", {"config": vars(args), "target_mb": TARGET_MB, "results": results})


if __name__ == "__main__":
    main()
