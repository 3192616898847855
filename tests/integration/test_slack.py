"""Slack end to end: the real app served on loopback HTTP, a fake Slack Web API, and signed
payloads shaped like Slack's own (block_actions, view_submission, slash commands)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from slack_sdk.models.blocks import Block
from standardwebhooks import Webhook

from adapters.slack import ChannelPacer, SlackApp
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus
from bot.server.app import build_services, create_app
from bot.server.config import LoadedConfig, parse_config
from bot.server.services import Services
from bot.server.slack import mount_slack, slack_channel
from tests.conftest import RepoFactory
from tests.support.fake_slack import (
    TOKEN,
    FakeSlack,
    Message,
    SlackCall,
    action_ids,
    all_text,
    button_value,
)
from tests.support.http_receiver import HttpReceiver
from tests.support.slack_payloads import (
    block_actions,
    form_body,
    signed,
    slash_command,
    view_submission,
)
from tests.support.world import SECRET as WEBHOOK_SECRET

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ENV = {
    "SLACK_BOT_TOKEN": TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "AGENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
}
KEY = "sk_test_invoice_bot"
TIERS: list[dict[str, Any]] = [
    {
        "name": "junior",
        "sla": "15m",
        "remind_after": "10m",
        "slack_channel": "C0JUNIOR",
        "reviewers": ["slack:U0AAA", "slack:U0BBB", "slack:U0REQ", "web:jan"],
    },
    {"name": "senior", "sla": "1h", "slack_channel": "C0SENIOR", "reviewers": ["slack:U0CCC"]},
    {
        "name": "manager",
        "sla": "4h",
        "slack_channel": "C0MGR",
        "reviewers": ["slack:U0DDD", "slack:U0EEE", "slack:U0OWNER"],
    },
]
MEDIUM: dict[str, Any] = {
    "thread_id": "lg-1",
    "action": {"kind": "invoice", "summary": "Pay INV-1 to ACME", "payload": {"invoice": "INV-1"}},
    "confidence": 0.3,
    "requested_by": "slack:U0REQ",
    "context": {"summary": "ACME invoice", "recommendation": "pay it", "alternatives": ["wait"]},
}
TWO_PERSON: dict[str, Any] = {
    "action": {"kind": "wire", "summary": "Wire 9,000 EUR", "payload": {"iban": "DE00"}},
    "confidence": 0.95,
    "reversible": False,
    "amount": 9000,
    "currency": "EUR",
}
REVIEW: dict[str, Any] = {
    "action": {"kind": "invoice", "summary": "Pay INV-7", "payload": {"invoice": "INV-7"}},
    "confidence": 0.6,
}


def config(api_url: str, resume_url: str) -> LoadedConfig:
    return parse_config(
        {
            "public_url": "http://signoff.test",
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                    "callback_url": resume_url,
                    "webhook_secret_env": "AGENT_WEBHOOK_SECRET",
                    "owner": "slack:U0OWNER",
                }
            ],
            "routing": {"start_tier": {"low": "junior", "medium": "junior", "high": "manager"}},
            "tiers": TIERS,
            "slack": {"api_url": api_url, "alerts_channel": "C0OPS"},
        },
        env={},
    )


class VirtualTime:
    """Monotonic time and sleep on the test's ManualClock: pacing at Slack's real one message
    per second per channel costs no wall-clock time, and the outbox sees the same time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.clock.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)


class AppServer(uvicorn.Server):
    """The app on 127.0.0.1 in the test's own event loop (services live on this loop)."""

    def __init__(self, app: FastAPI, lifespan: str = "off") -> None:
        super().__init__(
            uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False, http="h11")
        )
        self.wake = asyncio.Event()
        self.up = asyncio.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test runner owns the signals

    async def main_loop(self) -> None:
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 1.0)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.up.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown always sleeps 0.1 s; the test has closed its client already.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()

    async def start(self) -> None:
        self.task = asyncio.create_task(self.serve(sockets=[self.sock]))
        await asyncio.wait_for(self.up.wait(), 5)

    async def stop(self) -> None:
        self.should_exit = True
        self.wake.set()
        if self.task is not None:
            await self.task
        self.sock.close()


@dataclass
class World:
    slack: FakeSlack
    agent: HttpReceiver
    svc: Services
    app: FastAPI
    server: AppServer
    http: httpx.AsyncClient
    clock: ManualClock
    time: VirtualTime
    acks: list[float] = field(default_factory=list)

    @property
    def slack_app(self) -> SlackApp:
        slack: SlackApp = self.app.state.slack
        return slack

    async def close(self) -> None:
        await self.http.aclose()
        await self.server.stop()
        await self.svc.stack.aclose()

    # -- the agent side --

    async def submit(self, body: dict[str, Any]) -> str:
        response = await self.http.post(
            "/v1/requests", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def get(self, rid: str) -> dict[str, Any]:
        response = await self.http.get(
            f"/v1/requests/{rid}", headers={"Authorization": f"Bearer {KEY}"}
        )
        data: dict[str, Any] = response.json()
        return data

    async def drain(self) -> None:
        await self.svc.worker.drain()

    async def settle(self) -> None:
        """Let clicks finish their work after the ack, then run the outbox."""
        async with asyncio.timeout(10):
            await self.slack_app.idle()
        await self.drain()

    # -- Slack's side --

    def card(self, rid: str, channel: str | None = None) -> Message:
        [card] = [
            m
            for m in self.slack.messages(channel)
            if m.thread_ts is None and f"`{rid}`" in all_text(m.blocks)
        ]
        return card

    async def send(
        self,
        body: bytes,
        *,
        ts: int | None = None,
        secret: str = SIGNING_SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = time.perf_counter()
        headers = {**signed(body, secret, ts=ts), **(headers or {})}
        response = await self.http.post("/slack/events", content=body, headers=headers)
        self.acks.append(time.perf_counter() - sent)
        return response

    def click_body(self, uid: str, action_id: str, rid: str, channel: str | None = None) -> bytes:
        card = self.card(rid, channel)
        url = self.slack.response_url(f"click-{uid}-{time.monotonic_ns()}")
        return form_body(block_actions(card, uid, action_id, rid, response_url=url))

    async def click(
        self, uid: str, action_id: str, rid: str, channel: str | None = None
    ) -> httpx.Response:
        response = await self.send(self.click_body(uid, action_id, rid, channel))
        assert response.status_code == 200, response.text
        return response

    async def opened(self, count: int) -> dict[str, Any]:
        """The view of the `count`-th views.open call."""
        calls = await self.slack.wait_for("views.open", count)
        return calls[count - 1].view

    async def submit_view(
        self,
        uid: str,
        view: dict[str, Any],
        *,
        rationale: str | None = None,
        payload: str | None = None,
    ) -> httpx.Response:
        body = view_submission(uid, view, rationale=rationale, payload=payload)
        return await self.send(form_body(body))

    async def command(self, uid: str, text: str, channel: str = "C0MGR") -> httpx.Response:
        url = self.slack.response_url(f"cmd-{uid}-{time.monotonic_ns()}")
        form = slash_command(uid, text, channel=channel, response_url=url)
        response = await self.send(urlencode(form).encode())
        assert response.status_code == 200, response.text
        return response


async def open_world(
    repo_factory: RepoFactory,
    slack: FakeSlack,
    clock: ManualClock,
    loaded: LoadedConfig | None = None,
) -> World:
    """Signoff served on loopback with Slack pointed at `slack`; `loaded` defaults to this
    module's config."""
    loaded = loaded or config(slack.api_url, f"{slack.rx.url}/resume")
    virtual = VirtualTime(clock)
    pacer = ChannelPacer(1.0, monotonic=virtual.monotonic, sleep=virtual.sleep)
    channel = slack_channel(loaded, ENV, pacer=pacer)
    assert channel is not None
    svc = await build_services(
        loaded,
        repo=await repo_factory(),
        clock=clock,
        channels={"slack": channel},
        env=ENV,
        start_scheduler=False,
    )
    app = create_app(loaded, services=svc)
    mount_slack(app, svc, channel, ENV)
    server = AppServer(app)
    await server.start()
    # A fresh connection per request: on a kept-alive loopback connection, delayed ACKs add
    # about 40 ms to every response.
    http = httpx.AsyncClient(
        base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )
    return World(slack, slack.rx, svc, app, server, http, clock, virtual)


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    world = await open_world(repo_factory, slack, ManualClock())
    try:
        yield world
    finally:
        await world.close()


def ephemerals(w: World, uid: str) -> list[SlackCall]:
    return [c for c in w.slack.calls("chat.postEphemeral") if c.args["user"] == uid]


async def resumed(w: World, count: int = 1) -> list[dict[str, Any]]:
    """The verified webhook bodies the agent received."""
    hits = await w.agent.wait_for(count, path="/resume")
    return [Webhook(WEBHOOK_SECRET).verify(h.body, h.headers) for h in hits]


# -- the flows -------------------------------------------------------------------------------


async def test_approve_click_resumes_the_agent_and_rewrites_the_card(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    [post] = w.slack.calls("chat.postMessage")
    assert post.args["channel"] == "C0JUNIOR"
    assert "<@U0AAA>" in post.args["text"] and "<@U0BBB>" in post.args["text"]
    card = w.card(rid, "C0JUNIOR")
    assert action_ids(card.blocks) == [
        "signoff_approve",
        "signoff_reject",
        "signoff_modify",
        "signoff_allow_similar",
        "signoff_details",
    ]
    assert "Pay INV-1 to ACME" in all_text(card.blocks) and "pay it" in all_text(card.blocks)

    await w.click("U0AAA", "signoff_approve", rid)
    await w.settle()

    got = await w.get(rid)
    assert got["status"] == "approved"
    [vote] = got["votes"]
    assert (vote["reviewer"], vote["name"], vote["channel"]) == ("slack:U0AAA", "alice", "slack")
    [update] = w.slack.calls("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (card.channel, card.ts)
    card = w.card(rid)
    assert action_ids(card.blocks) == [] and card.edits == 1
    assert "Approved" in all_text(card.blocks) and "alice" in all_text(card.blocks)
    [body] = await resumed(w)
    assert body["data"]["status"] == "approved" and body["data"]["votes"][0]["name"] == "alice"
    assert w.slack.calls("chat.postEphemeral") == [] and w.slack.calls("views.open") == []


async def test_reject_opens_a_modal_and_the_submission_records_the_rationale(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    response = await w.click("U0BBB", "signoff_reject", rid)
    assert response.content == b""
    view = await w.opened(1)
    [opened] = w.slack.calls("views.open")
    assert opened.args["trigger_id"].endswith(".4242.0123456789abcdef")
    assert view["callback_id"] == "signoff_verdict"
    assert json.loads(view["private_metadata"]) == {"request_id": rid, "verdict": "reject"}
    assert [b.get("block_id") for b in view["blocks"] if b["type"] == "input"] == ["rationale"]
    await w.settle()
    assert (await w.get(rid))["votes"] == []  # opening the modal records nothing

    done = await w.submit_view("U0BBB", view, rationale="Duplicate of INV-0")
    assert done.status_code == 200 and done.content == b""
    await w.settle()
    got = await w.get(rid)
    assert got["status"] == "rejected"
    assert got["votes"][0]["rationale"] == "Duplicate of INV-0"
    card = w.card(rid)
    assert action_ids(card.blocks) == []
    assert "Rejected" in all_text(card.blocks) and "Duplicate of INV-0" in all_text(card.blocks)
    [body] = await resumed(w)
    assert body["data"]["status"] == "rejected"


async def test_modify_validates_json_in_the_modal_and_records_nothing_until_valid(
    w: World,
) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    await w.click("U0AAA", "signoff_modify", rid)
    view = await w.opened(1)
    [edit] = [b for b in view["blocks"] if b.get("block_id") == "modified_payload"]
    assert json.loads(edit["element"]["initial_value"]) == {"invoice": "INV-1"}
    assert edit["element"]["action_id"] == "modified_payload"

    bad = await w.submit_view("U0AAA", view, rationale="fix", payload='{"invoice": ')
    assert bad.status_code == 200
    assert bad.json()["response_action"] == "errors"
    assert "Not valid JSON" in bad.json()["errors"]["modified_payload"]
    not_object = await w.submit_view("U0AAA", view, rationale="fix", payload="[1, 2]")
    assert "JSON object" in not_object.json()["errors"]["modified_payload"]
    no_reason = await w.submit_view("U0AAA", view, rationale="  ", payload='{"invoice": "X"}')
    assert set(no_reason.json()["errors"]) == {"rationale"}
    await w.settle()
    assert (await w.get(rid))["votes"] == []
    assert w.slack.calls("chat.update") == []

    good = await w.submit_view(
        "U0AAA", view, rationale="wrong invoice", payload='{"invoice": "INV-2"}'
    )
    assert good.content == b""
    await w.settle()
    got = await w.get(rid)
    assert got["status"] == "modified"
    assert got["modified_action"]["payload"] == {"invoice": "INV-2"}
    [body] = await resumed(w)
    assert body["data"]["modified_action"]["payload"] == {"invoice": "INV-2"}


async def test_two_person_high_risk_approval_takes_two_rationales(w: World) -> None:
    rid = await w.submit(TWO_PERSON)
    await w.drain()
    card = w.card(rid, "C0MGR")
    assert "Needs two different people from tier manager or above — 0 of 2 approved\n" in all_text(
        card.blocks
    )

    await w.click("U0DDD", "signoff_approve", rid)  # high risk: even approve needs a why
    first = await w.opened(1)
    assert json.loads(first["private_metadata"])["verdict"] == "approve"
    await w.submit_view("U0DDD", first, rationale="IBAN checked")
    await w.settle()
    assert (await w.get(rid))["status"] == "pending"
    assert "1 of 2 approved, by dan" in all_text(w.card(rid).blocks)
    assert action_ids(w.card(rid).blocks)[0] == "signoff_approve"

    await w.click("U0DDD", "signoff_approve", rid)  # the same person again
    await w.settle()
    [again] = ephemerals(w, "U0DDD")
    assert again.args["channel"] == "C0MGR" and "already voted" in again.args["text"]
    assert len(w.slack.calls("views.open")) == 1

    await w.click("U0EEE", "signoff_approve", rid)
    second = await w.opened(2)
    await w.submit_view("U0EEE", second, rationale="four eyes")
    await w.settle()
    got = await w.get(rid)
    assert got["status"] == "approved"
    assert [v["name"] for v in got["votes"]] == ["dan", "erin"]
    assert action_ids(w.card(rid).blocks) == []
    [body] = await resumed(w)
    assert body["data"]["status"] == "approved"


async def test_refusals_are_ephemeral_and_change_nothing(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    refusals = [
        ("U0ZZZ", "signoff_approve", "not a reviewer of tier junior"),
        ("U0REQ", "signoff_approve", "you requested this action"),
        ("U0OWNER", "signoff_reject", "you own agent invoice-bot"),  # refused before a modal
    ]
    for uid, action_id, why in refusals:
        await w.click(uid, action_id, rid)
        await w.settle()
        [told] = ephemerals(w, uid)
        assert told.args["channel"] == "C0JUNIOR" and why in told.args["text"].lower()
    assert (await w.get(rid))["votes"] == []
    assert w.slack.calls("views.open") == [] and w.slack.calls("chat.update") == []


async def test_two_reviewers_clicking_at_once_one_wins_the_other_is_told_who(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    bodies = [w.click_body(uid, "signoff_approve", rid) for uid in ("U0AAA", "U0BBB")]
    answers = await asyncio.gather(*(w.send(body) for body in bodies))
    assert [a.status_code for a in answers] == [200, 200]
    await w.settle()
    got = await w.get(rid)
    [vote] = got["votes"]
    winner = vote["name"]
    loser = "U0BBB" if winner == "alice" else "U0AAA"
    [told] = w.slack.calls("chat.postEphemeral")
    assert told.args["user"] == loser
    assert "already approved" in told.args["text"] and winner in told.args["text"]
    assert len(w.slack.calls("chat.update")) == 1


async def test_bad_or_stale_signatures_get_401_and_change_nothing(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    body = w.click_body("U0AAA", "signoff_approve", rid)
    forged = await w.send(body, secret="not-the-signing-secret")
    stale = await w.send(body, ts=int(time.time()) - 6 * 60)
    future = await w.send(body, ts=int(time.time()) + 6 * 60)
    garbled = await w.send(body, headers={"x-slack-request-timestamp": "soon"})
    unsigned = await w.http.post(
        "/slack/events", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    tampered_body = body.replace(b"U0AAA", b"U0BBB")
    stamp = str(int(time.time()))
    good_sig = (
        "v0="
        + hmac.new(
            SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256
        ).hexdigest()
    )
    tampered = await w.http.post(
        "/slack/events",
        content=tampered_body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": stamp,
            "x-slack-signature": good_sig,
        },
    )
    for response in (forged, stale, future, garbled, unsigned, tampered):
        assert response.status_code == 401
    await w.settle()
    assert (await w.get(rid))["votes"] == []
    assert [c.method for c in w.slack.calls() if c.method != "chat.postMessage"] == []
    still = await w.send(body)  # the same click, properly signed, still works
    assert still.status_code == 200


async def test_a_retried_delivery_never_doubles_anything(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    reject = w.click_body("U0AAA", "signoff_reject", rid)
    await w.send(reject)
    retry = {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    assert (await w.send(reject, headers=retry)).status_code == 200
    await w.settle()
    assert len(w.slack.calls("views.open")) == 1

    approve = w.click_body("U0BBB", "signoff_approve", rid)
    await w.send(approve)
    await w.send(approve, headers=retry)
    await w.send(approve, headers={**retry, "x-slack-retry-num": "2"})
    await w.settle()
    got = await w.get(rid)
    assert [v["reviewer"] for v in got["votes"]] == ["slack:U0BBB"]
    assert w.slack.calls("chat.postEphemeral") == []
    assert len(w.slack.calls("chat.update")) == 1


async def test_escalation_posts_in_the_next_tier_and_marks_the_old_card(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    old = w.card(rid, "C0JUNIOR")
    w.clock.advance(timedelta(minutes=16))
    assert await w.svc.engine.sweep() == 1
    await w.drain()
    old = w.slack.message(old.channel, old.ts)
    assert action_ids(old.blocks) == []
    assert "Escalated to senior" in all_text(old.blocks)
    new = w.card(rid, "C0SENIOR")
    assert action_ids(new.blocks)[:2] == ["signoff_approve", "signoff_reject"]
    [post] = [c for c in w.slack.calls("chat.postMessage") if c.args["channel"] == "C0SENIOR"]
    assert "<@U0CCC>" in post.args["text"] and "<@U0AAA>" not in post.args["text"]

    await w.click("U0AAA", "signoff_approve", rid, "C0JUNIOR")  # a stale client's button
    await w.settle()
    [told] = ephemerals(w, "U0AAA")
    assert "not a reviewer of tier senior" in told.args["text"]
    await w.click("U0CCC", "signoff_approve", rid, "C0SENIOR")
    await w.settle()
    assert (await w.get(rid))["status"] == "approved"
    assert action_ids(w.slack.message(old.channel, old.ts).blocks) == []
    assert action_ids(w.card(rid, "C0SENIOR").blocks) == []


async def test_a_reminder_is_a_thread_reply_to_the_card(w: World) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    card = w.card(rid)
    w.clock.advance(timedelta(minutes=11))
    assert await w.svc.engine.remind() == 1
    await w.drain()
    [reply] = [m for m in w.slack.messages("C0JUNIOR") if m.thread_ts is not None]
    assert reply.thread_ts == card.ts
    assert "<@U0AAA>" in reply.text and "Pay INV-1 to ACME" in reply.text


async def test_review_cards_confirm_and_reverse(w: World) -> None:
    kept = await w.submit(REVIEW)
    undone = await w.submit({**REVIEW, "thread_id": "other"})
    await w.drain()
    assert action_ids(w.card(kept).blocks) == [
        "signoff_confirm",
        "signoff_reverse",
        "signoff_details",
    ]
    await w.click("U0AAA", "signoff_confirm", kept)
    await w.click("U0BBB", "signoff_reverse", undone)
    view = await w.opened(1)
    assert json.loads(view["private_metadata"]) == {"request_id": undone, "verdict": "reverse"}
    await w.submit_view("U0BBB", view, rationale="wrong vendor")
    await w.settle()
    assert (await w.get(kept))["review_status"] == "confirmed"
    assert (await w.get(undone))["status"] == "reversed"
    assert action_ids(w.card(kept).blocks) == [] and action_ids(w.card(undone).blocks) == []
    assert "Confirmed" in all_text(w.card(kept).blocks)
    bodies = await resumed(w, 3)
    assert sorted(b["type"] for b in bodies) == [
        "request.resolved",
        "request.resolved",
        "request.reversed",
    ]


async def test_details_opens_the_full_context(w: World) -> None:
    rid = await w.submit({**MEDIUM, "context": {**MEDIUM["context"], "customer": {"id": "C-9"}}})
    await w.drain()
    await w.click("U0ZZZ", "signoff_details", rid)
    view = await w.opened(1)
    assert view["callback_id"] == "signoff_details"
    text = all_text(view["blocks"])
    assert "C-9" in text and "ACME invoice" in text
    await w.settle()
    assert (await w.get(rid))["votes"] == []


async def test_slash_command_stop_start_and_pending(w: World) -> None:
    await w.command("U0AAA", "stop invoice-bot looping")
    await w.settle()
    [refused] = w.slack.responses()
    assert refused["response_type"] == "ephemeral" and "manager" in refused["text"]

    await w.command("U0DDD", "stop invoice-bot looping on INV-1")
    await w.settle()
    stopped = w.slack.responses()[-1]
    assert stopped["response_type"] == "in_channel" and "looping on INV-1" in stopped["text"]
    response = await w.http.post(
        "/v1/requests", json=MEDIUM, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.json()["status"] == "rejected"
    assert response.json()["reasons"] == ["agent_stopped"]
    events = [r.event for r in await w.svc.repo.audit_records() if r.event.event == "stopped"]
    assert [(e.actor, e.channel) for e in events] == [("slack:U0DDD", "slack")]

    await w.command("U0EEE", "start invoice-bot")
    await w.settle()
    await w.submit(MEDIUM)
    await w.command("U0AAA", "pending")
    await w.settle()  # answers go out after the ack, each in its own time
    await w.command("U0AAA", "dance")
    await w.settle()
    started, pending, usage = w.slack.responses()[-3:]
    assert "started agent `invoice-bot`" in started["text"]
    assert "1 item waiting for you" in pending["text"] and pending["response_type"] == "ephemeral"
    # The same queue as the App Home: each item's card words and its buttons.
    assert "http://signoff.test/requests/req_" in all_text(pending["blocks"])
    assert "Pay INV-1 to ACME" in all_text(pending["blocks"])
    assert action_ids(pending["blocks"]) == [
        "signoff_approve",
        "signoff_reject",
        "signoff_modify",
        "signoff_allow_similar",
        "signoff_details",
    ]
    assert "Unknown command" in usage["text"]


async def test_a_restart_between_click_and_card_update_loses_nothing(
    repo_factory: RepoFactory, slack: FakeSlack
) -> None:
    clock = ManualClock()
    first = await open_world(repo_factory, slack, clock)
    rid = await first.submit(MEDIUM)
    await first.drain()
    await first.click("U0AAA", "signoff_approve", rid)
    async with asyncio.timeout(10):
        await first.slack_app.idle()
    await first.close()  # the process stops before the outbox ran
    assert slack.calls("chat.update") == []

    second = await open_world(repo_factory, slack, clock)
    try:
        await second.drain()
        card = second.card(rid)
        [update] = slack.calls("chat.update")
        assert update.args["ts"] == card.ts and action_ids(card.blocks) == []
        [body] = await resumed(second)
        assert body["data"]["status"] == "approved"
    finally:
        await second.close()


async def test_a_burst_of_300_cards_through_429s_loses_none_and_never_spins(
    w: World, backend: str
) -> None:
    # The SQL backends write ~40 outbox rows a second on a laptop, so they take a smaller
    # burst to keep the suite fast; the in-memory run takes the full 300.
    count = 300 if backend == "memory" else 60
    # Slack answers every 25th post with 429: "Retry-After: 1", and once a long 30 s.
    w.slack.throttle(
        "chat.postMessage", lambda n: (30.0 if n == 50 else 1.0) if n % 25 == 0 else None
    )
    ids = set()
    for i in range(count):
        result = await w.svc.engine.submit(
            "invoice-bot", _new_request(f"Pay INV-{i}", confidence=0.3)
        )
        ids.add(str(result.response["id"]))
    started = time.monotonic()
    rounds = 0
    while await w.svc.repo.list_outbox(kind=OutboxKind.POST_CARD, status=OutboxStatus.PENDING):
        rounds += 1
        assert rounds <= 20, "the outbox is spinning"
        await w.drain()
        w.clock.advance(timedelta(seconds=10))
    posts = w.slack.calls("chat.postMessage")
    refused = [c for c in posts if c.status == 429]
    cards = w.slack.messages("C0JUNIOR")
    assert {button_value(m.blocks, "signoff_approve") for m in cards} == ids
    assert len(cards) == count  # every card, exactly once
    assert len(posts) == count + len(refused)  # no call while Slack asked us to wait
    assert len(refused) >= count // 25
    assert w.time.slept >= count - 1  # paced at one message per second of (virtual) time
    assert await w.svc.repo.list_outbox(kind=OutboxKind.POST_CARD, status=OutboxStatus.DEAD) == []
    assert time.monotonic() - started < 20


def _new_request(summary: str, **fields: Any) -> Any:
    from tests.support.world import new_request

    return new_request(summary=summary, kind="invoice", payload={"n": summary}, **fields)


async def test_an_app_that_builds_its_services_at_startup_serves_slack(
    repo_factory: RepoFactory, slack: FakeSlack
) -> None:
    """The `signoff serve` path: services are built in the lifespan, Slack on first use."""
    clock = ManualClock()
    loaded = config(slack.api_url, f"{slack.rx.url}/resume")
    virtual = VirtualTime(clock)
    channel = slack_channel(
        loaded, ENV, pacer=ChannelPacer(monotonic=virtual.monotonic, sleep=virtual.sleep)
    )
    assert channel is not None
    app = create_app(
        loaded,
        repo=await repo_factory(),
        clock=clock,
        channels={"slack": channel},
        env=ENV,
        start_scheduler=False,
    )
    mount_slack(app, None, None, ENV)
    server = AppServer(app, lifespan="on")
    await server.start()
    http = httpx.AsyncClient(
        base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )
    w = World(slack, slack.rx, app.state.services, app, server, http, clock, virtual)
    try:
        rid = await w.submit(MEDIUM)
        await w.drain()
        assert app.state.slack is None  # not built before Slack's first request
        await w.click("U0AAA", "signoff_approve", rid)
        await w.settle()
        assert (await w.get(rid))["status"] == "approved"
        assert action_ids(w.card(rid).blocks) == []
    finally:
        await http.aclose()
        await server.stop()


async def test_warning_signs_post_once_to_the_alerts_channel_and_clear(w: World) -> None:
    watch = w.svc.watch
    for _ in range(12):
        await w.submit(MEDIUM)
    await w.drain()

    await watch.evaluate()
    await watch.evaluate()  # still holds: no second message
    await w.drain()
    metrics = (await w.http.get("/metrics")).text
    assert 'signoff_warning_signs{sign="escalation_high"} 1.0' in metrics

    [raised] = w.slack.messages("C0OPS")
    assert raised.text.startswith("⚠️ Warning sign: escalation high")
    assert "12 of 12" in all_text(raised.blocks)
    assert "http://signoff.test/dashboard" in all_text(raised.blocks)
    for block in raised.blocks:
        Block.parse(block).validate_json()  # type: ignore[union-attr]

    w.clock.advance(timedelta(days=2))  # the burst leaves the 24-hour window
    await watch.evaluate()
    await watch.evaluate()
    await w.drain()
    raised_then_cleared = w.slack.messages("C0OPS")
    assert [m.text.split(":")[0] for m in raised_then_cleared] == [
        "⚠️ Warning sign",
        "✅ Cleared",
    ]


async def test_slack_is_off_without_credentials(repo_factory: RepoFactory) -> None:
    loaded = config("http://127.0.0.1:9/api/", "http://127.0.0.1:9/resume")
    assert slack_channel(loaded, {}) is None
    assert slack_channel(loaded, {"SLACK_BOT_TOKEN": TOKEN}) is None
    svc = await build_services(loaded, repo=await repo_factory(), start_scheduler=False, env={})
    async with svc.stack:
        app = create_app(loaded, services=svc)
        mount_slack(app, svc, None, {})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://signoff"
        ) as client:
            response = await client.post("/slack/events", content=b"payload=%7B%7D")
            assert response.status_code == 404
