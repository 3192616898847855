"""Batch review off (issue 14 section 5): no batch card exists, so nothing is decided from
one; the web inbox's batch form is 404 (tests/integration/test_web_permissions.py)."""

from __future__ import annotations

from bot.core.clock import ManualClock
from bot.core.domain import Verdict
from tests.conftest import RepoFactory
from tests.support.world import World, make_config


async def test_a_batch_vote_naming_no_posted_batch_card_decides_nothing(
    repo_factory: RepoFactory,
) -> None:
    """Batch review is off, so no batch card exists: a click forged with a batch id (from
    Slack or Teams) is refused for every item instead of voting without a card's limits."""
    world = World(await repo_factory(), make_config(), ManualClock())
    rid = await world.submit(confidence=0.2)
    results = await world.engine.vote_many(
        [rid], "web:sam", Verdict.APPROVE, channel="slack", batch_id="bat_forged"
    )
    assert [(r.recorded, r.code) for r in results] == [(False, "no_batch")]
    assert (await world.engine.get(rid)).votes == ()
