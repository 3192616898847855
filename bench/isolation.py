"""Isolation: one agent's hanging receiver must not delay anyone else's deliveries.

Agent A's webhook receiver accepts connections and never answers, with 50 of A's
deliveries due (autonomous approvals, a `request.resolved` webhook each). Meanwhile agent
B's requests escalate to a Slack card (fake zero-latency Slack) and are approved with a
signed Slack click; measured: (a) a card's time to escalate (submit -> `chat.postMessage`
at the fake Slack) and (b) click -> B's signed webhook at B's receiver.

Baseline, measured in the same run: the same load with A's receiver answering 200 at once.

    .venv/bin/python -m bench.isolation [--requests 40] [--rate 10] [--backend sqlite]

Goal: both p99s within 1.5x of the run where nothing hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import (
    API_KEY,
    KEY_SHA256,
    Process,
    open_loop,
    postgres_schema,
    serve_module,
    signoff_config,
    table,
    write_results,
)
from bench.click_to_resume import (
    SLACK_ENV,
    TIERS,
    arrivals,
    clicks,
    latencies_ms,
    stats,
    wait_for,
)

GOAL_RATIO = 1.5
HUNG_DELIVERIES = 50
A_KEY = "sk_bench_a_" + secrets.token_hex(8)


class HangingReceiver:
    """A TCP listener on loopback that accepts every connection and never answers."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._sock.accept()
                self.accepted += 1
                self._held.append(conn)  # kept open, never read from or written to

    @contextlib.contextmanager
    def running(self) -> Iterator[HangingReceiver]:
        self._thread.start()
        try:
            yield self
        finally:
            self._sock.close()
            for conn in self._held:
                conn.close()


async def submit(
    url: str, key: str, count: int, rate: float, confidence: float
) -> dict[str, float]:
    """Submit `count` requests at `rate`; returns {request id: wall time sent}."""
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:

        async def one(i: int) -> None:
            body = {
                "action": {"kind": "refund", "summary": f"Refund {i}", "payload": {"i": i}},
                "confidence": confidence,
            }
            at = time.time()
            async with session.post(f"{url}/v1/requests", json=body) as response:
                answer = await response.json()
                sent[str(answer["id"])] = at

        await open_loop(rate, count / rate, one)
    return sent


def run_once(
    backend: str, database_url: str, workdir: Path, args: argparse.Namespace, hang: bool
) -> dict[str, Any]:
    label = f"{backend}-{'hang' if hang else 'nohang'}"
    with contextlib.ExitStack() as stack:
        slack = stack.enter_context(serve_module(f"iso-slack-{label}", "bench._servers", "sink"))
        agent_b = stack.enter_context(serve_module(f"iso-b-{label}", "bench._servers", "sink"))
        hanging: HangingReceiver | None = None
        agent_a: Process | None = None
        if hang:
            hanging = stack.enter_context(HangingReceiver().running())
            a_url = f"http://127.0.0.1:{hanging.port}/resume"
        else:
            agent_a = stack.enter_context(serve_module(f"iso-a-{label}", "bench._servers", "sink"))
            a_url = f"{agent_a.url}/resume"
        config = signoff_config(
            workdir / f"isolation-{label}.yaml",
            database_url,
            agents=[
                {
                    "id": "bench-bot",
                    "key_sha256": KEY_SHA256,
                    "callback_url": f"{agent_b.url}/resume",
                    "webhook_secret_env": "BENCH_WEBHOOK_SECRET",
                },
                {
                    "id": "agent-a",
                    "key_sha256": hashlib.sha256(A_KEY.encode()).hexdigest(),
                    "callback_url": a_url,
                    "webhook_secret_env": "BENCH_WEBHOOK_SECRET",
                },
            ],
            routing={"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}},
            tiers=TIERS,
            slack={"api_url": f"{slack.url}/api/"},
        )
        server = stack.enter_context(
            serve_module(
                f"iso-signoff-{label}",
                "bench._serve_slack",
                "--config",
                str(config),
                "--slack-api",
                f"{slack.url}/api/",
                env={"SIGNOFF_LOG_LEVEL": "WARNING", **SLACK_ENV},
            )
        )
        # A's deliveries first: all due (and, in the hang run, stuck) before B's traffic.
        asyncio.run(submit(server.url, A_KEY, HUNG_DELIVERIES, 200.0, 0.95))
        time.sleep(0.5)
        submitted = asyncio.run(submit(server.url, API_KEY, args.requests, args.rate, 0.3))
        wait_for(slack, args.requests, timeout=60)
        escalate, not_posted = latencies_ms(submitted, arrivals(slack))
        ids = sorted(submitted, key=submitted.__getitem__)
        clicked = asyncio.run(
            clicks(f"{server.url}/slack/events", ids, args.rate, args.requests / args.rate, 0)
        )
        wait_for(agent_b, len(clicked["sent"]), timeout=60)
        resumed, missing = latencies_ms(clicked["sent"], arrivals(agent_b))
        return {
            "time_to_escalate": {**stats(escalate), "missing": not_posted},
            "click_to_webhook": {**stats(resumed), "missing": missing},
            "a_connections": hanging.accepted if hanging is not None else None,
            "a_delivered": wait_for(agent_a, HUNG_DELIVERIES, 30) if agent_a else 0,
            "click_failures": clicked["failures"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=40, help="B's requests per run")
    parser.add_argument("--rate", type=float, default=10.0, help="B's submits and clicks per s")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        for backend in ("sqlite", "postgres"):
            if args.backend not in (backend, "both"):
                continue
            found: dict[str, Any] = {}
            for hang in (False, True):
                key = "hang" if hang else "nohang"
                if backend == "sqlite":
                    url = f"sqlite:///{workdir / f'isolation-{key}.db'}"
                    found[key] = run_once(backend, url, workdir, args, hang)
                else:
                    with postgres_schema(f"bench_isolation_{key}") as url:
                        found[key] = run_once(backend, url, workdir, args, hang)
            results[backend] = found
    rows = []
    verdicts: dict[str, dict[str, float]] = {}
    for backend, found in results.items():
        for measure, title in (
            ("click_to_webhook", "B click -> webhook"),
            ("time_to_escalate", "Slack card time to escalate"),
        ):
            quiet, hung = found["nohang"][measure], found["hang"][measure]
            ratio = hung["p99_ms"] / quiet["p99_ms"] if quiet["p99_ms"] else float("nan")
            verdicts.setdefault(backend, {})[measure] = ratio
            verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
            rows.append(
                [
                    backend,
                    title,
                    quiet["p50_ms"],
                    quiet["p99_ms"],
                    hung["p50_ms"],
                    hung["p99_ms"],
                    f"{ratio:.2f}x",
                    f"<= {GOAL_RATIO}x: {verdict}",
                ]
            )
    table(
        f"Isolation: A's receiver hangs with {HUNG_DELIVERIES} deliveries due; "
        f"B: {args.requests} requests at {args.rate:g}/s",
        [
            "database",
            "measure",
            "no hang p50",
            "no hang p99",
            "hang p50",
            "hang p99",
            "p99 ratio",
            "goal",
        ],
        rows,
    )
    write_results(
        "isolation",
        {
            "config": vars(args),
            "goal_ratio": GOAL_RATIO,
            "hung_deliveries": HUNG_DELIVERIES,
            "ratios": verdicts,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
