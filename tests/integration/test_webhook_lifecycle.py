"""Submit -> verdict -> signed webhook at a real HTTP receiver, through the outbox."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from adapters.resume import WebhookResumeTarget
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus, Verdict, verify_chain
from bot.core.retry import MAX_ATTEMPTS
from tests.conftest import RepoFactory
from tests.support.http_receiver import HttpReceiver, Reply, free_port
from tests.support.world import SECRET, World, make_config


def verified(headers: dict[str, str], body: bytes) -> dict[str, object]:
    payload: dict[str, object] = Webhook(SECRET).verify(body, headers)
    return payload


async def test_full_lifecycle_to_a_verified_webhook(repo_factory: RepoFactory) -> None:
    clock = ManualClock()
    async with HttpReceiver() as agent:
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), clock)
        rid = await world.submit(kind="payment", amount=5000, confidence=0.95)
        await world.worker.drain()
        assert agent.requests == []  # pending: nothing to resume yet
        await world.engine.vote(
            rid, "web:max", Verdict.APPROVE, channel="web", rationale="matches PO-77"
        )
        await world.worker.drain()
        [hit] = await agent.wait_for(1, path="/resume")
        body = verified(hit.headers, hit.body)
        assert body["type"] == "request.resolved"
        data = json.loads(hit.body)["data"]
        assert data["id"] == rid and data["status"] == "approved"
        assert data["votes"][0]["reviewer"] == "web:max"
        assert data["votes"][0]["rationale"] == "matches PO-77"
        assert len(data["action_sha256"]) == 64
        events = [r.event.event for r in await world.repo.audit_records(request_id=rid)]
        assert events[-1] == "delivered"
        assert verify_chain(await world.repo.audit_records()).ok


async def test_agent_down_for_a_while_then_back(repo_factory: RepoFactory) -> None:
    clock = ManualClock()
    async with HttpReceiver() as agent:
        agent.respond("/resume", Reply(500), Reply(503, headers={"retry-after": "120"}), Reply(500))
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), clock)
        rid = await world.submit(confidence=0.3)
        await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")
        for _ in range(6):
            await world.worker.drain()
            clock.advance(timedelta(minutes=3))
        hits = await agent.wait_for(4, path="/resume")
        assert len({h.headers["webhook-id"] for h in hits}) == 1
        for hit in hits:
            verified(hit.headers, hit.body)
        [delivery] = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
        assert delivery.status is OutboxStatus.DONE and delivery.attempts == 4
        failures = [
            r
            for r in await world.repo.audit_records(request_id=rid)
            if r.event.event == "delivery_failed"
        ]
        assert len(failures) == 3


async def test_a_day_of_500s_ends_dead_and_a_manual_retry_delivers(
    repo_factory: RepoFactory,
) -> None:
    clock = ManualClock()
    async with HttpReceiver() as agent:
        agent.set_handler("/resume", lambda _: Reply(500))
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), clock)
        rid = await world.submit(confidence=0.3)
        await world.engine.vote(rid, "web:sam", Verdict.REJECT, channel="web", rationale="no")
        for _ in range(MAX_ATTEMPTS + 5):
            await world.worker.drain()
            clock.advance(timedelta(hours=1, minutes=10))
        [dead] = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK, status=OutboxStatus.DEAD)
        assert dead.attempts == MAX_ATTEMPTS
        assert len(agent.requests) == MAX_ATTEMPTS
        assert await world.repo.count_outbox(OutboxKind.WEBHOOK, OutboxStatus.DEAD) == 1

        agent.set_handler("/resume", lambda _: Reply(200))
        from bot.core.domain import AuditEvent

        again = await world.repo.requeue_outbox(
            dead.id, clock.now(), AuditEvent("delivery_retried", clock.now(), request_id=rid)
        )
        assert again is not None and again.attempts == 0
        await world.worker.drain()
        last = agent.requests[-1]
        assert last.headers["webhook-id"] == dead.id
        assert (await world.repo.get_outbox(dead.id)).status is OutboxStatus.DONE  # type: ignore[union-attr]


async def test_410_stops_retrying_at_once(repo_factory: RepoFactory) -> None:
    async with HttpReceiver() as agent:
        agent.set_handler("/resume", lambda _: Reply(410))
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), ManualClock())
        rid = await world.submit(confidence=0.3)
        await world.engine.cancel("invoice-bot", rid)
        await world.worker.drain()
        [dead] = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
        assert dead.status is OutboxStatus.DEAD and dead.attempts == 1


async def test_killed_between_commit_and_delivery_delivers_after_restart(
    repo_factory: RepoFactory,
) -> None:
    clock = ManualClock()
    async with HttpReceiver() as agent:
        config = make_config(f"{agent.url}/resume")
        before = World(await repo_factory(), config, clock)
        rid = await before.submit(confidence=0.3)
        await before.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")
        # A worker claims the webhook and dies before finishing it: its lease must expire.
        claimed = await before.repo.claim_outbox("doomed", clock.now(), timedelta(seconds=60), 10)
        assert any(m.kind is OutboxKind.WEBHOOK for m in claimed)

        after = World(await repo_factory(), config, clock)
        await after.worker.drain()
        assert agent.requests == []  # the lease still holds
        clock.advance(timedelta(seconds=61))
        await after.worker.drain()
        [hit] = await agent.wait_for(1, path="/resume")
        assert json.loads(hit.body)["data"]["id"] == rid
        assert await before.repo.finish_outbox(claimed[0].id, "doomed", _done()) is False


def _done():  # type: ignore[no-untyped-def]
    from bot.core.domain import OutboxResult

    return OutboxResult(OutboxStatus.DONE)


async def test_unreachable_agent_is_retried_not_dropped(repo_factory: RepoFactory) -> None:
    clock = ManualClock()
    url = f"http://127.0.0.1:{free_port()}/resume"
    world = World(
        await repo_factory(), make_config(url), clock, resume=WebhookResumeTarget(timeout=2.0)
    )
    rid = await world.submit(confidence=0.3)
    await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")
    await world.worker.drain()
    [delivery] = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
    assert delivery.status is OutboxStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_error and "Connect" in delivery.last_error
    assert delivery.next_attempt_at > clock.now()


@pytest.mark.parametrize("status", [200, 204])
async def test_any_2xx_is_success(repo_factory: RepoFactory, status: int) -> None:
    async with HttpReceiver() as agent:
        agent.set_handler("/resume", lambda _: Reply(status))
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), ManualClock())
        rid = await world.submit(confidence=0.3)
        await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")
        await world.worker.drain()
        [done] = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
        assert done.status is OutboxStatus.DONE
