"""Slack where reviewers live: `tiers[].notify: dm | both` sends each named reviewer (and
each member of a listed user group) a direct message kept in step with the channel card,
and `slack:S…` user groups are mentioned and may act, their members read from Slack with
`usergroups.users.list`. The real app on loopback, real signed requests, the fake Slack
Web API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.server.config import LoadedConfig, parse_config
from tests.conftest import RepoFactory
from tests.integration.test_slack import KEY, MEDIUM, TWO_PERSON, World, open_world
from tests.support.fake_slack import FakeSlack, Message, action_ids, all_text
from tests.support.slack_payloads import block_actions, form_body, view_submission

TIERS: list[dict[str, Any]] = [
    {
        "name": "junior",
        "sla": "15m",
        "slack_channel": "C0JUNIOR",
        "notify": "both",
        "reviewers": ["slack:U0AAA", "slack:S0LEADS"],
    },
    {
        "name": "manager",
        "sla": "4h",
        "slack_channel": "C0MGR",
        "notify": "dm",
        "reviewers": ["slack:U0DDD", "slack:U0EEE"],
    },
]


def config(slack: FakeSlack) -> LoadedConfig:
    return parse_config(
        {
            "public_url": "http://signoff.test",
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                    "callback_url": f"{slack.rx.url}/resume",
                    "webhook_secret_env": "AGENT_WEBHOOK_SECRET",
                }
            ],
            "routing": {"start_tier": {"low": "junior", "medium": "junior", "high": "manager"}},
            "tiers": TIERS,
            "slack": {"api_url": slack.api_url},
        },
        env={},
    )


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    slack.set_group("S0LEADS", ["U0BBB", "U0CCC"])  # read when the services start
    world = await open_world(repo_factory, slack, ManualClock(), config(slack))
    try:
        yield world
    finally:
        await world.close()


def copies(w: World, rid: str) -> dict[str, Message]:
    """Every top-level message about `rid`, by channel."""
    return {
        m.channel: m
        for m in w.slack.messages()
        if m.thread_ts is None and f"`{rid}`" in all_text(m.blocks)
    }


async def click(w: World, card: Message, uid: str, action_id: str, rid: str) -> None:
    url = w.slack.response_url(f"click-{uid}")
    body = form_body(block_actions(card, uid, action_id, rid, response_url=url))
    assert (await w.send(body)).status_code == 200
    await w.settle()


async def test_notify_both_posts_in_the_channel_and_messages_each_reviewer_in_step(
    w: World,
) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    dm = {uid: w.slack.dm_channel(uid) for uid in ("U0AAA", "U0BBB", "U0CCC")}
    assert all(channel and channel.startswith("D") for channel in dm.values()), dm
    found = copies(w, rid)
    assert sorted(found) == sorted(["C0JUNIOR", *(c for c in dm.values() if c)])
    for message in found.values():
        assert action_ids(message.blocks)[:2] == ["signoff_approve", "signoff_reject"]
    # The channel card names the group, so Slack notifies its members; no one is messaged
    # twice, and the group itself gets no direct message.
    [post] = [c for c in w.slack.calls("chat.postMessage") if c.args["channel"] == "C0JUNIOR"]
    assert "<@U0AAA>" in post.args["text"] and "<!subteam^S0LEADS>" in post.args["text"]
    assert "<!subteam^S0LEADS>" in all_text(found["C0JUNIOR"].blocks)
    posted_to = sorted(c.args["channel"] for c in w.slack.calls("chat.postMessage"))
    assert posted_to == ["C0JUNIOR", "U0AAA", "U0BBB", "U0CCC"]

    # A member of the group decides from their direct message, like a named reviewer.
    dm_card = found[str(dm["U0BBB"])]
    await click(w, dm_card, "U0BBB", "signoff_approve", rid)
    got = await w.get(rid)
    assert got["status"] == "approved" and got["votes"][0]["reviewer"] == "slack:U0BBB"
    # Every copy is rewritten: no stale buttons anywhere.
    for channel, message in copies(w, rid).items():
        assert action_ids(message.blocks) == [], channel
        assert "Approved* by bob" in all_text(message.blocks), channel
        assert message.edits == 1


async def test_notify_dm_messages_only_the_named_reviewers_and_keeps_every_copy_current(
    w: World,
) -> None:
    rid = await w.submit(TWO_PERSON)  # high risk: starts at manager, two people
    await w.drain()
    found = copies(w, rid)
    dan, erin = w.slack.dm_channel("U0DDD"), w.slack.dm_channel("U0EEE")
    assert sorted(found) == sorted([str(dan), str(erin)])  # no channel card at all
    assert "C0MGR" not in {c.args["channel"] for c in w.slack.calls("chat.postMessage")}

    await click(w, found[str(dan)], "U0DDD", "signoff_approve", rid)
    view = (await w.slack.wait_for("views.open", 1))[0].view  # high risk: a rationale
    body = form_body(view_submission("U0DDD", view, rationale="IBAN checked"))
    assert (await w.send(body)).status_code == 200
    await w.settle()
    for channel, message in copies(w, rid).items():
        assert "1 of 2 approved, by dan" in all_text(message.blocks), channel
        assert action_ids(message.blocks)[0] == "signoff_approve", channel


async def test_group_members_are_read_from_slack_and_refreshed(w: World) -> None:
    calls = w.slack.calls("usergroups.users.list")
    assert [c.args["usergroup"] for c in calls] == ["S0LEADS"]
    rid = await w.submit(MEDIUM)
    await w.drain()
    card = copies(w, rid)["C0JUNIOR"]

    # Not (yet) in the group: refused, nothing recorded.
    await click(w, card, "U0ZZZ", "signoff_approve", rid)
    [told] = [c for c in w.slack.calls("chat.postEphemeral") if c.args["user"] == "U0ZZZ"]
    assert "not a reviewer of tier junior" in told.args["text"]

    # Someone joins the group in Slack; the next refresh (every minute) lets them act.
    w.slack.set_group("S0LEADS", ["U0BBB", "U0CCC", "U0ZZZ"])
    groups = w.svc.engine.groups
    assert groups is not None
    await groups.refresh()
    assert [r.id for r in await w.svc.engine.pending_for("slack:U0ZZZ")] == [rid]
    await click(w, card, "U0ZZZ", "signoff_approve", rid)
    assert (await w.get(rid))["status"] == "approved"

    # Slack failing to answer keeps the members last read.
    w.slack.throttle("usergroups.users.list", lambda n: 30.0)
    await groups.refresh()
    assert "slack:U0ZZZ" in groups.members("slack:S0LEADS")
