"""A burst of cards into one channel under Slack's and Teams' documented rate limits (the
fakes answer 429 with Retry-After beyond them): every card is posted, every copy is updated
after its verdict, no delivery is dead, and nothing is sent to a throttled key before its
Retry-After. A deep burst gets a queue card per channel that lists what waits, is redrawn
as items are decided, and closes once every item has its own card."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import pytest

from bot.core.domain import OutboxStatus
from tests.conftest import POSTGRES_URL, RepoFactory
from tests.support.burst import Burst, slack_decided, teams_decided
from tests.support.fake_connector import FakeConnector
from tests.support.fake_slack import FakeSlack, all_text


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if not POSTGRES_URL:
        pytest.skip("SIGNOFF_TEST_POSTGRES_URL is not set")
    name: str = request.param
    return name


@pytest.fixture
async def teams() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as connector:
        yield connector


async def burst_through(
    repo_factory: RepoFactory, slack: FakeSlack, teams: FakeConnector, *, paced: bool, n: int
) -> Burst:
    slack_limits = slack.enforce_limits()
    teams_limits = teams.enforce_limits()
    burst = Burst(await repo_factory(), slack, teams, paced=paced)
    ids = await burst.submit(n)
    await burst.settle(timeout=60)
    assert len(burst.slack_cards()) == n
    assert sorted(burst.teams_cards()) == sorted(ids)

    await burst.approve_all(ids)
    await burst.settle(timeout=90)
    assert all(slack_decided(m) for m in burst.slack_cards())
    assert all(teams_decided(card) for card in burst.teams_cards().values())
    assert not await burst.repo.list_outbox(status=OutboxStatus.DEAD)
    assert slack_limits.early == []
    assert teams_limits.early == []
    return burst


async def test_an_unpaced_burst_meets_429s_honours_them_and_loses_nothing(
    repo_factory: RepoFactory, slack: FakeSlack, teams: FakeConnector
) -> None:
    burst = await burst_through(repo_factory, slack, teams, paced=False, n=12)
    # The platforms did throttle: the outbox came back after each Retry-After, uncounted.
    assert slack.limits is not None and slack.limits.refusals
    assert teams.limits is not None and teams.limits.refusals
    assert slack.calls("chat.postMessage", ok=False)
    rows = await burst.repo.list_outbox(limit=1000)
    assert rows and all(row.attempts <= 1 for row in rows)


async def test_a_paced_burst_stays_within_the_limits(
    repo_factory: RepoFactory, slack: FakeSlack, teams: FakeConnector
) -> None:
    await burst_through(repo_factory, slack, teams, paced=True, n=6)
    assert slack.limits is not None and slack.limits.refusals == []
    assert teams.limits is not None and teams.limits.refusals == []


async def test_a_deep_burst_gets_a_queue_card_per_channel_that_follows_the_queue(
    repo_factory: RepoFactory, slack: FakeSlack, teams: FakeConnector
) -> None:
    slack.enforce_limits()
    teams.enforce_limits()
    burst = Burst(await repo_factory(), slack, teams, queue_after=3)
    ids = await burst.submit(10)
    assert await burst.queues.plan() == 2  # one for the Slack channel, one for the Teams one
    assert await burst.queues.plan() == 0  # nothing changed: nothing redrawn

    async def pump() -> None:
        while True:
            await burst.worker.drain()
            await asyncio.sleep(0.05)

    pumping = asyncio.create_task(pump())
    try:
        # The queue cards go out within a few seconds, long before the last item's card.
        await wait_until(lambda: burst.slack_queue_cards() and burst.teams_queue_cards(), 8)
        [slack_queue] = burst.slack_queue_cards()
        [teams_queue] = burst.teams_queue_cards()
        assert len(burst.slack_cards()) < len(ids)
        text = all_text(slack_queue.blocks)
        assert "<@U0ALICE> <@U0BOB>" in text and "10 items wait at ops" in text
        assert all(f"/requests/{rid}" in text for rid in ids)
        drawn = json.dumps(teams_queue)
        assert all(f"/requests/{rid}" in drawn for rid in ids)
        assert teams_queue["msteams"]["entities"][0]["mentioned"]["id"] == "aad-carol"

        # Decided items drop off the queue card, redrawn in place.
        await burst.approve_all(ids[:3])
        assert await burst.queues.plan() == 2
        await wait_until(lambda: "7 items wait" in all_text(burst.slack_queue_cards()[0].blocks), 8)
        text = all_text(burst.slack_queue_cards()[0].blocks)
        assert not any(f"/requests/{rid}" in text for rid in ids[:3])
        await wait_until(lambda: "7 items wait" in json.dumps(burst.teams_queue_cards()[0]), 8)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping

    # Once every item has its own card, the queue cards close for good.
    await burst.settle(timeout=60)
    assert await burst.queues.plan() == 2
    await burst.settle(timeout=30)
    assert "handled" in all_text(burst.slack_queue_cards()[0].blocks)
    assert "handled" in json.dumps(burst.teams_queue_cards()[0])
    assert len(burst.slack_cards()) == len(ids) and sorted(burst.teams_cards()) == sorted(ids)

    await burst.approve_all(ids[3:])
    await burst.settle(timeout=60)
    assert all(slack_decided(m) for m in burst.slack_cards())
    assert all(teams_decided(card) for card in burst.teams_cards().values())
    assert not await burst.repo.list_outbox(status=OutboxStatus.DEAD)
    assert slack.limits is not None and slack.limits.early == []
    assert teams.limits is not None and teams.limits.early == []


async def wait_until(condition: Callable[[], object], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not so within {seconds}s")
