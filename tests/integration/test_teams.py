"""Microsoft Teams end to end: real HTTP both ways.

Signoff is served by uvicorn on a loopback port; Teams-shaped activities (invokes named
`adaptiveCard/action`, messages) are POSTed to its `/api/messages`; its outbound Bot
Connector calls go to a `FakeConnector` on another port; resumed agents are an
`HttpReceiver`. Flows run with `teams.auth: none` (real Bot Framework tokens cannot be had
offline); the auth tests configure an app id and check that missing, garbage, expired,
foreign and forged tokens get 401 and change nothing, and that a token signed by a key
served from a local OpenID metadata endpoint is accepted by botbuilder's own validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from standardwebhooks import Webhook

from adapters.teams import TeamsChannel
from adapters.teams.channel import THREAD_INTERVAL
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus
from bot.core.errors import ConfigError
from bot.core.pacing import Pacer
from bot.core.ports import Repository
from bot.server.app import build_services, create_app
from bot.server.config import LoadedConfig, parse_config
from bot.server.services import Services
from bot.server.teams import mount_teams, teams_channel
from storage.memory import InMemoryRepository
from tests.conftest import RepoFactory
from tests.support.fake_connector import FakeConnector
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.world import SECRET
from tests.unit.teams.schema import assert_adaptive_card, card_nodes

KEY = "sk_test_teams_invoice_bot"
TENANT = "tenant-0000-1111"
APP_ID = "00000000-app0-0000-0000-000000000001"
JUNIOR = "19:junior@thread.tacv2"
SENIOR = "19:senior@thread.tacv2"
MANAGER = "19:manager@thread.tacv2"
ALICE, BOB, SAM, SUE, MAX, MIA = "alice", "bob", "sam", "sue", "max", "mia"
OWNER, REQUESTER, EVE = "owner", "requester", "eve"

TIERS: list[dict[str, Any]] = [
    {
        "name": "junior",
        "sla": "15m",
        "remind_after": "10m",
        "teams_channel": JUNIOR,
        "reviewers": [f"teams:aad-{ALICE}", f"teams:aad-{BOB}"],
    },
    {
        "name": "senior",
        "sla": "1h",
        "teams_channel": SENIOR,
        "reviewers": [f"teams:aad-{SAM}", f"teams:aad-{SUE}"],
    },
    {
        "name": "manager",
        "sla": "4h",
        "teams_channel": MANAGER,
        "reviewers": [f"teams:aad-{MAX}", f"teams:aad-{MIA}"],
    },
]
RULES = [
    {"name": "refund", "when": 'action.kind == "refund"', "risk": "low"},
    {"name": "irreversible_action", "when": "!reversible", "risk": "low", "approvals": 2},
    {
        "name": "high_value_transaction",
        "when": 'action.kind == "payment" && amount > 500.0',
        "risk": "high",
    },
]
REFUND: dict[str, Any] = {
    "thread_id": "lg-7",
    "action": {"kind": "refund", "summary": "Refund order 991", "payload": {"order": 991}},
    "confidence": 0.9,
    "requested_by": f"teams:aad-{REQUESTER}",
    "context": {"summary": "Customer got a broken lamp", "recommendation": "refund in full"},
}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def make_config(
    agent_url: str,
    service_url: str,
    teams: dict[str, Any],
    tiers: list[dict[str, Any]] | None = None,
) -> LoadedConfig:
    return parse_config(
        {
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": digest(KEY),
                    "callback_url": f"{agent_url}/resume",
                    "webhook_secret_env": "INVOICE_SECRET",
                    "owner": f"teams:aad-{OWNER}",
                }
            ],
            "routing": {"rules": RULES},
            "tiers": TIERS if tiers is None else tiers,
            "teams": {"service_url": service_url, **teams},
        },
        env={},
    )


class _Server(uvicorn.Server):
    """uvicorn polls `should_exit` every 0.1 s; waking on an event keeps teardown instant."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.wake = asyncio.Event()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 1.0)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a loopback port, on this test's own event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(
        uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.002)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # the client is closed: no request is left in flight
        server.wake.set()
        await task
        sock.close()


_ids = itertools.count(1)


@dataclass
class Teams:
    """One running Signoff with Teams on, and the handles a test drives it through."""

    svc: Services
    channel: TeamsChannel
    connector: FakeConnector
    agent: HttpReceiver
    http: httpx.AsyncClient
    clock: ManualClock

    async def submit(self, body: dict[str, Any] | None = None, **changes: Any) -> str:
        response = await self.http.post(
            "/v1/requests",
            json={**(body or REFUND), **changes},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def drain(self) -> int:
        return await self.svc.worker.drain()

    async def request(self, rid: str) -> dict[str, Any]:
        response = await self.http.get(
            f"/v1/requests/{rid}", headers={"Authorization": f"Bearer {KEY}"}
        )
        body: dict[str, Any] = response.json()
        return body

    def thread(self, rid: str, channel: str | None = None) -> str:
        """The conversation id of the (latest) card posted for `rid`, in `channel` if given."""
        found = [
            c.conversation_id
            for c in self.connector.created
            if any(a.get("request_id") == rid for a in _execute_data(c.card))
            and (channel is None or c.body["channelData"]["channel"]["id"] == channel)
        ]
        assert found, f"no card for {rid} in {channel or 'any channel'}"
        return found[-1]

    def action_data(self, rid: str, verb: str, conversation: str | None = None) -> dict[str, Any]:
        """The data of the card's `verb` button as the card on screen carries it."""
        conversation = conversation or self.thread(rid)
        for data in _execute_data(self.connector.card(conversation), verb):
            return dict(data)
        # The card no longer has the button (decided, escalated): a stale client's copy.
        for call in self.connector.created:
            if call.conversation_id == conversation:
                return dict(next(iter(_execute_data(call.card, verb))))
        raise AssertionError(f"no {verb} button for {rid}")

    def invoke(
        self,
        rid: str,
        verb: str,
        user: str | None,
        *,
        inputs: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        conversation: str | None = None,
    ) -> dict[str, Any]:
        """An `adaptiveCard/action` invoke shaped like the ones Teams sends."""
        conversation = conversation or self.thread(rid)
        root = conversation.partition(";messageid=")[2]
        sender: dict[str, Any] = {"id": f"29:1{user}", "name": (user or "anon").title()}
        if user is not None:
            sender["aadObjectId"] = f"aad-{user}"
        return {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "id": f"f:{next(_ids)}",
            "timestamp": "2026-01-05T09:01:00.000Z",
            "localTimestamp": "2026-01-05T10:01:00.000+01:00",
            "serviceUrl": self.connector.service_url,
            "channelId": "msteams",
            "from": sender,
            "conversation": {
                "isGroup": True,
                "conversationType": "channel",
                "tenantId": TENANT,
                "id": conversation,
            },
            "recipient": {"id": f"28:{APP_ID}", "name": "Signoff"},
            "entities": [{"type": "clientInfo", "locale": "en-US", "platform": "Web"}],
            "channelData": {
                "channel": {"id": conversation.partition(";")[0]},
                "team": {"id": "19:team@thread.tacv2"},
                "tenant": {"id": TENANT},
                "source": {"name": "message"},
                "legacy": {"replyToId": f"1:{root}"},
            },
            "replyToId": root,
            "locale": "en-US",
            "value": {
                "action": {
                    "type": "Action.Execute",
                    "title": verb.title(),
                    "verb": verb,
                    "data": {
                        **(data or self.action_data(rid, verb, conversation)),
                        **(inputs or {}),
                    },
                },
                "trigger": "manual",
            },
        }

    async def post(
        self, activity: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post("/api/messages", json=activity, headers=headers or {})

    async def click(
        self, rid: str, verb: str, user: str | None, **inputs: Any
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """Click `verb` on the card as `user`; the response and the card it brought back."""
        response = await self.post(self.invoke(rid, verb, user, inputs=inputs))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["statusCode"] == 200
        assert body["type"] == "application/vnd.microsoft.card.adaptive"
        assert_adaptive_card(body["value"])
        return response, body["value"]

    def message(self, text: str, user: str, value: dict[str, Any] | None = None) -> dict[str, Any]:
        """A channel message @-mentioning the bot, as Teams delivers it."""
        activity: dict[str, Any] = {
            "type": "message",
            "id": f"{next(_ids)}",
            "text": f"<at>Signoff</at> {text}",
            "serviceUrl": self.connector.service_url,
            "channelId": "msteams",
            "from": {"id": f"29:1{user}", "name": user.title(), "aadObjectId": f"aad-{user}"},
            "conversation": {
                "isGroup": True,
                "conversationType": "channel",
                "tenantId": TENANT,
                "id": f"{JUNIOR};messageid=42",
            },
            "recipient": {"id": f"28:{APP_ID}", "name": "Signoff"},
            "entities": [
                {
                    "type": "mention",
                    "text": "<at>Signoff</at>",
                    "mentioned": {"id": f"28:{APP_ID}", "name": "Signoff"},
                }
            ],
            "channelData": {"tenant": {"id": TENANT}, "channel": {"id": JUNIOR}},
        }
        if value is not None:
            activity["value"] = value
            activity["text"] = ""
            activity["entities"] = []
        return activity


def _execute_data(card: Any, verb: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and verb in (None, node.get("verb")):
                found.append(node["data"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def banner(card: dict[str, Any]) -> str:
    """The message banner on a card returned to a clicker."""
    container = card["body"][1]
    assert container["type"] == "Container", "expected a message banner under the headline"
    return str(container["items"][0]["inlines"][0]["text"])


@asynccontextmanager
async def running(
    repo: Repository,
    connector: FakeConnector,
    agent: HttpReceiver,
    clock: ManualClock,
    *,
    teams: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    openid_metadata_url: str | None = None,
    tiers: list[dict[str, Any]] | None = None,
) -> AsyncIterator[Teams]:
    env = {"INVOICE_SECRET": SECRET, **(env or {})}
    if teams is None:
        teams = {"enabled": True, "auth": "none"}
    config = make_config(agent.url, connector.service_url, teams, tiers)
    channel = teams_channel(config, env, openid_metadata_url=openid_metadata_url)
    assert channel is not None
    svc = await build_services(
        config,
        repo=repo,
        clock=clock,
        channels={"teams": channel},
        env=env,
        start_scheduler=False,
    )
    async with svc.stack:
        app = create_app(config, services=svc)
        mount_teams(app, svc, None, env)  # the channel the outbox posts through
        async with (
            serving(app) as url,
            httpx.AsyncClient(
                base_url=url,
                timeout=10,
                verify=False,  # plain http: no CA bundle to load
            ) as http,
        ):
            yield Teams(svc, channel, connector, agent, http, clock)


# One fake connector and one agent endpoint serve the whole module (each is a uvicorn
# server in its own thread); every test starts them with a clean slate.
@pytest.fixture(scope="module")
def connector_server() -> Iterator[FakeConnector]:
    with FakeConnector() as fake:
        yield fake


@pytest.fixture(scope="module")
def agent_server() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def connector(connector_server: FakeConnector) -> FakeConnector:
    connector_server.reset()
    return connector_server


@pytest.fixture
def agent(agent_server: HttpReceiver) -> HttpReceiver:
    agent_server.clear()
    return agent_server


@pytest.fixture
async def teams(connector: FakeConnector, agent: HttpReceiver) -> AsyncIterator[Teams]:
    """Signoff with Teams on, over the in-memory repository (storage is not under test)."""
    async with running(InMemoryRepository(), connector, agent, ManualClock()) as world:
        yield world


@pytest.fixture
async def teams_db(
    repo_factory: RepoFactory, connector: FakeConnector, agent: HttpReceiver
) -> AsyncIterator[Teams]:
    """The same over every repository backend, for the flows whose refs must persist."""
    async with running(await repo_factory(), connector, agent, ManualClock()) as world:
        yield world


async def resumed(agent: HttpReceiver, count: int = 1) -> list[dict[str, Any]]:
    hits = await agent.wait_for(count, path="/resume")
    return [Webhook(SECRET).verify(hit.body, hit.headers) for hit in hits]


# -- posting -------------------------------------------------------------------------------


async def test_card_is_a_new_thread_in_the_tier_channel(teams_db: Teams) -> None:
    teams = teams_db
    rid = await teams.submit()
    await teams.drain()
    [created] = teams.connector.created
    body = created.body
    assert body["isGroup"] is True
    assert body["channelData"]["channel"]["id"] == JUNIOR
    assert created.authorization is None  # auth: none and no app id: anonymous calls
    activity = created.activity
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert_adaptive_card(card)
    assert {d["request_id"] for d in _execute_data(card)} == {rid}
    # The card stands alone (Teams splits text + card into two messages and then refuses
    # to edit them): the mentions live in the card, drawn from one of its TextBlocks.
    assert "text" not in activity and "entities" not in activity
    entities = card["msteams"]["entities"]
    assert {m["mentioned"]["id"] for m in entities} == {"aad-alice", "aad-bob"}
    blocks = [n["text"] for n in card_nodes(card["body"]) if n.get("type") == "TextBlock"]
    for mention in entities:
        assert mention["type"] == "mention" and any(mention["text"] in t for t in blocks)
    assert "Refund order 991" in activity["summary"]
    [ref] = await teams.svc.repo.cards(rid)
    assert ref.channel == "teams" and ref.tier == "junior"
    assert ref.ref == {
        "service_url": teams.connector.service_url,
        "conversation_id": created.conversation_id,
        "activity_id": created.activity_id,
        "tenant_id": None,
        "channel_id": JUNIOR,
        "target": JUNIOR,
    }


# -- verdicts ------------------------------------------------------------------------------


async def test_approve(teams_db: Teams) -> None:
    teams = teams_db
    rid = await teams.submit()
    await teams.drain()
    _, card = await teams.click(rid, "approve", ALICE)
    assert "Recorded: approved" in banner(card)
    assert not live(card)  # final: no buttons left, even for the clicker
    got = await teams.request(rid)
    assert got["status"] == "approved"
    [vote] = got["votes"]
    assert vote["reviewer"] == "teams:aad-alice" and vote["name"] == "Alice"
    assert vote["channel"] == "teams" and vote["verdict"] == "approve"
    await teams.drain()
    [update] = teams.connector.updates
    conversation = teams.thread(rid)
    assert (update.conversation_id, update.activity_id) == (
        conversation,
        conversation.partition(";messageid=")[2],
    )
    on_screen = teams.connector.card(conversation)
    assert_adaptive_card(on_screen)
    assert not live(on_screen)
    assert "Alice approved" in json.dumps(on_screen, ensure_ascii=False)
    [payload] = await resumed(teams.agent)
    assert payload["data"]["status"] == "approved"


async def test_reject_with_rationale(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    _, card = await teams.click(rid, "reject", BOB, rationale="  duplicate of order 990  ")
    assert "Recorded: rejected" in banner(card)
    got = await teams.request(rid)
    assert got["status"] == "rejected"
    assert got["votes"][0]["rationale"] == "duplicate of order 990"
    await teams.drain()
    assert "duplicate of order 990" in json.dumps(teams.connector.card(teams.thread(rid)))
    [payload] = await resumed(teams.agent)
    assert payload["data"]["status"] == "rejected"


async def test_missing_rationale_shows_the_error_and_records_nothing(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    before = len(await teams.svc.repo.audit_records(request_id=rid))
    for verb, inputs in (("reject", {}), ("reject", {"rationale": "   "}), ("modify", {})):
        _, card = await teams.click(rid, verb, ALICE, **inputs)
        assert banner(card).startswith(f"Not recorded: a rationale is required to {verb}")
        assert {"approve", "reject", "modify"} <= {
            a["verb"] for a in _actions(card) if a["type"] == "Action.Execute"
        }
    got = await teams.request(rid)
    assert got["status"] == "pending" and got["votes"] == []
    assert len(await teams.svc.repo.audit_records(request_id=rid)) == before
    await teams.drain()
    assert teams.connector.updates == []


def _actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action on the card: its own, its ActionSets' and those inside its ShowCards."""
    return [n for n in card_nodes(card) if str(n.get("type", "")).startswith("Action.")]


def live(card: dict[str, Any]) -> bool:
    """The card still has verdict buttons (`Action.Execute`) anywhere in it."""
    return bool(_execute_data(card))


async def test_high_risk_needs_a_rationale_even_to_approve(teams: Teams) -> None:
    body = {**REFUND, "action": {"kind": "payment", "summary": "Pay ACME", "payload": {}}}
    rid = await teams.submit(body, amount=5000, currency="USD")
    await teams.drain()
    assert teams.connector.created[0].body["channelData"]["channel"]["id"] == MANAGER
    _, card = await teams.click(rid, "approve", MAX)
    assert "high-risk" in banner(card)
    _, card = await teams.click(rid, "approve", MAX, rationale="PO-77 matches")
    got = await teams.request(rid)
    assert got["status"] == "approved" and got["votes"][0]["rationale"] == "PO-77 matches"


async def test_modify(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    _, card = await teams.click(
        rid, "modify", ALICE, rationale="half now", modified_payload='{"order": 991, "pct": 50}'
    )
    assert "Recorded: approved with changes" in banner(card)
    got = await teams.request(rid)
    assert got["status"] == "modified"
    assert got["modified_action"]["payload"] == {"order": 991, "pct": 50}
    await teams.drain()
    [payload] = await resumed(teams.agent)
    assert payload["data"]["modified_action"]["payload"] == {"order": 991, "pct": 50}


async def test_modify_with_bad_json_records_nothing(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    for text, problem in (("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")):
        _, card = await teams.click(rid, "modify", ALICE, rationale="x", modified_payload=text)
        assert problem in banner(card)
    assert (await teams.request(rid))["votes"] == []


async def test_two_person_rule_with_two_distinct_reviewers(teams_db: Teams) -> None:
    teams = teams_db
    rid = await teams.submit(reversible=False)
    await teams.drain()
    _, card = await teams.click(rid, "approve", ALICE)
    assert "(1 of 2)" in banner(card)
    assert "Needs two different people from tier junior or above — 1 of 2 approved, by Alice" in (
        json.dumps(card, ensure_ascii=False)
    )
    assert "approve" in {a.get("verb") for a in _actions(card)}
    assert (await teams.request(rid))["status"] == "pending"
    _, again = await teams.click(rid, "approve", ALICE)
    assert banner(again) == "Not recorded: you have already voted on this item."
    await teams.drain()
    assert "1 of 2" in json.dumps(teams.connector.card(teams.thread(rid)), ensure_ascii=False)
    _, card = await teams.click(rid, "approve", BOB)
    assert "Recorded: approved" in banner(card)
    got = await teams.request(rid)
    assert got["status"] == "approved"
    assert [v["reviewer"] for v in got["votes"]] == ["teams:aad-alice", "teams:aad-bob"]
    await teams.drain()
    assert not live(teams.connector.card(teams.thread(rid)))


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (EVE, "Not recorded: you are not a reviewer of tier junior or above."),
        (REQUESTER, "Not recorded: you requested this action, so you cannot decide it."),
        (None, "Not recorded: Teams did not say who you are (no Microsoft Entra object id)."),
    ],
)
async def test_refusals_change_nothing(teams: Teams, user: str | None, message: str) -> None:
    rid = await teams.submit()
    await teams.drain()
    before = len(await teams.svc.repo.audit_records(request_id=rid))
    _, card = await teams.click(rid, "approve", user)
    assert banner(card) == message
    got = await teams.request(rid)
    assert got["status"] == "pending" and got["votes"] == []
    assert len(await teams.svc.repo.audit_records(request_id=rid)) == before
    await teams.drain()
    assert teams.connector.updates == []


async def test_owner_and_already_decided_are_refused(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    _, card = await teams.click(rid, "approve", OWNER)
    assert banner(card) == (
        "Not recorded: you own agent invoice-bot, so you cannot decide its requests."
    )
    await teams.click(rid, "reject", ALICE, rationale="no")
    await teams.drain()
    # Bob's client still shows the old card with its buttons.
    _, card = await teams.click(rid, "approve", BOB)
    assert banner(card).startswith("Not recorded: this item is already rejected")
    assert not live(card)
    got = await teams.request(rid)
    assert [v["reviewer"] for v in got["votes"]] == ["teams:aad-alice"]


async def test_manager_may_act_on_a_junior_item_but_not_the_reverse(teams: Teams) -> None:
    body = {**REFUND, "action": {"kind": "payment", "summary": "Pay ACME", "payload": {}}}
    high = await teams.submit(body, amount=9000)
    low = await teams.submit()
    await teams.drain()
    _, card = await teams.click(high, "approve", ALICE, rationale="fine")
    assert "not a reviewer of tier manager" in banner(card)
    _, card = await teams.click(low, "approve", MIA)
    assert "Recorded: approved" in banner(card)


async def test_bad_invokes(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    activity = teams.invoke(rid, "approve", ALICE)
    activity["value"]["action"]["verb"] = "bless"
    response = await teams.post(activity)
    assert response.status_code == 400
    assert response.json()["type"] == "application/vnd.microsoft.error"
    activity = teams.invoke(rid, "approve", ALICE, data={"request_id": "req_nope"})
    response = await teams.post(activity)
    assert response.status_code == 404 and "req_nope" in response.json()["value"]["message"]
    activity = teams.invoke(rid, "approve", ALICE)
    activity["value"]["action"]["type"] = "Action.Submit"
    assert (await teams.post(activity)).status_code == 400
    activity["name"] = "composeExtension/query"
    assert (await teams.post(activity)).status_code == 501
    assert (await teams.http.post("/api/messages", content=b"{oops")).status_code == 415
    raw = {"content-type": "application/json"}
    assert (
        await teams.http.post("/api/messages", content=b"{oops", headers=raw)
    ).status_code == 400
    assert (await teams.post({"text": "no type"})).status_code == 400
    assert (await teams.request(rid))["votes"] == []


# -- review lane ---------------------------------------------------------------------------


async def test_review_card_confirm_and_reverse(teams: Teams) -> None:
    body = {**REFUND, "action": {"kind": "invoice", "summary": "Send INV-9", "payload": {}}}
    confirmed = await teams.submit(body, confidence=0.7)
    reversed_ = await teams.submit(body, confidence=0.7)
    await teams.drain()
    await resumed(teams.agent, 2)  # the review lane resumes the agent at once
    card = teams.connector.card(teams.thread(confirmed))
    assert {a.get("verb") for a in _actions(card)} >= {"confirm", "reverse"}
    _, card = await teams.click(confirmed, "confirm", ALICE)
    assert banner(card) == "Recorded: you confirmed what the agent did."
    assert not live(card)
    _, card = await teams.click(reversed_, "reverse", BOB)
    assert "rationale is required to reverse" in banner(card)
    _, card = await teams.click(reversed_, "reverse", BOB, rationale="wrong customer")
    assert (await teams.request(reversed_))["status"] == "reversed"
    await teams.drain()
    payloads = await resumed(teams.agent, 3)
    assert payloads[-1]["type"] == "request.reversed"


# -- escalation and reminders ---------------------------------------------------------------


async def test_escalation_marks_the_old_card_and_posts_in_the_next_tier(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    junior = teams.thread(rid, JUNIOR)
    teams.clock.advance(timedelta(minutes=16))
    assert await teams.svc.engine.sweep() == 1
    await teams.drain()
    old = teams.connector.card(junior)
    assert_adaptive_card(old)
    assert not live(old)
    assert "Escalated to senior" in json.dumps(old, ensure_ascii=False)
    senior = teams.thread(rid, SENIOR)
    [created] = [c for c in teams.connector.created if c.conversation_id == senior]
    assert created.card is not None and "text" not in created.activity
    mentioned = {m["mentioned"]["id"] for m in created.card["msteams"]["entities"]}
    assert mentioned == {"aad-sam", "aad-sue"}
    assert teams.connector.refused == []  # the junior copy's edit held no text
    _, card = await teams.click(rid, "approve", ALICE, conversation=junior)
    assert "not a reviewer of tier senior" in banner(card)
    _, card = await teams.click(rid, "approve", SAM, conversation=senior)
    assert "Recorded: approved" in banner(card)


async def test_reminder_is_a_reply_in_the_thread(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    conversation = teams.thread(rid)
    teams.clock.advance(timedelta(minutes=11))
    assert await teams.svc.engine.remind() == 1
    await teams.drain()
    [reply] = teams.connector.replies
    assert reply.conversation_id == conversation
    recorded = [
        r for r in teams.connector.requests if r.method == "POST" and "/activities" in r.path
    ]
    root = conversation.partition(";messageid=")[2]
    assert recorded[-1].path == f"/v3/conversations/{conversation}/activities/{root}"
    assert reply.activity["replyToId"] == root
    # A card alone (the deadline in each reader's own time zone), the mentions inside it.
    assert "text" not in reply.activity
    card = reply.card
    assert card is not None
    assert_adaptive_card(card)
    assert card["body"][0]["text"].startswith("⏰ <at>Reviewer 1</at> <at>Reviewer 2</at>")
    assert {m["mentioned"]["id"] for m in card["msteams"]["entities"]} == {"aad-alice", "aad-bob"}
    assert "Goes to tier senior at {{TIME(" in json.dumps(card, ensure_ascii=False)
    assert reply.activity["summary"] == "⏰ Still waiting for a verdict on “Refund order 991”"


# -- rate limits and restarts --------------------------------------------------------------


def clock_pacer(clock: ManualClock) -> Pacer:
    """Teams' pacing on the test's clock: a Retry-After holds a thread in that time."""

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)

    return Pacer(
        THREAD_INTERVAL, service="Teams", monotonic=lambda: clock.now().timestamp(), sleep=sleep
    )


async def test_a_429_storm_loses_no_card(teams_db: Teams) -> None:
    teams = teams_db
    teams.channel.pacer = clock_pacer(teams.clock)
    teams.connector.throttle("create", 7, retry_after="20")
    ids = [await teams.submit() for _ in range(3)]
    await teams.drain()
    rows = await teams.svc.repo.list_outbox(kind=OutboxKind.POST_CARD)
    assert all(r.status is OutboxStatus.PENDING for r in rows)
    for row in rows:  # Retry-After wins over the outbox's 5 s first step, never shortened
        wait = (row.next_attempt_at - teams.clock.now()).total_seconds()
        assert 20 <= wait <= 24
    # While the channel is held, the other cards wait without calling Teams: one 429 a round.
    for _ in range(10):
        teams.clock.advance(timedelta(minutes=2))
        await teams.drain()
    assert len(teams.connector.throttled) == 7
    assert sorted(teams.thread(rid) for rid in ids) == sorted(
        c.conversation_id for c in teams.connector.created
    )
    rows = await teams.svc.repo.list_outbox(kind=OutboxKind.POST_CARD)
    assert [r.status for r in rows] == [OutboxStatus.DONE] * 3
    teams.connector.throttle("update", 3, retry_after="2")
    await teams.click(ids[0], "approve", ALICE)
    for _ in range(6):
        await teams.drain()
        teams.clock.advance(timedelta(minutes=3))
    [update] = teams.connector.updates
    assert update.card is not None and not live(update.card)
    assert await teams.svc.repo.list_outbox(status=OutboxStatus.DEAD) == []


async def test_an_edit_the_connector_refuses_is_logged_counted_and_left_dead(
    teams: Teams, caplog: pytest.LogCaptureFixture
) -> None:
    rid = await teams.submit()
    await teams.drain()
    teams.connector.throttle(
        "update", 1, None, 400, ("BadSyntax", "Activity resulted into multiple skype activities")
    )
    with caplog.at_level(logging.ERROR, logger="signoff.teams"):
        await teams.click(rid, "approve", ALICE)
        await teams.drain()
    [row] = await teams.svc.repo.list_outbox(kind=OutboxKind.UPDATE_CARDS)
    assert row.status is OutboxStatus.DEAD and row.attempts == 1  # a 400 is not retried
    message = "(BadSyntax) Activity resulted into multiple skype activities"
    assert row.last_error is not None and message in row.last_error
    assert "HTTP 400" in row.last_error
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(message in e for e in errors), errors
    metrics = (await teams.http.get("/metrics")).text
    assert 'signoff_card_update_failures_total{channel="teams"} 1.0' in metrics


async def test_restart_between_post_and_update(
    repo_factory: RepoFactory, connector: FakeConnector, agent: HttpReceiver
) -> None:
    clock = ManualClock()
    async with running(await repo_factory(), connector, agent, clock) as before:
        rid = await before.submit()
        other = await before.submit(thread_id="lg-8")
        await before.drain()
        conversation = before.thread(rid)
    async with running(await repo_factory(), connector, agent, clock) as after:
        _, card = await after.click(rid, "approve", ALICE)
        assert "Recorded: approved" in banner(card)
        await after.drain()
    [update] = connector.updates
    assert update.conversation_id == conversation
    assert update.activity_id == conversation.partition(";messageid=")[2]
    assert not live(connector.card(conversation))
    assert "approve" in {a.get("verb") for a in _actions(connector.card(before.thread(other)))}


async def test_submit_to_signed_webhook(teams_db: Teams) -> None:
    teams = teams_db
    rid = await teams.submit()
    await teams.drain()
    await teams.click(rid, "approve", BOB)
    await teams.drain()
    [hit] = await teams.agent.wait_for(1, path="/resume")
    payload = Webhook(SECRET).verify(hit.body, hit.headers)
    assert payload["type"] == "request.resolved"
    data = json.loads(hit.body)["data"]
    assert data["id"] == rid and data["status"] == "approved"
    assert data["votes"][0]["reviewer"] == "teams:aad-bob"
    assert data["votes"][0]["channel"] == "teams"
    assert len(data["action_sha256"]) == 64


# -- messages ------------------------------------------------------------------------------


async def test_warning_signs_post_once_to_the_alerts_channel(
    connector: FakeConnector, agent: HttpReceiver
) -> None:
    ops = "19:ops@thread.tacv2"
    teams_config = {"enabled": True, "auth": "none", "alerts_channel": ops}
    clock = ManualClock()
    async with running(InMemoryRepository(), connector, agent, clock, teams=teams_config) as t:
        for _ in range(12):
            await t.submit()
        await t.drain()
        watch = t.svc.watch
        await watch.evaluate()
        await watch.evaluate()
        await t.drain()
        [alert] = [c for c in connector.created if c.body["channelData"]["channel"]["id"] == ops]
        card = alert.card
        assert card is not None
        assert_adaptive_card(card)
        assert "Warning sign: escalation high" in json.dumps(card)
        assert card["actions"][0]["url"].endswith("/dashboard")

        clock.advance(timedelta(days=2))
        await watch.evaluate()
        await t.drain()
        posted = [c for c in connector.created if c.body["channelData"]["channel"]["id"] == ops]
        assert len(posted) == 2 and "Cleared: escalation high" in json.dumps(posted[1].card)


async def test_action_submit_fallback_from_an_old_client(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    fallback = next(
        a["fallback"]
        for a in _actions(teams.connector.card(teams.thread(rid)))
        if a.get("verb") == "approve"
    )
    response = await teams.post(teams.message("", ALICE, value=fallback["data"]))
    assert response.status_code == 200
    assert (await teams.request(rid))["status"] == "approved"
    [reply] = teams.connector.replies
    assert reply.activity["text"].startswith("Recorded: approved")


async def test_commands(teams: Teams) -> None:
    rid = await teams.submit()
    await teams.drain()
    for text, user, expected in (
        ("pending", ALICE, "1 item(s) wait for you:\n- Refund order 991 (🟢 low risk; Refund; "),
        ("pending", EVE, "Nothing is waiting for you."),
        ("stop invoice-bot runaway loop", ALICE, "Not done: "),
        ("stop invoice-bot", MAX, "Say why"),
        ("stop ghost-bot oops", MAX, "There is no agent 'ghost-bot'."),
        ("stop invoice-bot runaway loop", MAX, "Stopped invoice-bot"),
        ("help", ALICE, "Signoff posts approval cards here."),
    ):
        response = await teams.post(teams.message(text, user))
        assert response.status_code == 200
        assert teams.connector.replies[-1].activity["text"].startswith(expected), text
    assert rid in teams.connector.replies[0].activity["text"]
    stopped = await teams.http.post(
        "/v1/requests", json=REFUND, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert stopped.json()["status"] == "rejected"
    await teams.post(teams.message("start invoice-bot", MAX))
    assert teams.connector.replies[-1].activity["text"] == "Started invoice-bot again."


# -- wiring --------------------------------------------------------------------------------


async def test_mounted_before_the_services_exist(
    connector: FakeConnector, agent: HttpReceiver
) -> None:
    env = {"INVOICE_SECRET": SECRET}
    off = make_config(agent.url, connector.service_url, {})
    for config, expected in (
        (off, 404),
        (make_config(agent.url, connector.service_url, {"enabled": True, "auth": "none"}), 200),
    ):
        svc = await build_services(
            config,
            repo=InMemoryRepository(),
            channels={"teams": channel} if (channel := teams_channel(config, env)) else None,
            env=env,
            start_scheduler=False,
        )
        async with svc.stack:
            app = create_app(config)  # services come later, as in the lifespan
            mount_teams(app, None, None, env)
            mount_teams(app, None, None, env)  # twice is harmless
            app.state.services = svc
            async with serving(app) as url, httpx.AsyncClient(base_url=url, verify=False) as http:
                message = {
                    "type": "message",
                    "text": "help",
                    "channelId": "msteams",
                    "serviceUrl": connector.service_url,
                    "from": {"id": "29:1", "aadObjectId": "aad-alice"},
                    "conversation": {"id": "a:1"},
                    "recipient": {"id": f"28:{APP_ID}"},
                }
                response = await http.post("/api/messages", json=message)
                assert response.status_code == expected, response.text


# -- auth ----------------------------------------------------------------------------------


def test_teams_stays_off_without_credentials_and_refuses_half_configs() -> None:
    config = make_config("http://127.0.0.1:9", "http://127.0.0.1:9/", {})
    assert teams_channel(config, {}) is None
    enabled = make_config("http://127.0.0.1:9", "http://127.0.0.1:9/", {"enabled": True})
    with pytest.raises(ConfigError) as missing_id:
        teams_channel(enabled, {})
    assert missing_id.value.path == "teams.app_id_env"
    with pytest.raises(ConfigError) as missing_secret:
        teams_channel(config, {"TEAMS_APP_ID": APP_ID})
    assert missing_secret.value.path == "teams.app_password_env"
    channel = teams_channel(config, {"TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": "s3cret"})
    assert channel is not None and channel.auth.verify and channel.tenant_id is None


SECURED = {"TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": "s3cret", "TEAMS_TENANT_ID": TENANT}


@dataclass
class Keys:
    """A signing key served from a local OpenID metadata endpoint, as the Bot Framework does."""

    url: str
    key: rsa.RSAPrivateKey

    def token(
        self, service_url: str, *, key: rsa.RSAPrivateKey | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        body = {
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "serviceurl": service_url,
            "nbf": now - 60,
            "exp": now + 3600,
            **claims,
        }
        signed = jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})
        return f"Bearer {signed}"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def keys(signing_key: rsa.RSAPrivateKey) -> AsyncIterator[Keys]:
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="k1", use="sig", endorsements=["msteams"])
    async with HttpReceiver() as server:
        metadata = {"issuer": "https://api.botframework.com", "jwks_uri": f"{server.url}/keys"}
        server.set_handler("/openid", lambda _: _json(metadata))
        server.set_handler("/keys", lambda _: _json({"keys": [jwk]}))
        yield Keys(f"{server.url}/openid", signing_key)


def _json(data: Any) -> Reply:
    return Reply.json(data)


async def test_without_a_valid_token_nothing_changes(
    connector: FakeConnector, agent: HttpReceiver, keys: Keys
) -> None:
    clock, repo = ManualClock(), InMemoryRepository()
    async with running(repo, connector, agent, clock) as open_:
        rid = await open_.submit()
        await open_.drain()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    service_url = connector.service_url
    async with running(
        repo, connector, agent, clock, teams={}, env=SECURED, openid_metadata_url=keys.url
    ) as secured:
        activity = secured.invoke(rid, "approve", ALICE)
        for header in (
            None,
            "",
            "Bearer",
            "Basic YWxpY2U6cGFzcw==",
            "Bearer not.a.jwt",
            keys.token(service_url, exp=int(time.time()) - 3600, nbf=int(time.time()) - 7200),
            keys.token(service_url, aud="someone-else"),
            keys.token(service_url, iss="https://evil.example"),
            keys.token("https://evil.example/"),
            keys.token(service_url, key=other),
        ):
            response = await secured.post(activity, {"Authorization": header} if header else {})
            assert response.status_code == 401, header
            assert response.json()["error"] == "unauthorized"
        got = await secured.request(rid)
        assert got["status"] == "pending" and got["votes"] == []
        response = await secured.post(activity, {"Authorization": keys.token(service_url)})
        assert response.status_code == 200
        assert "Recorded: approved" in banner(response.json()["value"])
        assert (await secured.request(rid))["status"] == "approved"


async def test_production_auth_refuses_missing_and_garbage_tokens(
    connector: FakeConnector, agent: HttpReceiver
) -> None:
    clock, repo = ManualClock(), InMemoryRepository()
    async with running(repo, connector, agent, clock) as open_:
        rid = await open_.submit()
        await open_.drain()
        activity = open_.invoke(rid, "approve", ALICE)
    # The real Bot Framework settings: these headers are refused before any key is fetched.
    async with running(repo, connector, agent, clock, teams={}, env=SECURED) as secured:
        assert secured.channel.auth.verify
        for header in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Bearer a.b.c"}):
            response = await secured.post(activity, header)
            assert response.status_code == 401
        assert (await secured.request(rid))["votes"] == []


async def test_auth_none_is_only_on_when_configured(
    teams: Teams, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config("http://127.0.0.1:9", "http://127.0.0.1:9/", {"auth": "none"})
    assert teams_channel(config, {}) is None  # not enabled, no app id: off
    on = make_config("http://127.0.0.1:9", "http://127.0.0.1:9/", {"enabled": True, "auth": "none"})
    with caplog.at_level("WARNING", logger="signoff.teams"):
        channel = teams_channel(on, {})
    assert channel is not None and not channel.auth.verify
    assert "Teams authentication is OFF" in caplog.text
    assert teams.channel.auth.verify is False
