"""Several replicas on one database, played in one process: cross-replica wake-ups
(LISTEN/NOTIFY), lease fencing of a stalled outbox worker, and clock skew between sweeps.

The multi-process versions (SIGKILL, SIGSTOP, a dropped database) are in
`test_fault_injection.py`; these run in a second or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus, Status, Verdict
from bot.core.errors import ConfigError
from bot.core.learning import GrantRequest
from bot.core.ports import DeliveryAttempt, Repository, WebhookDelivery
from bot.core.views import CardView
from bot.engine.outbox import LEASE
from bot.engine.waiters import Waiters
from bot.server.app import Timing, build_services, create_app
from bot.server.config import parse_config
from bot.server.services import Services
from storage import (
    InMemoryNotifier,
    InMemoryRepository,
    PostgresNotifier,
    SqlRepository,
    upgrade,
    upgrade_async,
)
from tests.contract._databases import NO_POSTGRES, POSTGRES_URL, postgres_schema
from tests.support.http_receiver import HttpReceiver
from tests.support.world import SECRET, World, make_config

KEY = "sk_test_replica_bot"
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        await upgrade_async(url)
        yield url


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
async def shared_repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Repository]:
    """One store that both 'replicas' of a test use."""
    if request.param == "memory":
        yield InMemoryRepository()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'signoff.db'}"
        await asyncio.to_thread(upgrade, url)
        repo = SqlRepository.connect(url)
        try:
            yield repo
        finally:
            await repo.close()
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        await upgrade_async(url)
        repo = SqlRepository.connect(url)
        try:
            yield repo
        finally:
            await repo.close()


def replica_config(url: str, callback_url: str) -> Any:
    return parse_config(
        {
            "database_url": url,
            "agents": [
                {
                    "id": "replica-bot",
                    "key_sha256": digest(KEY),
                    "callback_url": callback_url,
                    "webhook_secret_env": "REPLICA_SECRET",
                }
            ],
            "routing": {"start_tier": {"low": "junior", "medium": "junior"}},
            "tiers": [
                {"name": "junior", "sla": "15m", "reviewers": ["web:jan"]},
                {"name": "senior", "sla": "1h", "reviewers": ["web:sam"]},
            ],
        },
        env={},
    )


def client(services: Services) -> httpx.AsyncClient:
    app = create_app(services.config, services=services)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    )


BODY = {"action": {"kind": "refund", "summary": "Refund order 7"}, "confidence": 0.3}


# -- notifiers -------------------------------------------------------------------------------


async def test_in_memory_notifiers_reach_their_peers_but_not_themselves() -> None:
    hub: list[InMemoryNotifier] = []
    a, b, c = InMemoryNotifier(hub), InMemoryNotifier(hub), InMemoryNotifier()
    got: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    for name, notifier in (("a", a), ("b", b), ("c", c)):
        notifier.subscribe("request", got[name].append)
        await notifier.start()
    a.publish("request", "req_1")
    c.publish("request", "req_2")
    await asyncio.sleep(0)
    assert got == {"a": [], "b": ["req_1"], "c": []}
    await b.close()
    a.publish("request", "req_3")
    await asyncio.sleep(0)
    assert got["b"] == ["req_1"]


@pytest.mark.postgres
async def test_postgres_notifications_reach_other_replicas_and_coalesce(postgres_url: str) -> None:
    engines = [SqlRepository.connect(postgres_url) for _ in range(2)]
    a, b = (PostgresNotifier(repo.engine) for repo in engines)
    got: dict[str, list[str]] = {"a": [], "b-request": [], "b-outbox": []}
    arrived = asyncio.Event()

    def on_request(payload: str) -> None:
        got["b-request"].append(payload)
        arrived.set()

    a.subscribe("request", got["a"].append)
    b.subscribe("request", on_request)
    b.subscribe("outbox", got["b-outbox"].append)
    try:
        await a.start()
        await b.start()
        assert a.listening and b.listening
        for _ in range(5):
            a.publish("outbox", "")
        a.publish("request", "req_1")
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.sleep(0.2)
        assert got["b-request"] == ["req_1"]
        assert got["b-outbox"] == [""]  # five kicks queued together went out as one
        assert got["a"] == []  # its own notifications are not echoed back
        with pytest.raises(ValueError):
            a.publish("request", "x" * 8000)
    finally:
        for notifier in (a, b):
            await notifier.close()
        for repo in engines:
            await repo.close()


def test_waiters_wake_everyone_after_notifications_may_have_been_lost() -> None:
    async def scenario() -> float:
        waiters = Waiters()
        started = time.monotonic()
        tasks = [asyncio.create_task(waiters.wait(f"req_{i}", 5)) for i in range(3)]
        await asyncio.sleep(0.05)
        waiters.notify_all()
        await asyncio.gather(*tasks)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1


def test_timing_comes_from_the_environment_and_refuses_nonsense() -> None:
    timing = Timing.from_env({"SIGNOFF_SWEEP_INTERVAL": "0.5", "SIGNOFF_OUTBOX_LEASE": "3"})
    assert (timing.sweep_interval, timing.outbox_lease, timing.outbox_interval) == (0.5, 3.0, 1.0)
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigError, match="SIGNOFF_OUTBOX_INTERVAL"):
            Timing.from_env({"SIGNOFF_OUTBOX_INTERVAL": bad})


# -- two replicas through the real wiring ------------------------------------------------------


@pytest.mark.postgres
async def test_a_long_poll_on_one_replica_wakes_when_another_records_the_verdict(
    postgres_url: str,
) -> None:
    # The fallback poll is 30 s here, so only a notification can wake the long-poll in time.
    env = {"SIGNOFF_WAIT_POLL_INTERVAL": "30", "REPLICA_SECRET": SECRET}
    config = replica_config(postgres_url, "http://127.0.0.1:9/resume")
    a = await build_services(config, env=env, start_scheduler=False)
    b = await build_services(config, env=env, start_scheduler=False)
    async with a.stack, b.stack, client(a) as on_a:
        created = await on_a.post("/v1/requests", json=BODY)
        rid = created.json()["id"]
        waiting = asyncio.create_task(on_a.get(f"/v1/requests/{rid}/wait", params={"timeout": 20}))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        started = time.monotonic()
        await b.engine.vote(rid, "web:jan", Verdict.APPROVE, channel="web")
        answer = await asyncio.wait_for(waiting, 10)
        assert answer.json()["status"] == "approved"
        assert time.monotonic() - started < 2


@pytest.mark.postgres
async def test_a_commit_on_one_replica_kicks_the_outbox_of_another(postgres_url: str) -> None:
    async with HttpReceiver() as agent:
        config = replica_config(postgres_url, f"{agent.url}/resume")
        # B's periodic outbox tick is an hour away: only the cross-replica kick can drain it.
        quiet = {"SIGNOFF_OUTBOX_INTERVAL": "3600", "SIGNOFF_SWEEP_INTERVAL": "3600"}
        a = await build_services(config, env={"REPLICA_SECRET": SECRET}, start_scheduler=False)
        b = await build_services(config, env={**quiet, "REPLICA_SECRET": SECRET})
        async with a.stack, b.stack, client(a) as on_a:
            created = await on_a.post("/v1/requests", json={**BODY, "confidence": 0.95})
            assert created.json()["status"] == "approved"
            [hit] = await agent.wait_for(1, path="/resume", timeout=5)
            assert hit.json()["data"]["id"] == created.json()["id"]
            for _ in range(100):  # the POST arrives just before B records it
                [message] = await a.repo.list_outbox(kind=OutboxKind.WEBHOOK)
                if message.status is OutboxStatus.DONE:
                    break
                await asyncio.sleep(0.05)
            assert message.status is OutboxStatus.DONE


@contextlib.asynccontextmanager
async def trusting_replicas(postgres_url: str) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """Replicas A and B; B trusts its cached stop states and grants for an hour, so only a
    notification from A can refresh them. Yields A and a client of B, after one submit to B
    (so B holds its copies)."""
    config = replica_config(postgres_url, "http://127.0.0.1:9/resume")
    env = {"REPLICA_SECRET": SECRET}
    a = await build_services(config, env=env, start_scheduler=False)
    b = await build_services(config, env=env, start_scheduler=False)
    async with a.stack, b.stack, client(b) as on_b:
        b.engine.agent_state_ttl = 3600
        first = await on_b.post("/v1/requests", json=BODY)
        assert first.json()["status"] == "pending"
        yield a, on_b


async def answer_once(on_b: httpx.AsyncClient, status: str) -> dict[str, Any]:
    """Submit to B until it answers `status` (the notification is on its way), or give up."""
    for _ in range(100):
        answer: dict[str, Any] = (await on_b.post("/v1/requests", json=BODY)).json()
        if answer["status"] == status:
            break
        await asyncio.sleep(0.02)
    return answer


@pytest.mark.postgres
async def test_a_stop_on_one_replica_reaches_the_cached_stop_state_of_another(
    postgres_url: str,
) -> None:
    async with trusting_replicas(postgres_url) as (a, on_b):
        await a.engine.set_stopped(
            "replica-bot", True, actor="web:sam", reason="incident", channel="api"
        )
        assert (await answer_once(on_b, "rejected"))["reasons"] == ["agent_stopped"]
        await a.engine.set_stopped("replica-bot", False, actor="web:sam", reason="", channel="api")
        assert (await answer_once(on_b, "pending"))["status"] == "pending"


@pytest.mark.postgres
async def test_a_grant_on_one_replica_reaches_the_cached_grants_of_another(
    postgres_url: str,
) -> None:
    async with trusting_replicas(postgres_url) as (a, on_b):
        made = await a.engine.grant_standing(
            GrantRequest(
                grantor="web:jan",
                agent_id="replica-bot",
                kind="refund",
                ttl=timedelta(hours=1),
                max_uses=50,
                reason="refunds while the shop is down",
            ),
            channel="web",
        )
        assert (await answer_once(on_b, "approved"))["standing_approval"] == made.id
        await a.engine.revoke_standing(made.id, "web:sam", channel="web")
        answer = (await on_b.post("/v1/requests", json=BODY)).json()
        assert answer["status"] == "pending"  # refused by the submit's transaction at once


# -- fencing: a worker that stalls past its lease -------------------------------------------


class StallingResume:
    """A resume target whose first delivery hangs until released (a frozen lease holder)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        self.sent.append(delivery.id)
        if len(self.sent) == 1:
            self.entered.set()
            await self.release.wait()
        return DeliveryAttempt(ok=True, status_code=200)


class StallingChannel:
    name = "web"

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        self.posted.append(view.request.id)
        if len(self.posted) == 1:
            self.entered.set()
            await self.release.wait()
        return {"target": view.target, "copy": len(self.posted)}

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None


async def events_of(repo: Repository, request_id: str) -> Counter[str]:
    return Counter(r.event.event for r in await repo.audit_records(request_id=request_id))


async def test_a_stalled_webhook_sender_cannot_record_what_another_took_over(
    shared_repo: Repository,
) -> None:
    clock = ManualClock()
    stalled, healthy = StallingResume(), StallingResume()
    healthy.sent.append("primed")  # never stalls
    a = World(shared_repo, make_config(), clock, resume=stalled)
    b = World(shared_repo, make_config(), clock, resume=healthy)
    rid = await a.submit(confidence=0.95)
    holder = asyncio.create_task(a.worker.drain())
    await asyncio.wait_for(stalled.entered.wait(), 5)
    clock.advance(LEASE + timedelta(seconds=1))  # A is frozen past its lease
    assert await b.worker.drain() == 1
    stalled.release.set()  # A wakes up; its POST went through too (at-least-once)
    await asyncio.wait_for(holder, 5)
    assert a.worker.lost_leases == 1 and b.worker.lost_leases == 0
    [message] = await shared_repo.list_outbox(kind=OutboxKind.WEBHOOK)
    assert stalled.sent == [message.id] and healthy.sent[1:] == [message.id]  # same webhook-id
    assert message.status is OutboxStatus.DONE and message.attempts == 1
    assert message.lease_owner is None
    assert (await events_of(shared_repo, rid))["delivered"] == 1


async def test_a_stalled_card_poster_does_not_record_a_second_card(
    shared_repo: Repository,
) -> None:
    clock = ManualClock()
    stalled, healthy = StallingChannel(), StallingChannel()
    healthy.posted.append("primed")
    a = World(shared_repo, make_config(), clock, channels={"web": stalled})
    b = World(shared_repo, make_config(), clock, channels={"web": healthy})
    rid = await a.submit(confidence=0.3)
    holder = asyncio.create_task(a.worker.drain())
    await asyncio.wait_for(stalled.entered.wait(), 5)
    clock.advance(LEASE + timedelta(seconds=1))
    assert await b.worker.drain() == 1
    stalled.release.set()
    await asyncio.wait_for(holder, 5)
    assert a.worker.lost_leases == 1
    [card] = await shared_repo.cards(rid)
    assert card.ref["copy"] == 2  # the copy the lease holder of record posted
    assert (await events_of(shared_repo, rid))["posted"] == 1


class SkewedClock:
    def __init__(self, base: ManualClock, skew: timedelta) -> None:
        self.base, self.skew = base, skew

    def now(self) -> datetime:
        return self.base.now() + self.skew


SHORT_TIERS: list[dict[str, Any]] = [
    {"name": "junior", "sla": "5s", "reviewers": ["web:jan"]},
    {"name": "senior", "sla": "5s", "reviewers": ["web:sam"]},
    {"name": "manager", "sla": "5s", "reviewers": ["web:max"]},
]


async def test_replicas_whose_clocks_disagree_escalate_each_tier_once(
    shared_repo: Repository,
) -> None:
    clock = ManualClock()
    config = make_config(tiers=SHORT_TIERS, routing={"start_tier": {"medium": "junior"}})
    replicas = [
        World(shared_repo, config, SkewedClock(clock, timedelta(seconds=skew)))  # type: ignore[arg-type]
        for skew in (0, 3, -2)
    ]
    ids = [await replicas[i % 3].submit(confidence=0.3) for i in range(12)]
    for _ in range(24):
        clock.advance(timedelta(seconds=1))
        await asyncio.gather(*(r.engine.sweep() for r in replicas))
    for rid in ids:
        request = await shared_repo.get(rid)
        assert request is not None and request.status is Status.REJECTED
        moves = [(m.from_tier, m.to_tier) for m in request.history]
        assert moves == [(None, "junior"), ("junior", "senior"), ("senior", "manager")]
        records = await shared_repo.audit_records(request_id=rid)
        escalations = Counter(
            (r.event.data["from_tier"], r.event.data["to_tier"])
            for r in records
            if r.event.event == "escalated"
        )
        assert escalations == {("junior", "senior"): 1, ("senior", "manager"): 1}
        assert [r.event.event for r in records].count("resolved") == 1
