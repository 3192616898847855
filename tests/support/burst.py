"""A burst of cards into one tier that posts to Slack and Teams, in process, on the real clock.

The engine and outbox run in the test's own loop against a repository, with the real
`SlackChannel` and `TeamsChannel` talking HTTP to a `FakeSlack` and a `FakeConnector`
(whose rate limits the test turns on). The clock is the system's: a 429's Retry-After is
real time, and the outbox's next attempt is due when it passes.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.resume import WebhookResumeTarget
from adapters.slack import ChannelPacer, SlackChannel, slack_client
from adapters.teams import TeamsChannel
from adapters.teams.auth import TeamsCredentials
from adapters.web.channel import WebInboxChannel
from bot.core.clock import SystemClock
from bot.core.domain import OutboxStatus, Verdict
from bot.core.lanes import OutboxCaps
from bot.core.pacing import Pacer
from bot.core.ports import Channel, Repository
from bot.engine.machine import Engine
from bot.engine.metrics import Metrics
from bot.engine.outbox import OutboxWorker
from bot.engine.queue_cards import QueuePlanner
from bot.server.config import LoadedConfig, parse_config
from tests.support.fake_connector import FakeConnector
from tests.support.fake_slack import TOKEN, FakeSlack, Message, action_ids, all_text
from tests.support.world import new_request

SLACK_CHANNEL = "C0BURST"
TEAMS_CHANNEL = "19:burst@thread.tacv2"
REVIEWERS = ("slack:U0ALICE", "slack:U0BOB", "teams:aad-carol")


def burst_config(**extra: Any) -> LoadedConfig:
    return parse_config(
        {
            "agents": [{"id": "invoice-bot", "key_sha256": "0" * 64}],
            "routing": {"start_tier": {"low": "ops", "medium": "ops", "high": "ops"}},
            "tiers": [
                {
                    "name": "ops",
                    "sla": "1h",
                    "slack_channel": SLACK_CHANNEL,
                    "teams_channel": TEAMS_CHANNEL,
                    "reviewers": list(REVIEWERS),
                }
            ],
            **extra,
        },
        env={},
    )


@dataclass
class Burst:
    repo: Repository
    slack: FakeSlack
    teams: FakeConnector
    config: LoadedConfig = field(default_factory=burst_config)
    paced: bool = True
    queue_after: int = 0

    def __post_init__(self) -> None:
        self.clock = SystemClock()
        self.metrics = Metrics()
        self.engine = Engine(
            self.repo,
            self.config.policy,
            self.config.settings.agent_specs(),
            self.clock,
            channels=frozenset({"web", "slack", "teams"}),
            metrics=self.metrics,
        )
        # Unpaced, the channels send as fast as the outbox hands them work, so the
        # platforms' 429s (and nothing else) keep the pace.
        self.slack_channel = SlackChannel(
            slack_client(TOKEN, self.slack.api_url),
            pacer=ChannelPacer() if self.paced else ChannelPacer(0),
        )
        self.teams_channel = TeamsChannel.create(
            TeamsCredentials(app_id="", app_password=""),
            service_url=self.teams.service_url,
            verify=False,
        )
        if not self.paced:
            self.teams_channel.pacer = Pacer(0, service="Teams")
        channels: dict[str, Channel] = {
            "web": WebInboxChannel(),
            "slack": self.slack_channel,
            "teams": self.teams_channel,
        }
        self.worker = OutboxWorker(
            self.repo,
            self.config.policy,
            self.clock,
            channels=channels,
            resume=WebhookResumeTarget(),
            secrets=lambda _: None,
            metrics=self.metrics,
            public_url="http://signoff.test",
            caps=OutboxCaps(),
        )

        self.queues = QueuePlanner(self.engine, after=self.queue_after, max_items=200)

    async def submit(self, n: int) -> list[str]:
        ids = []
        for i in range(n):
            result = await self.engine.submit(
                "invoice-bot",
                new_request(summary=f"Pay INV-{i}", payload={"n": i}, confidence=0.2),
            )
            ids.append(str(result.response["id"]))
        return ids

    async def approve_all(self, ids: list[str]) -> None:
        for rid in ids:
            await self.engine.vote(rid, "slack:U0ALICE", Verdict.APPROVE, channel="slack")

    async def settle(self, timeout: float) -> None:  # noqa: ASYNC109
        """Run the outbox until nothing is pending (retries included) or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            await self.queues.plan()
            await self.worker.drain()
            if not await self.repo.list_outbox(status=OutboxStatus.PENDING, limit=1):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("outbox still has pending rows")
            await asyncio.sleep(0.1)

    def slack_cards(self) -> list[Message]:
        """The items' own cards in the tier's Slack channel."""
        return [
            m
            for m in self.slack.messages(SLACK_CHANNEL)
            if m.thread_ts is None and not is_queue_card(m.text + all_text(m.blocks))
        ]

    def slack_queue_cards(self) -> list[Message]:
        return [m for m in self.slack.messages(SLACK_CHANNEL) if is_queue_card(all_text(m.blocks))]

    def teams_queue_cards(self) -> list[dict[str, Any]]:
        return [
            self.teams.card(c.conversation_id)
            for c in self.teams.created
            if is_queue_card(json.dumps(c.card))
        ]

    def teams_cards(self) -> dict[str, dict[str, Any]]:
        """The card on screen now, by the id of the request its thread was posted for."""
        found: dict[str, dict[str, Any]] = {}
        for call in self.teams.created:
            request_id = _request_id(call.card)
            if request_id is not None:
                found[request_id] = self.teams.card(call.conversation_id)
        return found


def is_queue_card(text: str) -> bool:
    return "Queue `que_" in text or "Queue que_" in text


def slack_decided(message: Message) -> bool:
    return "signoff_approve" not in action_ids(message.blocks) and "Approved" in all_text(
        message.blocks
    )


def teams_decided(card: dict[str, Any]) -> bool:
    text = json.dumps(card)
    return '"Action.Execute"' not in text and "Approved" in text


def _request_id(card: Any) -> str | None:
    stack = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            data = node.get("data")
            if node.get("type") == "Action.Execute" and isinstance(data, dict):
                return str(data.get("request_id"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
