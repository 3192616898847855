"""Deliveries isolated from each other (issue 15, section 2), over real loopback HTTP.

Agent A's receiver accepts connections and never answers. Agent B's webhook and a card in
another lane must still go out at once, A may hold no more than its destination's cap, and a
delivery that outlives its lease keeps it (renewed) instead of being sent twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from bot.core.domain import OutboxKind, OutboxStatus
from bot.core.errors import ConfigError
from bot.core.ports import CardView
from bot.server.app import build_services
from bot.server.config import LoadedConfig, parse_config
from bot.server.services import Services
from tests.conftest import RepoFactory
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.world import new_request

SECRET = "whsec_" + base64.b64encode(b"isolation-test-secret-0123").decode()
ENV = {"A_SECRET": SECRET, "B_SECRET": SECRET}


class HangingReceiver:
    """Accepts TCP connections on loopback, reads, and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while await reader.read(65536):
                pass
        finally:
            self.open -= 1
            writer.close()

    async def __aenter__(self) -> HangingReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


class RecordingChannel:
    """A chat platform stand-in that notes when each card arrived."""

    name = "slack"

    def __init__(self) -> None:
        self.posted: dict[str, float] = {}

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        self.posted[view.request.id] = time.monotonic()
        return {"target": view.target}

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None


def config(a_url: str, b_url: str, outbox: Mapping[str, Any] | None = None) -> LoadedConfig:
    def agent(name: str, url: str) -> dict[str, Any]:
        return {
            "id": f"{name}-bot",
            "key_sha256": hashlib.sha256(name.encode()).hexdigest(),
            "callback_url": url,
            "webhook_secret_env": f"{name.upper()}_SECRET",
        }

    tiers = [
        {"name": "junior", "sla": "15m", "slack_channel": "C0JUNIOR", "reviewers": ["web:jan"]},
        {"name": "senior", "sla": "1h", "slack_channel": "C0SENIOR", "reviewers": ["web:sam"]},
        {"name": "manager", "sla": "4h", "slack_channel": "C0MGR", "reviewers": ["web:max"]},
    ]
    data: dict[str, Any] = {"agents": [agent("a", a_url), agent("b", b_url)], "tiers": tiers}
    if outbox is not None:
        data["outbox"] = dict(outbox)
    return parse_config(data, env={})


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    async with HttpReceiver() as rx:
        yield rx


async def services(
    loaded: LoadedConfig, repo_factory: RepoFactory, env: Mapping[str, str], **kw: Any
) -> Services:
    return await build_services(
        loaded, repo=await repo_factory(), env={**ENV, **env}, start_scheduler=False, **kw
    )


async def test_a_hanging_receiver_delays_only_its_own_deliveries(
    repo_factory: RepoFactory, receiver: HttpReceiver
) -> None:
    slack = RecordingChannel()
    async with HangingReceiver() as hanging:
        svc = await services(
            config(hanging.url, f"{receiver.url}/hook"),
            repo_factory,
            {},
            channels={"slack": slack},
        )
        async with svc.stack:
            for _ in range(12):  # autonomous: a webhook each, all to the hanging origin
                await svc.engine.submit("a-bot", new_request(confidence=0.95))
            b = await svc.engine.submit("b-bot", new_request(confidence=0.95))
            card = await svc.engine.submit("b-bot", new_request(confidence=0.3))
            start = time.monotonic()
            drain = asyncio.create_task(svc.worker.drain())
            try:
                [hook] = await receiver.wait_for(1, path="/hook", timeout=3)
                assert hook.json()["data"]["id"] == b.response["id"]
                for _ in range(100):
                    if card.response["id"] in slack.posted:
                        break
                    await asyncio.sleep(0.02)
                assert slack.posted[card.response["id"]] - start < 3
                # A holds at most its destination's cap, the rest wait in the table.
                await asyncio.sleep(0.3)
                assert hanging.most_open == 4
                pending = await svc.repo.list_outbox(
                    kind=OutboxKind.WEBHOOK, status=OutboxStatus.PENDING, agent_id="a-bot"
                )
                assert len(pending) == 12
                assert sum(1 for m in pending if m.lease_owner) == 4
            finally:
                await svc.worker.stop(grace=0)
                # Stopping ends the drain: nothing more is claimed, nothing left running.
                assert await asyncio.wait_for(drain, 2) == 6
            # Stopped: the cancelled attempts gave their leases back for another worker.
            after = await svc.repo.list_outbox(kind=OutboxKind.WEBHOOK, agent_id="a-bot")
            assert all(m.lease_owner is None for m in after)


async def test_a_delivery_that_outlives_its_lease_keeps_it(
    repo_factory: RepoFactory, receiver: HttpReceiver
) -> None:
    receiver.respond("/slow", Reply(200, delay=2.5))
    loaded = config(f"{receiver.url}/slow", f"{receiver.url}/other")
    lease = {"SIGNOFF_OUTBOX_LEASE": "0.9"}
    a = await services(loaded, repo_factory, lease)
    async with a.stack:
        b = await services(loaded, repo_factory, lease)
        async with b.stack:
            await a.engine.submit("a-bot", new_request(confidence=0.95))
            holder = asyncio.create_task(a.worker.drain())
            await receiver.wait_for(1, path="/slow", timeout=3)  # A holds it and is sending
            deadline = time.monotonic() + 2.2
            taken_over = 0
            while time.monotonic() < deadline:  # well past the 0.9 s lease
                taken_over += await b.worker.drain()
                await asyncio.sleep(0.1)
            assert await holder == 1
            assert taken_over == 0
            assert [r.path for r in receiver.requests] == ["/slow"]
            [done] = await a.repo.list_outbox(kind=OutboxKind.WEBHOOK)
            assert done.status is OutboxStatus.DONE and done.attempts == 1


async def test_caps_come_from_the_config_and_a_starved_lane_is_refused() -> None:
    loaded = config("http://127.0.0.1:9/a", "http://127.0.0.1:9/b", {"per_destination": 1})
    caps = loaded.settings.outbox.caps()
    assert caps.per_destination == 1 and caps.max_in_flight == 32
    with pytest.raises(ConfigError) as refused:
        config("http://127.0.0.1:9/a", "http://127.0.0.1:9/b", {"max_in_flight": 8})
    assert refused.value.path == "outbox"
    assert "leaves lane cards no slot" in refused.value.problem
