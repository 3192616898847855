"""Slack over Socket Mode end to end: `signoff serve`'s app (services built in its lifespan,
the scheduler running) with only the bot token and the app token, no signing secret and no
public URL. It connects out to a fake Slack's WebSocket and is driven by envelopes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from adapters.slack import SlackApp
from bot.server.app import create_app
from bot.server.config import parse_config
from tests.integration.test_slack import KEY, MEDIUM, TIERS
from tests.support.fake_slack import APP_TOKEN, TOKEN, FakeSlack, Message, action_ids, all_text
from tests.support.http_receiver import HttpReceiver
from tests.support.loopback import LoopbackServer
from tests.support.slack_payloads import (
    app_home_opened,
    block_actions,
    form_body,
    signed,
    slash_command,
    view_submission,
)
from tests.support.world import SECRET as WEBHOOK_SECRET

ENV = {
    "SLACK_BOT_TOKEN": TOKEN,
    "SLACK_APP_TOKEN": APP_TOKEN,
    "AGENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
    # The scheduler runs as in `serve`, just often enough for a test to wait on it.
    "SIGNOFF_OUTBOX_INTERVAL": "0.2",
}


@dataclass
class Served:
    slack: FakeSlack
    agent: HttpReceiver
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def slack_app(self) -> SlackApp:
        slack: SlackApp = self.app.state.slack
        return slack

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

    async def card(self, rid: str) -> Message:
        await self.slack.wait_for("chat.postMessage", 1)
        [card] = [m for m in self.slack.messages() if f"`{rid}`" in all_text(m.blocks)]
        return card

    async def click(
        self, uid: str, action_id: str, rid: str, *, drop_after_send: bool = False
    ) -> str:
        payload = block_actions(
            await self.card(rid),
            uid,
            action_id,
            rid,
            response_url=self.slack.response_url(f"click-{uid}"),
        )
        return self.slack.deliver("interactive", payload, drop_after_send=drop_after_send)

    async def resumed(self) -> dict[str, Any]:
        [hit] = await self.agent.wait_for(1, path="/resume")
        body: dict[str, Any] = Webhook(WEBHOOK_SECRET).verify(hit.body, hit.headers)
        return body


@asynccontextmanager
async def serve(tmp_path: Path, env: dict[str, str] = ENV) -> AsyncIterator[Served]:
    async with FakeSlack() as slack, HttpReceiver() as agent:
        config = parse_config(
            {
                "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
                "agents": [
                    {
                        "id": "invoice-bot",
                        "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                        "callback_url": f"{agent.url}/resume",
                        "webhook_secret_env": "AGENT_WEBHOOK_SECRET",
                    }
                ],
                "routing": {"start_tier": {"low": "junior", "medium": "junior", "high": "manager"}},
                "tiers": TIERS,
                "slack": {"api_url": slack.api_url},
            },
            env={},
        )
        app = create_app(config, env=env)
        server = LoopbackServer()
        async with (
            server.serve(app),
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        ):
            yield Served(slack, agent, app, http)


async def test_a_click_over_the_socket_records_the_vote_and_resumes_the_agent(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path) as s:
        await s.slack.wait_connected()
        [opened] = s.slack.calls("apps.connections.open")
        assert opened.status == 200
        rid = await s.submit(MEDIUM)
        card = await s.card(rid)
        assert card.channel == "C0JUNIOR" and "signoff_approve" in action_ids(card.blocks)

        envelope = await s.click("U0AAA", "signoff_approve", rid)
        ack = await s.slack.wait_ack(envelope)
        assert ack.payload is None  # a click is acknowledged with nothing to say

        [update] = await s.slack.wait_for("chat.update", 1)
        assert (update.args["channel"], update.args["ts"]) == (card.channel, card.ts)
        body = await s.resumed()
        assert body["data"]["status"] == "approved"
        got = await s.get(rid)
        [vote] = got["votes"]
        assert (vote["reviewer"], vote["name"], vote["channel"]) == (
            "slack:U0AAA",
            "alice",
            "slack",
        )
        assert action_ids(s.slack.messages()[0].blocks) == []

        # No signing secret: nothing that arrives over HTTP can be verified, so none counts.
        form = form_body({"type": "block_actions"})
        for secret in ("", "guess"):
            refused = await s.http.post("/slack/events", content=form, headers=signed(form, secret))
            assert refused.status_code == 401


async def test_slash_command_envelope_answers_through_the_response_url(tmp_path: Path) -> None:
    async with serve(tmp_path) as s:
        await s.slack.wait_connected()
        rid = await s.submit(MEDIUM)
        await s.card(rid)
        url = s.slack.response_url("pending")
        envelope = s.slack.deliver(
            "slash_commands",
            slash_command("U0BBB", "pending", channel="C0JUNIOR", response_url=url),
        )
        ack = await s.slack.wait_ack(envelope)
        assert ack.payload is None
        await s.slack.rx.wait_for(1, path="/respond/pending")
        [answer] = s.slack.responses()
        assert answer["response_type"] == "ephemeral"
        assert answer["text"] == "1 item waiting for you"
        assert rid in all_text(answer["blocks"]) and "signoff_approve" in action_ids(
            answer["blocks"]
        )


async def test_opening_the_app_home_over_the_socket_draws_the_queue(tmp_path: Path) -> None:
    async with serve(tmp_path) as s:
        await s.slack.wait_connected()
        rid = await s.submit(MEDIUM)
        await s.card(rid)
        envelope = s.slack.deliver("events_api", app_home_opened("U0AAA"))
        await s.slack.wait_ack(envelope)
        [published] = await s.slack.wait_for("views.publish", 1)
        assert published.args["user_id"] == "U0AAA"
        home = s.slack.home("U0AAA")
        assert home is not None and rid in all_text(home["blocks"])
        assert action_ids(home["blocks"])[0] == "signoff_approve"


async def test_modify_modal_errors_come_back_in_the_ack(tmp_path: Path) -> None:
    async with serve(tmp_path) as s:
        await s.slack.wait_connected()
        rid = await s.submit(MEDIUM)
        await s.slack.wait_ack(await s.click("U0AAA", "signoff_modify", rid))
        [opened] = await s.slack.wait_for("views.open", 1)
        view = opened.view

        bad = s.slack.deliver(
            "interactive", view_submission("U0AAA", view, rationale="fix", payload='{"invoice": ')
        )
        ack = await s.slack.wait_ack(bad)
        assert ack.payload is not None and ack.payload["response_action"] == "errors"
        assert "Not valid JSON" in ack.payload["errors"]["modified_payload"]
        assert (await s.get(rid))["votes"] == []

        good = s.slack.deliver(
            "interactive",
            view_submission("U0AAA", view, rationale="wrong invoice", payload='{"invoice": "I-2"}'),
        )
        assert (await s.slack.wait_ack(good)).payload is None
        body = await s.resumed()
        assert body["data"]["status"] == "modified"
        assert body["data"]["modified_action"]["payload"] == {"invoice": "I-2"}


async def test_reconnects_when_slack_drops_the_socket_and_loses_no_envelope(
    tmp_path: Path,
) -> None:
    async with serve(tmp_path) as s:
        await s.slack.wait_connected()
        rid = await s.submit(MEDIUM)
        card = await s.card(rid)

        # Slack's periodic refresh: a disconnect message, then the socket closes. What is sent
        # meanwhile waits for the next connection.
        s.slack.drop()
        details = await s.click("U0ZZZ", "signoff_details", rid)
        ack = await s.slack.wait_ack(details)
        assert ack.connection >= 2 and len(s.slack.calls("apps.connections.open")) >= 2
        await s.slack.wait_for("views.open", 1)
        # slack_sdk reconnects both on the disconnect message and on the close, so the envelope
        # may have gone out on a connection the client then replaced, and out again: it is
        # handled once all the same.
        await s.slack_app.idle()
        assert len(s.slack.calls("views.open")) == 1

        # The socket drops right after an envelope went out, before its ack could come back:
        # Slack delivers it again, and Signoff acknowledges it without handling it twice.
        opened, _ = s.slack.connections()
        approve = await s.click("U0AAA", "signoff_approve", rid, drop_after_send=True)
        await s.slack.wait_connected(opened + 1)
        await s.slack.wait_ack(approve)
        assert s.slack.deliveries(approve) >= 2
        assert (await s.resumed())["data"]["status"] == "approved"
        assert [v["reviewer"] for v in (await s.get(rid))["votes"]] == ["slack:U0AAA"]
        await s.slack.wait_for("chat.update", 1)
        assert s.slack.message(card.channel, card.ts).edits == 1
        assert s.slack.calls("chat.postEphemeral") == []  # no "you already voted"


async def test_a_wrong_app_token_keeps_signoff_serving_and_no_secret_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xapp-1-A0SIGNOFF-1-revoked"
    async with serve(tmp_path, {**ENV, "SLACK_APP_TOKEN": wrong}) as s:
        await s.slack.wait_for("apps.connections.open", 1)
        rid = await s.submit(MEDIUM)  # the API serves while Slack refuses the socket
        await s.card(rid)  # and cards still go out through the Web API
        assert s.slack.connections() == (0, 0)
    assert "invalid_auth" in caplog.text  # the SDK logs the failure and keeps retrying
    for secret in (TOKEN, wrong, APP_TOKEN, WEBHOOK_SECRET):
        assert secret not in caplog.text
