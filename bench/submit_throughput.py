"""Submit throughput: Signoff's `POST /v1/requests` (escalate lane: request, audit and outbox
rows, and the card posted by the outbox worker in the same process) against a bare FastAPI
endpoint doing one INSERT on the same database, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.submit_throughput [--seconds 10] [--concurrency 32 per worker]
    .venv/bin/python -m bench.submit_throughput --workers 2      # PostgreSQL only

Target: Signoff >= 50% of the baseline's requests per second; with `--workers N` (both
servers N processes on one port: `signoff serve --workers N` against uvicorn's workers)
>= 100%.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    API_KEY,
    LoadResult,
    closed_loop,
    percentile,
    postgres_schema,
    serve_module,
    serve_signoff,
    signoff_config,
    table,
    write_results,
)

TARGET = 0.5
TARGET_WORKERS = 1.0
# Closed-loop clients per server process. Each client waits for its answer before it sends
# again, so with too few the figure measures latency, not what the server can take: at 16
# clients per process Signoff's two workers leave the machine two thirds idle.
CLIENTS_PER_WORKER = 32
TIERS = [{"name": "junior", "sla": "1h", "reviewers": ["web:jan"]}]


def body(i: int) -> dict[str, Any]:
    # Low confidence: the escalate lane, the heaviest submit (pending request, card to post).
    return {
        "thread_id": f"bench-{i}",
        "action": {"kind": "refund", "summary": f"Refund order {i}", "payload": {"order": i}},
        "confidence": 0.3,
    }


def measure(url: str, args: argparse.Namespace, key: str | None) -> LoadResult:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return asyncio.run(
        closed_loop(
            f"{url}/v1/requests",
            body,
            concurrency=args.concurrency,
            duration=args.seconds,
            warmup=args.warmup,
            headers=headers,
        )
    )


def _summary(result: LoadResult) -> dict[str, Any]:
    return {
        "requests_per_s": result.rate,
        "ok": result.ok,
        "errors": result.errors,
        "statuses": result.statuses,
        "p50_ms": percentile(result.latencies, 50) * 1000,
        "p99_ms": percentile(result.latencies, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="concurrent clients (default 32 per worker process: enough to keep every "
        "worker busy, so the figure is throughput and not one client's latency)",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes per server (PostgreSQL only)"
    )
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = CLIENTS_PER_WORKER * args.workers
    if args.workers > 1:
        args.backend = "postgres"  # `signoff serve --workers` refuses SQLite
    target = TARGET_WORKERS if args.workers > 1 else TARGET
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        if args.backend in ("sqlite", "both"):
            base_db = f"sqlite:///{workdir / 'baseline.db'}"
            signoff_db = f"sqlite:///{workdir / 'signoff.db'}"
            # Separate files, so neither inherits the other's rows; same driver and pragmas.
            results["sqlite"] = run_backend("sqlite", base_db, signoff_db, workdir, args)
        if args.backend in ("postgres", "both"):
            with postgres_schema("bench_submit") as url:
                results["postgres"] = run_backend("postgres", url, url, workdir, args)
    rows = []
    for backend, found in results.items():
        for name in ("baseline", "signoff"):
            s = found[name]
            rows.append(
                [
                    backend,
                    name,
                    s["requests_per_s"],
                    s["p50_ms"],
                    s["p99_ms"],
                    s["errors"],
                    f"{s['cpu_share']:.0%}",
                ]
            )
        verdict = "met" if found["ratio"] >= target else "MISSED"
        goal = f"target >= {target:.0%}: {verdict}"
        rows.append([backend, "ratio", f"{found['ratio']:.0%} ({goal})", "", "", "", ""])
    table(
        f"Submit throughput, {args.concurrency} concurrent clients, {args.seconds:.0f} s, "
        f"{args.workers} process(es) per server",
        ["database", "server", "req/s", "p50 ms", "p99 ms", "errors", "server CPU"],
        rows,
    )
    write_results(
        "submit_throughput",
        {"config": vars(args), "target_ratio": target, "results": results},
    )


def run_backend(
    backend: str, base_db: str, signoff_db: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    with serve_module(
        f"baseline-{backend}",
        "bench._servers",
        "baseline",
        "--database",
        base_db,
        "--workers",
        str(args.workers),
    ) as base:
        cpu, began = base.cpu_seconds(), time.perf_counter()
        baseline = measure(base.url, args, None)
        baseline_cpu = (base.cpu_seconds() - cpu) / (time.perf_counter() - began)
    config = signoff_config(
        workdir / f"signoff-{backend}.yaml",
        signoff_db,
        routing={"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}},
        tiers=TIERS,
        web={"reviewers": {}},
    )
    with serve_signoff(f"signoff-{backend}", config, workers=args.workers) as server:
        cpu, began = server.cpu_seconds(), time.perf_counter()
        signoff = measure(server.url, args, API_KEY)
        signoff_cpu = (server.cpu_seconds() - cpu) / (time.perf_counter() - began)
    return {
        "baseline": {**_summary(baseline), "cpu_share": baseline_cpu},
        "signoff": {**_summary(signoff), "cpu_share": signoff_cpu},
        "ratio": signoff.rate / baseline.rate if baseline.rate else 0.0,
    }


if __name__ == "__main__":
    main()
