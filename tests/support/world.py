"""A small world for engine tests: config, clock, engine and worker over one repository."""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.resume import WebhookResumeTarget
from adapters.web.channel import WebInboxChannel
from bot.core.clock import ManualClock
from bot.core.ports import Channel, Repository, ResumeTarget
from bot.engine.machine import Engine
from bot.engine.metrics import Metrics
from bot.engine.outbox import OutboxWorker
from bot.server.config import LoadedConfig, parse_config
from bot.server.services import secret_lookup
from signoff_client.submission import Submission

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()

TIERS: list[dict[str, Any]] = [
    {"name": "junior", "sla": "15m", "remind_after": "10m", "reviewers": ["web:jan", "web:jill"]},
    {"name": "senior", "sla": "1h", "reviewers": ["web:sam", "web:sue"]},
    {"name": "manager", "sla": "4h", "reviewers": ["web:max", "web:mia", "web:mo"]},
]


def make_config(
    callback_url: str | None = "http://127.0.0.1:9/resume",
    *,
    routing: Mapping[str, Any] | None = None,
    tiers: list[dict[str, Any]] | None = None,
    owner: str | None = "web:owner",
) -> LoadedConfig:
    agent: dict[str, Any] = {"id": "invoice-bot", "key_sha256": "0" * 64, "owner": owner}
    if callback_url:
        agent.update(callback_url=callback_url, webhook_secret_env="TEST_WEBHOOK_SECRET")
    data: dict[str, Any] = {"agents": [agent], "tiers": tiers or TIERS}
    if routing is not None:
        data["routing"] = dict(routing)
    return parse_config(data, env={})


@dataclass
class World:
    repo: Repository
    config: LoadedConfig
    clock: ManualClock
    resume: ResumeTarget | None = None
    channels: dict[str, Channel] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    # As `signoff serve` wires it: web cards posted in the submit's own transaction.
    inline_web: bool = False

    def __post_init__(self) -> None:
        self.metrics = Metrics()
        web = WebInboxChannel()
        self.engine = Engine(
            self.repo,
            self.config.policy,
            self.config.settings.agent_specs(),
            self.clock,
            channels=frozenset({"web", *self.channels}),
            metrics=self.metrics,
            inline_channels={"web": web} if self.inline_web else None,
            people=self.config.settings.directory(),
        )
        channels: dict[str, Channel] = {"web": web, **self.channels}
        self.worker = OutboxWorker(
            self.repo,
            self.config.policy,
            self.clock,
            channels=channels,
            resume=self.resume or WebhookResumeTarget(),
            secrets=secret_lookup(self.config, {"TEST_WEBHOOK_SECRET": SECRET}),
            metrics=self.metrics,
            public_url="http://127.0.0.1:8000",
            rng=self.rng,
        )

    async def submit(self, **fields: Any) -> str:
        result = await self.engine.submit("invoice-bot", new_request(**fields))
        return str(result.response["id"])


def new_request(**fields: Any) -> Submission:
    """A submission as the HTTP layer hands it to the engine (validated by the same model)."""
    kind = fields.pop("kind", "invoice")
    summary = fields.pop("summary", "Pay INV-123 to ACME")
    payload = fields.pop("payload", {"invoice": "INV-123"})
    fields.setdefault("confidence", 0.9)
    action = {"kind": kind, "summary": summary, "payload": payload}
    return Submission.model_validate({"action": action, **fields})
