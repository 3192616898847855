"""Batch planning on several replicas: two planners over one database (each with its own
connection pool) open one card per group and channel, however often they race."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind
from bot.core.ports import Repository
from bot.core.views import BatchView, CardView
from bot.engine.batches import BatchPlanner
from storage import InMemoryRepository, SqlRepository, upgrade, upgrade_async
from tests.contract._databases import NO_POSTGRES, POSTGRES_URL, postgres_schema
from tests.support.world import World, make_config

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
TIERS: list[dict[str, Any]] = [
    {
        "name": "junior",
        "sla": "15m",
        "slack_channel": "C0JUNIOR",
        "teams_channel": "19:junior@thread.tacv2",
        "reviewers": ["web:jan", "slack:U0AAA"],
    },
    {"name": "senior", "sla": "1h", "slack_channel": "C0SENIOR", "reviewers": ["web:sam"]},
]


class RecordingChannel:
    """A chat channel that records every card and batch card it is asked to draw."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: list[tuple[str, str, tuple[str, ...]]] = []
        self.redraws: list[str] = []

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        return {"target": view.target}

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def post_batch(self, view: BatchView) -> Mapping[str, Any]:
        members = tuple(r.id for r in view.items)
        self.batches.append((view.batch.kind, view.batch.target, members))
        await asyncio.sleep(0)
        return {"target": view.batch.target, "n": len(self.batches)}

    async def update_batch(self, ref: Mapping[str, Any], view: BatchView) -> None:
        self.redraws.append(view.batch.id)


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
async def two_repos(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Repository, Repository]]:
    """Two handles on one store, as two replicas hold: separate pools on SQL databases."""
    if request.param == "memory":
        shared = InMemoryRepository()
        yield shared, shared
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'signoff.db'}"
        await asyncio.to_thread(upgrade, url)
        a, b = SqlRepository.connect(url), SqlRepository.connect(url)
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        await upgrade_async(url)
        a, b = SqlRepository.connect(url), SqlRepository.connect(url)
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()


async def test_two_planners_racing_open_one_card_per_group_and_channel(
    two_repos: tuple[Repository, Repository],
) -> None:
    clock = ManualClock()
    slack, teams = RecordingChannel("slack"), RecordingChannel("teams")
    config = make_config(
        tiers=TIERS, routing={"start_tier": {"low": "junior", "medium": "junior", "high": "senior"}}
    )
    replicas = [
        World(repo, config, clock, channels={"slack": slack, "teams": teams}) for repo in two_repos
    ]
    planners = [BatchPlanner(w.engine, min_items=3, max_items=20) for w in replicas]
    for kind, count in (("invoice", 3), ("refund", 4), ("other", 2)):
        for _ in range(count):
            clock.advance(timedelta(seconds=1))
            await replicas[0].submit(kind=kind, confidence=0.3)

    for _ in range(3):
        await asyncio.gather(*(p.plan() for p in planners))

    repo = two_repos[0]
    cards = await repo.open_batches()
    assert Counter((c.kind, c.channel, c.target) for c in cards) == {
        ("invoice", "slack", "C0JUNIOR"): 1,
        ("invoice", "teams", "19:junior@thread.tacv2"): 1,
        ("refund", "slack", "C0JUNIOR"): 1,
        ("refund", "teams", "19:junior@thread.tacv2"): 1,
    }
    assert len(await repo.list_outbox(kind=OutboxKind.POST_BATCH)) == 4
    await asyncio.gather(*(w.worker.drain() for w in replicas))
    assert sorted((k, t) for k, t, _ in slack.batches + teams.batches) == sorted(
        (c.kind, c.target) for c in cards
    )
    assert all(len(members) in (3, 4) for _, _, members in slack.batches + teams.batches)
    # Nothing changed: racing again opens and rewrites nothing.
    results = await asyncio.gather(*(p.plan() for p in planners))
    assert results == [0, 0]
    for card in await repo.open_batches():
        assert card.ref is not None and card.version == 1
