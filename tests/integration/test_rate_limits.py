"""A burst of cards into one channel under Slack's and Teams' documented rate limits (the
fakes answer 429 with Retry-After beyond them): every card is posted, every copy is updated
after its verdict, no delivery is dead, and nothing is sent to a throttled key before its
Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.domain import OutboxStatus
from tests.conftest import POSTGRES_URL, RepoFactory
from tests.support.burst import Burst, slack_decided, teams_decided
from tests.support.fake_connector import FakeConnector
from tests.support.fake_slack import FakeSlack


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
