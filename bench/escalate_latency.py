"""Time to escalate: submit -> card received by a zero-latency fake Slack, under a steady
open-loop load (default 50 requests/s), on PostgreSQL and SQLite.

The baseline is the floor of the same path without Signoff: the load generator posts the
card to the same fake Slack itself, at the same rate. The first 3 s of load warm up the
servers and are not counted. Signoff runs as one replica and, on
PostgreSQL, also as two replicas with the load split between them (`--replicas`).

    .venv/bin/python -m bench.escalate_latency [--rate 50] [--seconds 20]

Target: p99 < 250 ms (the seed's target is 10 s, its warning 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import (
    API_KEY,
    Process,
    open_loop,
    percentile,
    postgres_schema,
    serve_module,
    signoff_config,
    table,
    write_results,
)

TARGET_P99_MS = 250.0
WARMUP = 3.0


async def drive(
    replicas: list[Process], sink: Process, rate: float, seconds: float
) -> dict[str, Any]:
    """Send at `rate`, round-robin over `replicas` (none: the baseline); returns latencies
    from send to arrival at the fake Slack."""
    sent: dict[str, float] = {}
    numbers = itertools.count()
    failures = 0
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def submit(i: int) -> None:
            nonlocal failures
            body = {
                "action": {"kind": "refund", "summary": f"Refund order {i}", "payload": {"i": i}},
                "confidence": 0.3,
            }
            started = time.time()
            if not replicas:
                # Baseline: the client posts the card itself (an id it makes up).
                rid = f"req_{next(numbers):026d}"
                sent[rid] = started
                async with session.post(
                    f"{sink.url}/api/chat.postMessage",
                    json={"channel": "C0BENCH", "text": rid},
                ) as response:
                    await response.read()
                return
            target = replicas[i % len(replicas)]
            async with session.post(f"{target.url}/v1/requests", json=body) as response:
                answer = await response.json()
            if response.status != 201:
                failures += 1
                return
            sent[answer["id"]] = started

        # Warm-up (discarded): the first requests open pool connections, fill statement
        # caches and start the Slack client; steady state is what the target is about.
        await open_loop(rate, WARMUP, submit)
        await asyncio.sleep(1.0)
        sent.clear()
        count = await open_loop(rate, seconds, submit)
        # Let the outbox catch up, then read what arrived.
        await asyncio.sleep(2.0)
        async with session.get(f"{sink.url}/_records") as response:
            records = await response.json()
    arrivals: dict[str, float] = records["arrivals"]
    latencies = [arrivals[rid] - at for rid, at in sent.items() if rid in arrivals]
    return {
        "sent": count,
        "failures": failures,
        "arrived": len(latencies),
        "missing": len(sent) - len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
    }


def run_backend(
    backend: str, database_url: str, workdir: Path, args: argparse.Namespace, replicas: int
) -> dict[str, Any]:
    config = signoff_config(
        workdir / f"signoff-{backend}.yaml",
        database_url,
        routing={"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}},
        tiers=[
            {"name": "junior", "sla": "1h", "slack_channel": "C0BENCH", "reviewers": ["slack:U0A"]}
        ],
        web={"reviewers": {}},
    )
    with serve_module(f"fake-slack-{backend}", "bench._servers", "sink") as sink:
        port_args = ["--config", str(config), "--slack-api", f"{sink.url}/api/"]
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(
                    serve_module(f"signoff-slack-{backend}-{n}", "bench._serve_slack", *port_args)
                )
                for n in range(replicas)
            ]
            cpu, began = sum(s.cpu_seconds() for s in servers), time.perf_counter()
            found = asyncio.run(drive(servers, sink, args.rate, args.seconds))
            # Cores the Signoff processes used on average (the last 2 s are idle catch-up).
            spent = sum(s.cpu_seconds() for s in servers) - cpu
            found["cpu_share"] = spent / (time.perf_counter() - began)
    return found


def baseline(args: argparse.Namespace) -> dict[str, Any]:
    with serve_module("fake-slack-baseline", "bench._servers", "sink") as sink:
        return asyncio.run(drive([], sink, args.rate, args.seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description="Time to escalate under steady load")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--replicas", type=int, nargs="+", default=[1, 2], help="PostgreSQL replica counts"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"baseline": baseline(args)}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        if args.backend in ("postgres", "both"):
            for replicas in args.replicas:
                with postgres_schema("bench_escalate") as url:
                    results[f"postgres x{replicas}"] = run_backend(
                        "postgres", url, workdir, args, replicas
                    )
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{workdir / 'signoff.db'}"
            results["sqlite x1"] = run_backend("sqlite", url, workdir, args, 1)
    rows = []
    for setup, r in results.items():
        cpu = f"{r['cpu_share']:.2f}" if "cpu_share" in r else ""
        met = r["p99_ms"] < TARGET_P99_MS and r["missing"] == 0
        verdict = "" if setup == "baseline" else ("met" if met else "MISSED")
        rows.append(
            [setup, r["arrived"], r["missing"], r["p50_ms"], r["p99_ms"], r["max_ms"], cpu, verdict]
        )
    table(
        f"Time to escalate at {args.rate:.0f} requests/s for {args.seconds:.0f} s (submit -> card)",
        ["signoff replicas", "cards", "missing", "p50 ms", "p99 ms", "max ms", "cores", "p99<250"],
        rows,
    )
    write_results(
        "escalate_latency",
        {"config": vars(args), "target_p99_ms": TARGET_P99_MS, "results": results},
    )


if __name__ == "__main__":
    main()
