"""Click to resume: a signed Slack `block_actions` click (`signoff_approve`) sent over real
HTTP to `signoff serve` with Slack configured against a zero-latency fake Slack, measured as
(a) the ack latency of `POST /slack/events` and (b) click -> signed webhook received by the
agent's (zero-latency) receiver, under a steady open-loop load of clicks.

Baselines, measured in the same run: (a) a bare Starlette endpoint that checks the Slack
signature the same way and answers 200; (b) the load generator POSTing a webhook-sized body
straight to the same receiver. Every click approves a different pending request whose card
was posted beforehand; the first `--warmup` seconds of clicks are not counted.

    .venv/bin/python -m bench.click_to_resume [--rate 20] [--seconds 10] [--backend both]

Targets: ack p99 < 100 ms; click -> webhook p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from slack_sdk.signature import SignatureVerifier

from bench._common import (
    API_KEY,
    WEBHOOK_SECRET,
    Process,
    open_loop,
    percentile,
    postgres_schema,
    serve_module,
    signoff_config,
    table,
    write_results,
)

TARGET_ACK_P99_MS = 100.0
TARGET_RESUME_P99_MS = 250.0
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
SLACK_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-bench",
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
}
REVIEWER = "U0REVIEW"
CHANNEL = "C0BENCH"
TIERS = [
    {"name": "junior", "sla": "1h", "slack_channel": CHANNEL, "reviewers": [f"slack:{REVIEWER}"]}
]
_signer = SignatureVerifier(SIGNING_SECRET)


def click(request_id: str, n: int) -> tuple[bytes, dict[str, str]]:
    """The form body and headers Slack sends when REVIEWER presses Approve on a card."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": REVIEWER, "username": "rita", "name": "rita", "team_id": "T0BENCH"},
        "api_app_id": "A0BENCH",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": f"{n}.000100",
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "trigger_id": f"{n}.4242.0123456789abcdef",
        "team": {"id": "T0BENCH", "domain": "bench"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": CHANNEL, "name": "approvals"},
        "message": {"type": "message", "ts": f"{n}.000100", "text": "approval", "blocks": []},
        "state": {"values": {}},
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [
            {
                "action_id": "signoff_approve",
                "block_id": "actions",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": request_id,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": str(_signer.generate_signature(timestamp=stamp, body=body)),
    }
    return body, headers


async def clicks(
    url: str, request_ids: list[str], rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    """Click each request once at `rate`; returns ack latencies and send times (counted only)."""
    sent: dict[str, float] = {}
    acks: list[float] = []
    failures = 0
    counted_from = int(rate * warmup)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            nonlocal failures
            request_id = request_ids[i]
            body, headers = click(request_id, i)
            started, wall = time.perf_counter(), time.time()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            elapsed = time.perf_counter() - started
            if i < counted_from:
                return
            if not ok:
                failures += 1
                return
            acks.append(elapsed)
            sent[request_id] = wall

        await open_loop(rate, seconds + warmup, one)
    return {"acks": acks, "sent": sent, "failures": failures}


async def direct_posts(url: str, count: int, rate: float) -> dict[str, float]:
    """The resume floor: POST a webhook-sized body carrying a fresh id straight to `url`."""
    sent: dict[str, float] = {}
    numbers = itertools.count()
    async with aiohttp.ClientSession() as session:

        async def one(_: int) -> None:
            request_id = f"req_{next(numbers):026d}"
            body = {
                "type": "request.resolved",
                "data": {"id": request_id, "status": "approved", "votes": [], "action": {}},
            }
            sent[request_id] = time.time()
            async with session.post(url, json=body) as response:
                await response.read()

        await open_loop(rate, count / rate, one)
    return sent


def arrivals(sink: Process) -> dict[str, float]:
    found: dict[str, float] = httpx.get(f"{sink.url}/_records", timeout=10).json()["arrivals"]
    return found


def wait_for(sink: Process, count: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = int(httpx.get(f"{sink.url}/_records", timeout=10).json()["count"])
        if seen >= count:
            break
        time.sleep(0.2)
    return seen


def latencies_ms(sent: dict[str, float], arrived: dict[str, float]) -> tuple[list[float], int]:
    found = [(arrived[rid] - at) * 1000 for rid, at in sent.items() if rid in arrived]
    return found, len(sent) - len(found)


def stats(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else float("nan"),
    }


def signoff_with_slack(
    name: str, database_url: str, workdir: Path, slack_api: str, resume_url: str
) -> contextlib.AbstractContextManager[Process]:
    """`signoff serve` (unpaced Slack channel, see bench._serve_slack) with Slack on."""
    config = signoff_config(
        workdir / f"{name}.yaml",
        database_url,
        agent={"callback_url": resume_url, "webhook_secret_env": "BENCH_WEBHOOK_SECRET"},
        routing={"start_tier": {"low": "junior", "medium": "junior", "high": "junior"}},
        tiers=TIERS,
        slack={"api_url": slack_api},
    )
    return serve_module(
        name,
        "bench._serve_slack",
        "--config",
        str(config),
        "--slack-api",
        slack_api,
        env={"SIGNOFF_LOG_LEVEL": "WARNING", **SLACK_ENV},
    )


async def submit_all(url: str, count: int) -> list[str]:
    """`count` pending requests (low confidence: escalate, medium risk, no rationale needed)."""
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for chunk in range(0, count, 32):

            async def one(i: int) -> str:
                body = {
                    "action": {"kind": "refund", "summary": f"Refund {i}", "payload": {"i": i}},
                    "confidence": 0.3,
                }
                async with session.post(f"{url}/v1/requests", json=body) as response:
                    answer = await response.json()
                    return str(answer["id"])

            ids += await asyncio.gather(*(one(i) for i in range(chunk, min(chunk + 32, count))))
    return ids


def run_backend(
    backend: str, database_url: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    total = int(args.rate * (args.seconds + args.warmup))
    with (
        serve_module(f"click-slack-{backend}", "bench._servers", "sink") as slack,
        serve_module(f"click-agent-{backend}", "bench._servers", "sink") as agent,
        signoff_with_slack(
            f"click-signoff-{backend}",
            database_url,
            workdir,
            f"{slack.url}/api/",
            f"{agent.url}/resume",
        ) as server,
    ):
        request_ids = asyncio.run(submit_all(server.url, total))
        cards = wait_for(slack, total)  # every card is out before the first click
        clicked = asyncio.run(
            clicks(f"{server.url}/slack/events", request_ids, args.rate, args.seconds, args.warmup)
        )
        wait_for(agent, total)  # warm-up clicks resume their agents too
        resumed, missing = latencies_ms(clicked["sent"], arrivals(agent))
        direct_sent = asyncio.run(
            direct_posts(f"{agent.url}/resume", len(clicked["sent"]), args.rate)
        )
        wait_for(agent, total + len(direct_sent))
        direct, direct_missing = latencies_ms(direct_sent, arrivals(agent))
    with serve_module(
        f"click-ack-baseline-{backend}", "bench._servers", "slack-ack", env=SLACK_ENV
    ) as bare:
        fake_ids = [f"req_{n:026d}" for n in range(total)]
        bare_clicks = asyncio.run(
            clicks(f"{bare.url}/slack/events", fake_ids, args.rate, args.seconds, args.warmup)
        )
    return {
        "cards_posted_before_clicks": cards,
        "ack": {
            "signoff": {
                **stats([a * 1000 for a in clicked["acks"]]),
                "failures": clicked["failures"],
            },
            "baseline": {
                **stats([a * 1000 for a in bare_clicks["acks"]]),
                "failures": bare_clicks["failures"],
            },
        },
        "resume": {
            "signoff": {**stats(resumed), "missing": missing},
            "baseline": {**stats(direct), "missing": direct_missing},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=20.0, help="clicks per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        if args.backend in ("sqlite", "both"):
            results["sqlite"] = run_backend(
                "sqlite", f"sqlite:///{workdir / 'signoff.db'}", workdir, args
            )
        if args.backend in ("postgres", "both"):
            with postgres_schema("bench_click") as url:
                results["postgres"] = run_backend("postgres", url, workdir, args)
    rows = []
    for backend, found in results.items():
        for measure, target in (("ack", TARGET_ACK_P99_MS), ("resume", TARGET_RESUME_P99_MS)):
            s, b = found[measure]["signoff"], found[measure]["baseline"]
            verdict = "met" if s["p99_ms"] < target else "MISSED"
            rows.append(
                [
                    backend,
                    "ack /slack/events" if measure == "ack" else "click -> webhook",
                    s["p50_ms"],
                    s["p99_ms"],
                    b["p50_ms"],
                    b["p99_ms"],
                    s["count"],
                    f"p99 < {target:.0f} ms: {verdict}",
                ]
            )
    table(
        f"Click to resume, {args.rate:g} clicks/s for {args.seconds:g} s",
        ["database", "measure", "p50 ms", "p99 ms", "base p50", "base p99", "n", "target"],
        rows,
    )
    write_results(
        "click_to_resume",
        {
            "config": vars(args),
            "targets_ms": {"ack_p99": TARGET_ACK_P99_MS, "resume_p99": TARGET_RESUME_P99_MS},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
