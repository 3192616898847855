"""A burst under the platforms' rate limits: 200 escalations submitted within one second into
one tier whose cards go to a Slack channel and a Teams channel, with three named reviewers
(two in Slack, one in Teams).

The fake Slack Web API and fake Bot Connector of the test suite run in this process with the
documented limits on (`tests.support.rate_limits`: about one `chat.postMessage` per second
per channel, `chat.update` at Tier 3; Teams 7/1 s, 8/2 s, 60/30 s per thread), answering 429
with Retry-After beyond. `signoff serve` runs in its own process on a fresh PostgreSQL schema.

Measured per item, from its submit: when every named reviewer had been notified of it (a
message in their channel that @-mentions them and names the item: its own card, or a queue
card listing it), and when its own card was posted in each channel. Baseline: the same run
with queue cards off (`queue.after: 0`), which is the design before them.

    .venv/bin/python -m bench.burst [--items 200]

Target: p99 time until every named reviewer is notified <= 10 s; every own card posted
within what the limits allow (200 at one a second: about 200 s in Slack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench._common import (
    API_KEY,
    percentile,
    postgres_dsn,
    postgres_schema,
    serve_signoff,
    signoff_config,
    table,
    write_results,
)
from tests.support.fake_connector import FakeConnector
from tests.support.fake_slack import TOKEN, FakeSlack

TARGET_P99 = 10.0
SLACK_CHANNEL = "C0BURST"
TEAMS_CHANNEL = "19:burst@thread.tacv2"
SLACK_REVIEWERS = ("U0ALICE", "U0BOB")
TEAMS_REVIEWER = "aad-carol"
_ID = re.compile(r"req_[0-9a-z]{26}")


def config_sections(slack_api: str, service_url: str, queue_after: int) -> dict[str, Any]:
    return {
        "routing": {"start_tier": {"low": "ops", "medium": "ops", "high": "ops"}},
        "tiers": [
            {
                "name": "ops",
                "sla": "1h",
                "slack_channel": SLACK_CHANNEL,
                "teams_channel": TEAMS_CHANNEL,
                "reviewers": [*(f"slack:{u}" for u in SLACK_REVIEWERS), f"teams:{TEAMS_REVIEWER}"],
            }
        ],
        "slack": {"api_url": slack_api},
        "teams": {"enabled": True, "auth": "none", "service_url": service_url},
        "queue": {"after": queue_after},
    }


def refund(n: int) -> dict[str, Any]:
    return {"kind": "refund", "summary": f"Refund order {n}", "payload": {"n": n}}


async def submit_burst(url: str, items: int) -> dict[str, float]:
    """`items` submits spread over one second; returns each id's send time."""
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    ) as http:

        async def one(n: int) -> None:
            await asyncio.sleep(n / items)
            at = time.time()
            response = await http.post(
                "/v1/requests",
                json={
                    "action": {
                        "kind": "refund",
                        "summary": f"Refund order {n}",
                        "payload": {"n": n},
                    },
                    "confidence": 0.2,
                },
            )
            response.raise_for_status()
            sent[response.json()["id"]] = at

        await asyncio.gather(*(one(n) for n in range(items)))
    return sent


def slack_seen(slack: FakeSlack) -> tuple[dict[str, float], dict[str, float]]:
    """(first time each item was named on a message mentioning both Slack reviewers, time
    each item's own card was posted)."""
    notified: dict[str, float] = {}
    own: dict[str, float] = {}
    mentions = [f"<@{u}>" for u in SLACK_REVIEWERS]
    for call in slack.calls(ok=True):
        if call.method not in ("chat.postMessage", "chat.update") or call.args.get("thread_ts"):
            continue
        text = json.dumps(call.blocks)
        if call.method == "chat.postMessage" and "signoff_approve" in text:
            for rid in set(_ID.findall(text)):
                own.setdefault(rid, call.at)
        if all(m in text for m in mentions):
            for rid in set(_ID.findall(text)):
                notified.setdefault(rid, call.at)
    return notified, own


def teams_seen(teams: FakeConnector) -> tuple[dict[str, float], dict[str, float]]:
    notified: dict[str, float] = {}
    own: dict[str, float] = {}
    for call in teams.calls:
        if call.kind == "send":
            continue
        text = json.dumps(call.activity)
        if call.kind == "create" and '"Action.Execute"' in text:
            for rid in set(_ID.findall(text)):
                own.setdefault(rid, call.at)
        if TEAMS_REVIEWER in text:
            for rid in set(_ID.findall(text)):
                notified.setdefault(rid, call.at)
    return notified, own


def dead_rows(url: str) -> int:
    schema = re.search(r"search_path%3D(\w+)|search_path=(\w+)", url)
    assert schema is not None
    name = schema.group(1) or schema.group(2)
    with psycopg.connect(postgres_dsn(url)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {name}.outbox WHERE status = 'dead'").fetchone()
    return int(row[0]) if row else 0


def spans(sent: dict[str, float], seen: dict[str, float]) -> list[float]:
    return [seen[rid] - at for rid, at in sent.items() if rid in seen]


async def run_design(
    name: str, queue_after: int, items: int, patience: float, workdir: Path
) -> dict[str, Any]:
    with FakeSlack() as slack, FakeConnector() as teams:
        slack_limits = slack.enforce_limits()
        teams_limits = teams.enforce_limits()
        with postgres_schema("bench_burst") as url:
            sections = config_sections(slack.api_url, teams.service_url, queue_after)
            config = signoff_config(workdir / f"burst-{name}.json", url, **sections)
            env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench-signing-secret"}
            with serve_signoff(f"signoff-burst-{name}", config, env=env) as server:
                began = time.time()
                sent = await submit_burst(server.url, items)
                submitted = time.time() - began
                deadline = time.monotonic() + patience
                while time.monotonic() < deadline:
                    _, slack_own = slack_seen(slack)
                    _, teams_own = teams_seen(teams)
                    if set(sent) <= set(slack_own) and set(sent) <= set(teams_own):
                        break
                    await asyncio.sleep(1.0)
                load = [f"{x:.2f}" for x in os.getloadavg()]
            dead = dead_rows(url)
        slack_notified, slack_own = slack_seen(slack)
        teams_notified, teams_own = teams_seen(teams)
        both = {
            rid: max(slack_notified[rid], teams_notified[rid])
            for rid in sent
            if rid in slack_notified and rid in teams_notified
        }
        notify = spans(sent, both)
        first = min(sent.values())
        return {
            "design": name,
            "queue_after": queue_after,
            "items": items,
            "submitted_in_s": submitted,
            "notified": len(notify),
            "notify_p50_s": statistics.median(notify) if notify else None,
            "notify_p99_s": percentile(notify, 99) if notify else None,
            "notify_max_s": max(notify) if notify else None,
            "slack_own_cards": len(set(sent) & set(slack_own)),
            "teams_own_cards": len(set(sent) & set(teams_own)),
            "slack_last_own_card_s": _last(slack_own.values(), first),
            "teams_last_own_card_s": _last(teams_own.values(), first),
            "slack_429": len(slack_limits.refusals),
            "teams_429": len(teams_limits.refusals),
            "early_retries": len(slack_limits.early) + len(teams_limits.early),
            "dead_rows": dead,
            "load_average": load,
        }


def _last(times: Iterable[float], first: float) -> float | None:
    found = list(times)
    return max(found) - first if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description="A burst of escalations under rate limits")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--patience", type=float, default=400.0, help="seconds to wait for cards")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        for name, after in (("baseline (no queue card)", 0), ("queue card", 5)):
            print(f"  {name}: {args.items} escalations ...", flush=True)
            results.append(
                asyncio.run(run_design(name, after, args.items, args.patience, Path(tmp)))
            )
    rows = []
    for r in results:
        p99 = r["notify_p99_s"]
        verdict = "met" if p99 is not None and p99 <= TARGET_P99 else "MISSED"
        rows.append(
            [
                r["design"],
                f"{r['notified']}/{r['items']}",
                _s(r["notify_p50_s"]),
                f"{_s(p99)} ({verdict})",
                f"{r['slack_own_cards']} in {_s(r['slack_last_own_card_s'])}",
                f"{r['teams_own_cards']} in {_s(r['teams_last_own_card_s'])}",
                f"{r['slack_429']}/{r['teams_429']}",
                r["early_retries"],
                r["dead_rows"],
                " ".join(r["load_average"]),
            ]
        )
    table(
        f"Burst of {args.items} escalations into one tier, Slack + Teams limits on "
        f"(target: p99 notified <= {TARGET_P99:.0f} s)",
        [
            "design",
            "notified",
            "p50",
            "p99 all 3 reviewers notified",
            "Slack own cards",
            "Teams own cards",
            "429s S/T",
            "early",
            "dead",
            "load",
        ],
        rows,
    )
    write_results("burst", {"config": vars(args), "target_p99_s": TARGET_P99, "results": results})


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
