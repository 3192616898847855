"""Teams direct messages (`tiers[].notify: dm | both`) and the personal queue, end to end.

Real HTTP both ways, as in `test_teams`: Signoff on uvicorn, its Bot Connector calls to the
`FakeConnector`, which opens 1:1 chats the way Teams does for proactive messages. Clicks
and chat lines are Teams-shaped activities from the reviewers' personal chats, sent with a
Bot Framework JWT that Signoff checks against keys served from a local OpenID endpoint.
Signoff's own outbound calls need an Entra ID token that cannot be had offline, so the
posting and the edits run in an instance with `auth: none` over the same database: the
cards it keeps in step are the ones the signed clicks decided.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.errors import ConfigError
from bot.server.teams import teams_channel
from storage.memory import InMemoryRepository
from tests.conftest import RepoFactory
from tests.integration.test_teams import (
    APP_ID,
    BOB,
    JUNIOR,
    MANAGER,
    SECURED,
    SENIOR,
    TENANT,
    Keys,
    Teams,
    _execute_data,
    agent,
    agent_server,
    banner,
    connector,
    connector_server,
    keys,
    live,
    make_config,
    running,
    signing_key,
)
from tests.support.fake_connector import Call, FakeConnector
from tests.support.http_receiver import HttpReceiver
from tests.unit.teams.schema import assert_adaptive_card, card_nodes

# The fixtures these tests share with test_teams (one fake connector, one agent, the keys).
__all__ = ["agent", "agent_server", "connector", "connector_server", "keys", "signing_key"]

ALICE = "alice"
DIRECT = [
    {
        "name": "junior",
        "sla": "15m",
        "teams_channel": JUNIOR,
        "notify": "both",
        "reviewers": [f"teams:aad-{ALICE}", f"teams:aad-{BOB}"],
    },
    {"name": "senior", "sla": "1h", "teams_channel": SENIOR, "reviewers": ["teams:aad-sam"]},
    {"name": "manager", "sla": "4h", "teams_channel": MANAGER, "reviewers": ["teams:aad-max"]},
]
OPEN = {"TEAMS_TENANT_ID": TENANT}
_ids = itertools.count(1)


def personal(connector: FakeConnector, user: str, chat: str, **fields: Any) -> dict[str, Any]:
    """An activity from `user` in their 1:1 chat with the bot, as Teams delivers it."""
    return {
        "id": f"p:{next(_ids)}",
        "timestamp": "2026-01-05T09:01:00.000Z",
        "serviceUrl": connector.service_url,
        "channelId": "msteams",
        "from": {"id": f"29:1{user}", "name": user.title(), "aadObjectId": f"aad-{user}"},
        "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": chat},
        "recipient": {"id": f"28:{APP_ID}", "name": "Signoff"},
        "channelData": {"tenant": {"id": TENANT}},
        "locale": "en-US",
        **fields,
    }


def click(
    connector: FakeConnector, user: str, message: Call, verb: str, **inputs: Any
) -> dict[str, Any]:
    """`verb` clicked on the card `message` holds, in that user's 1:1 chat."""
    card = connector.card(message.conversation_id, message.activity_id)
    [data] = _execute_data(card, verb)
    return personal(
        connector,
        user,
        message.conversation_id,
        type="invoke",
        name="adaptiveCard/action",
        replyToId=message.activity_id,
        value={
            "action": {"type": "Action.Execute", "verb": verb, "data": {**data, **inputs}},
            "trigger": "manual",
        },
    )


def words(card: dict[str, Any]) -> str:
    return " ".join(str(n.get("text", "")) for n in card_nodes(card))


async def test_dm_cards_signed_clicks_and_every_copy_kept_in_step(
    repo_factory: RepoFactory, connector: FakeConnector, agent: HttpReceiver, keys: Keys
) -> None:
    clock, repo = ManualClock(), await repo_factory()
    async with running(repo, connector, agent, clock, env=OPEN, tiers=DIRECT) as teams:
        rid = await teams.submit(reversible=False)  # two people must approve
        await teams.drain()
        thread = teams.thread(rid, JUNIOR)
        # `notify: both`: the channel thread, and a 1:1 chat opened with each reviewer.
        opened = [c.body for c in connector.created if not c.body.get("isGroup")]
        assert sorted(b["members"][0]["id"] for b in opened) == ["aad-alice", "aad-bob"]
        assert all(b["isGroup"] is False and b["tenantID"] == TENANT for b in opened)
        assert all(b["channelData"]["tenant"] == {"id": TENANT} for b in opened)
        [to_alice], [to_bob] = connector.sent_to("aad-alice"), connector.sent_to("aad-bob")
        for message in (to_alice, to_bob):
            card = message.card
            assert card is not None
            assert_adaptive_card(card)
            assert "msteams" not in card  # the reader is the one person it is for
            assert {d["request_id"] for d in _execute_data(card)} == {rid}
            assert "Needs two different people" in words(card)
        refs = {r.ref["target"]: r.ref for r in await repo.cards(rid)}
        assert set(refs) == {JUNIOR, "dm:aad-alice", "dm:aad-bob"}
        assert refs["dm:aad-bob"]["conversation_id"] == connector.chat("aad-bob")
        assert refs["dm:aad-bob"]["activity_id"] == to_bob.activity_id

        # "pending" in Bob's chat: his queue, as a card with the item's words and buttons.
        response = await teams.post(
            personal(connector, BOB, to_bob.conversation_id, type="message", text="pending")
        )
        assert response.status_code == 200
        queue = connector.sent_to("aad-bob")[-1]
        assert queue.card is not None and "text" not in queue.activity
        assert_adaptive_card(queue.card)
        assert queue.card["body"][0]["text"] == "📋 1 item waits for you"
        assert "Refund order 991" in words(queue.card)
        assert queue.activity["summary"] == "1 item waits for you"

    async with running(
        repo,
        connector,
        agent,
        clock,
        teams={},
        env=SECURED,
        openid_metadata_url=keys.url,
        tiers=DIRECT,
    ) as secured:
        signed = {"Authorization": keys.token(connector.service_url)}
        approve = click(connector, ALICE, to_alice, "approve")
        assert (await secured.post(approve)).status_code == 401  # unsigned: nothing happens
        assert (await secured.request(rid))["votes"] == []
        answer = await secured.post(approve, signed)
        assert answer.status_code == 200
        assert banner(answer.json()["value"]).startswith("Recorded: your approval is in (1 of 2)")
        # Bob decides from his queue card: the answer is his queue, redrawn.
        from_queue = click(connector, BOB, queue, "approve", **{f"rationale:{rid}": "fine"})
        answer = await secured.post(from_queue, signed)
        assert answer.status_code == 200
        redrawn = answer.json()["value"]
        assert_adaptive_card(redrawn)
        assert redrawn["body"][0]["text"] == "📋 Nothing is waiting for you."
        assert "Recorded: approved" in banner(redrawn)
        got = await secured.request(rid)
        assert got["status"] == "approved"
        assert [(v["name"], v["rationale"]) for v in got["votes"]] == [
            ("Alice", ""),
            ("Bob", "fine"),
        ]

    async with running(repo, connector, agent, clock, env=OPEN, tiers=DIRECT) as again:
        await again.drain()
        edited = {(u.conversation_id, u.activity_id) for u in connector.updates}
        copies = [
            (thread, thread.partition(";messageid=")[2]),
            (to_alice.conversation_id, to_alice.activity_id),
            (to_bob.conversation_id, to_bob.activity_id),
        ]
        assert set(copies) <= edited
        for conversation, activity in copies:
            card = connector.card(conversation, activity)
            assert_adaptive_card(card)
            assert not live(card)
            assert "Approved by Alice, Bob" in words(card)
        assert connector.refused == []


@pytest.fixture
async def teams_dm(connector: FakeConnector, agent: HttpReceiver) -> AsyncIterator[Teams]:
    tiers = [{**DIRECT[0], "remind_after": "10m"}, *DIRECT[1:]]
    async with running(
        InMemoryRepository(), connector, agent, ManualClock(), env=OPEN, tiers=tiers
    ) as world:
        yield world


async def test_dm_reminders_go_to_each_chat(teams_dm: Teams) -> None:
    rid = await teams_dm.submit()
    await teams_dm.drain()
    teams_dm.clock.advance(timedelta(minutes=11))
    assert await teams_dm.svc.engine.remind() == 1
    await teams_dm.drain()
    for user in ("aad-alice", "aad-bob"):
        card, reminder = [m.card for m in teams_dm.connector.sent_to(user)]
        assert card is not None and reminder is not None
        assert_adaptive_card(reminder)
        assert reminder["body"][0]["text"] == "⏰ still waiting for your verdict:"
        assert "Refund order 991" in words(reminder)
    assert rid in str(teams_dm.connector.card(teams_dm.thread(rid, JUNIOR)))


def test_direct_messages_need_the_tenant_id() -> None:
    config = make_config("http://127.0.0.1:9", "http://127.0.0.1:9/", {}, DIRECT)
    env = {"TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": "s3cret"}
    with pytest.raises(ConfigError) as missing:
        teams_channel(config, env)
    assert missing.value.path == "teams.tenant_id_env"
    assert "tier junior sends Teams direct messages" in str(missing.value)
    channel = teams_channel(config, {**env, "TEAMS_TENANT_ID": TENANT})
    assert channel is not None and channel.tenant_id == TENANT
    plain = make_config("http://127.0.0.1:9", "http://127.0.0.1:9/", {})
    assert teams_channel(plain, env) is not None  # channel cards alone need no tenant
