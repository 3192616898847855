"""The Repository contract, run against every backend (memory, SQLite, PostgreSQL).

`InMemoryRepository` is the reference: whatever it does here, the SQL repository must do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta, timezone

import pytest

from bot.core.domain import (
    AgentState,
    ApprovalRequest,
    AuditRecord,
    CardRef,
    Change,
    IdempotencyRecord,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    ReviewStatus,
    Status,
    verify_chain,
)
from bot.core.errors import IdempotencyRace, VersionConflict
from bot.core.ports import Repository
from tests.contract._builders import T0, at, decided, event, outbox, request

LEASE = timedelta(seconds=60)


async def insert(repo: Repository, *requests: ApprovalRequest) -> None:
    for item in requests:
        await repo.apply(Change(request=item))


def ids(messages: Iterable[OutboxMessage]) -> list[str]:
    return [m.id for m in messages]


def seqs(records: Iterable[AuditRecord]) -> list[int]:
    return [r.seq for r in records]


# -- requests -------------------------------------------------------------------------------


async def test_insert_then_get_returns_the_whole_aggregate(repository: Repository) -> None:
    original = request()
    await repository.apply(Change(request=original))

    got = await repository.get(original.id)

    assert got == dataclasses.replace(original, version=1)
    assert got is not None
    assert got.history == original.history
    assert await repository.get("req_missing") is None


async def test_update_bumps_version_and_appends_votes_and_moves(repository: Repository) -> None:
    original = request()
    await repository.apply(Change(request=original))
    stored = await repository.get(original.id)
    assert stored is not None
    later = decided(stored)

    await repository.apply(
        Change(
            request=later,
            expected_version=1,
            new_votes=later.votes,
            new_moves=later.history[1:],
        )
    )

    got = await repository.get(original.id)
    assert got == dataclasses.replace(later, version=2)
    assert got is not None
    assert [v.reviewer for v in got.votes] == ["slack:U1", "teams:abc"]
    assert [m.to_tier for m in got.history] == ["junior", "senior"]


async def test_datetimes_come_back_aware_utc_and_equal(repository: Repository) -> None:
    original = request(decided_at=at(5))
    await repository.apply(Change(request=original))

    got = await repository.get(original.id)

    assert got is not None
    for value in (got.created_at, got.updated_at, got.decided_at, got.deadline_at, got.remind_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
    assert (got.created_at, got.decided_at) == (T0, at(5))
    assert got.history[0].at.utcoffset() == timedelta(0)


async def test_datetimes_in_other_zones_keep_their_instant(repository: Repository) -> None:
    plus_two = timezone(timedelta(hours=2))
    original = request(
        decided_at=at(5).astimezone(plus_two), deadline_at=at(6).astimezone(plus_two)
    )
    await repository.apply(Change(request=original))

    got = await repository.get(original.id)

    assert got is not None
    assert (got.decided_at, got.deadline_at) == (at(5), at(6))
    # The instant, not the wall clock, decides when the item is due.
    assert await repository.due_for_sla(at(6), 10) == [original.id]
    assert await repository.due_for_sla(at(5), 10) == []


async def test_stale_update_conflicts_and_writes_nothing(repository: Repository) -> None:
    original = request()
    await repository.apply(Change(request=original))
    await repository.apply(Change(request=request(tier="senior"), expected_version=1))

    with pytest.raises(VersionConflict):
        await repository.apply(
            Change(
                request=request(tier="manager"),
                expected_version=1,
                outbox=(outbox("out_stale"),),
                audit=(event("escalated"),),
            )
        )

    got = await repository.get(original.id)
    assert got is not None
    assert (got.tier, got.version) == ("senior", 2)
    assert await repository.get_outbox("out_stale") is None
    assert await repository.audit_records() == []


async def test_duplicate_insert_conflicts(repository: Repository) -> None:
    await repository.apply(Change(request=request()))

    with pytest.raises(VersionConflict):
        await repository.apply(Change(request=request(tier="other")))

    got = await repository.get("req_0001")
    assert got is not None
    assert got.tier == "junior"


async def test_update_of_a_missing_request_conflicts(repository: Repository) -> None:
    with pytest.raises(VersionConflict):
        await repository.apply(Change(request=request(), expected_version=3))
    assert await repository.get("req_0001") is None


async def test_idempotency_record_and_race(repository: Repository) -> None:
    record = IdempotencyRecord("invoice-bot", "key-1", "ab" * 32, "req_0001", {"id": "x"}, T0)
    await repository.apply(Change(request=request(), idempotency=record))

    assert await repository.find_idempotency("invoice-bot", "key-1") == record
    assert await repository.find_idempotency("other-bot", "key-1") is None

    rival = dataclasses.replace(record, request_id="req_0002")
    with pytest.raises(IdempotencyRace):
        await repository.apply(
            Change(request=request("req_0002"), idempotency=rival, audit=(event(),))
        )
    # The loser's request and audit went down with its transaction.
    assert await repository.get("req_0002") is None
    assert await repository.audit_records() == []
    assert await repository.find_idempotency("invoice-bot", "key-1") == record


async def test_list_requests_pages_by_id_with_filters(repository: Repository) -> None:
    for n in range(7):
        await repository.apply(
            Change(
                request=request(
                    f"req_{n:04d}",
                    agent_id="a" if n % 2 == 0 else "b",
                    status=Status.PENDING if n < 5 else Status.APPROVED,
                )
            )
        )

    first = await repository.list_requests(limit=3)
    assert [r.id for r in first.items] == ["req_0000", "req_0001", "req_0002"]
    assert first.next_cursor == "req_0002"
    assert first.items[0].history == request().history
    second = await repository.list_requests(limit=3, cursor=first.next_cursor)
    assert [r.id for r in second.items] == ["req_0003", "req_0004", "req_0005"]
    third = await repository.list_requests(limit=3, cursor=second.next_cursor)
    assert [r.id for r in third.items] == ["req_0006"]
    assert third.next_cursor is None

    exact = await repository.list_requests(limit=7)
    assert len(exact.items) == 7
    assert exact.next_cursor is None

    only_a = await repository.list_requests(agent_id="a")
    assert [r.id for r in only_a.items] == ["req_0000", "req_0002", "req_0004", "req_0006"]
    pending_b = await repository.list_requests(agent_id="b", status="pending", limit=1)
    assert [r.id for r in pending_b.items] == ["req_0001"]
    assert pending_b.next_cursor == "req_0001"
    approved = await repository.list_requests(status="approved")
    assert [r.id for r in approved.items] == ["req_0005", "req_0006"]
    assert (await repository.list_requests(status="expired")).items == ()


async def test_list_requests_newest_first_pages_backwards(repository: Repository) -> None:
    for n in range(5):
        agent = "a" if n % 2 == 0 else "b"
        await repository.apply(Change(request=request(f"req_{n:04d}", agent_id=agent)))

    first = await repository.list_requests(limit=2, newest_first=True)
    assert [r.id for r in first.items] == ["req_0004", "req_0003"]
    assert first.next_cursor == "req_0003"
    second = await repository.list_requests(limit=2, cursor=first.next_cursor, newest_first=True)
    assert [r.id for r in second.items] == ["req_0002", "req_0001"]
    last = await repository.list_requests(limit=2, cursor=second.next_cursor, newest_first=True)
    assert [r.id for r in last.items] == ["req_0000"] and last.next_cursor is None
    only_a = await repository.list_requests(agent_id="a", newest_first=True)
    assert [r.id for r in only_a.items] == ["req_0004", "req_0002", "req_0000"]


async def test_due_for_sla_returns_only_due_pending_ids_in_deadline_order(
    repository: Repository,
) -> None:
    await insert(
        repository,
        request("req_a", deadline_at=at(30)),
        request("req_b", deadline_at=at(10)),
        request("req_c", deadline_at=at(20)),
        request("req_future", deadline_at=at(999)),
        request("req_decided", deadline_at=at(5), status=Status.APPROVED),
        request("req_none", deadline_at=None),
        request("req_exact", deadline_at=at(100)),
    )

    assert await repository.due_for_sla(at(100), 10) == ["req_b", "req_c", "req_a", "req_exact"]
    assert await repository.due_for_sla(at(100), 2) == ["req_b", "req_c"]
    assert await repository.due_for_sla(at(0), 10) == []


async def test_list_awaiting_has_pending_and_open_reviews_by_deadline(
    repository: Repository,
) -> None:
    await insert(
        repository,
        request("req_late", deadline_at=at(30)),
        request("req_soon", deadline_at=at(10)),
        request(
            "req_review", status=Status.APPROVED, review_status=ReviewStatus.OPEN, deadline_at=None
        ),
        request("req_done", status=Status.APPROVED, review_status=ReviewStatus.CONFIRMED),
        request("req_decided", status=Status.REJECTED, deadline_at=at(1)),
    )

    awaiting = await repository.list_awaiting()

    assert [r.id for r in awaiting] == ["req_soon", "req_late", "req_review"]
    assert [r.id for r in await repository.list_awaiting(limit=1)] == ["req_soon"]


async def test_due_for_reminder_returns_only_due_pending_ids_in_order(
    repository: Repository,
) -> None:
    await insert(
        repository,
        request("req_a", remind_at=at(30)),
        request("req_b", remind_at=at(10)),
        request("req_future", remind_at=at(999)),
        request("req_cancelled", remind_at=at(1), status=Status.CANCELLED),
        request("req_none", remind_at=None),
    )

    assert await repository.due_for_reminder(at(100), 10) == ["req_b", "req_a"]
    assert await repository.due_for_reminder(at(100), 1) == ["req_b"]

    # Once the reminder is sent the engine clears remind_at and the row drops out.
    stored = await repository.get("req_b")
    assert stored is not None
    await repository.apply(
        Change(request=dataclasses.replace(stored, remind_at=None), expected_version=1)
    )
    assert await repository.due_for_reminder(at(100), 10) == ["req_a"]


async def test_pending_by_tier_counts_pending_requests_per_tier(repository: Repository) -> None:
    await insert(
        repository,
        request("req_1", tier="junior"),
        request("req_2", tier="junior"),
        request("req_3", tier="senior"),
        request("req_4", tier="senior", status=Status.REJECTED),
        request("req_5", tier=None),
    )

    assert dict(await repository.pending_by_tier()) == {"junior": 2, "senior": 1}


# -- outbox -----------------------------------------------------------------------------


async def test_outbox_rows_are_written_with_the_change(repository: Repository) -> None:
    message = outbox("out_1")
    await repository.apply(Change(request=request(), outbox=(message,)))

    assert await repository.get_outbox("out_1") == message
    assert await repository.get_outbox("out_missing") is None


async def test_claim_leases_due_messages_oldest_first(repository: Repository) -> None:
    messages = (
        outbox("out_b", due=at(2)),
        outbox("out_a", due=at(1)),
        outbox("out_c", due=at(2)),
        outbox("out_later", due=at(500)),
    )
    await repository.apply(Change(outbox=messages))

    claimed = await repository.claim_outbox("worker-1", at(10), LEASE, 10)

    assert [m.id for m in claimed] == ["out_a", "out_b", "out_c"]
    assert all(m.lease_owner == "worker-1" for m in claimed)
    assert all(m.lease_expires_at == at(10) + LEASE for m in claimed)
    stored = await repository.get_outbox("out_a")
    assert stored is not None
    assert (stored.lease_owner, stored.lease_expires_at) == ("worker-1", at(10) + LEASE)
    # Leased rows are not due for anyone while the lease runs.
    assert await repository.claim_outbox("worker-2", at(20), LEASE, 10) == []


async def test_claim_respects_the_limit(repository: Repository) -> None:
    await repository.apply(Change(outbox=tuple(outbox(f"out_{n}", due=at(n)) for n in range(5))))

    first = await repository.claim_outbox("w", at(10), LEASE, 2)
    second = await repository.claim_outbox("w", at(10), LEASE, 2)
    third = await repository.claim_outbox("w", at(10), LEASE, 2)

    assert [m.id for m in first] == ["out_0", "out_1"]
    assert [m.id for m in second] == ["out_2", "out_3"]
    assert [m.id for m in third] == ["out_4"]


async def test_released_leases_are_claimable_at_once_and_only_by_their_owner(
    repository: Repository,
) -> None:
    await repository.apply(Change(outbox=(outbox("out_1"), outbox("out_2"), outbox("out_3"))))
    claimed = await repository.claim_outbox("slow", at(0), LEASE, 3)
    assert [m.id for m in claimed] == ["out_1", "out_2", "out_3"]

    assert await repository.release_outbox(["out_2", "out_3"], "someone-else") == 0
    assert await repository.release_outbox(["out_2", "out_3", "out_missing"], "slow") == 2
    assert await repository.release_outbox([], "slow") == 0

    # Within the first lease: only what was given back is claimable.
    again = await repository.claim_outbox("fresh", at(1), LEASE, 10)
    assert [m.id for m in again] == ["out_2", "out_3"]
    assert all(m.lease_owner == "fresh" for m in again)
    still = await repository.get_outbox("out_1")
    assert still is not None and still.lease_owner == "slow"
    # A lease since taken over is not the old owner's to give back.
    assert await repository.release_outbox(["out_2"], "slow") == 0


async def test_expired_lease_is_taken_over_and_the_old_owner_loses(
    repository: Repository,
) -> None:
    await repository.apply(Change(outbox=(outbox("out_1"),)))
    [first] = await repository.claim_outbox("crashed", at(0), LEASE, 1)

    [taken] = await repository.claim_outbox("survivor", at(0) + LEASE, LEASE, 1)

    assert taken.id == first.id
    assert taken.lease_owner == "survivor"
    done = OutboxResult(OutboxStatus.DONE, audit=(event("delivered"),))
    assert await repository.finish_outbox("out_1", "crashed", done) is False
    assert await repository.audit_records() == []
    assert await repository.finish_outbox("out_1", "survivor", done) is True
    assert [r.event.event for r in await repository.audit_records()] == ["delivered"]


async def test_finish_records_the_attempt_and_releases_the_lease(
    repository: Repository,
) -> None:
    await repository.apply(Change(outbox=(outbox("out_1"),)))
    await repository.claim_outbox("w", at(0), LEASE, 1)

    retry = OutboxResult(OutboxStatus.PENDING, next_attempt_at=at(300), error="HTTP 503")
    assert await repository.finish_outbox("out_1", "w", retry) is True

    stored = await repository.get_outbox("out_1")
    assert stored is not None
    assert (stored.status, stored.attempts, stored.last_error) == (
        OutboxStatus.PENDING,
        1,
        "HTTP 503",
    )
    assert stored.next_attempt_at == at(300)
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    # Not due before its retry time, due after.
    assert await repository.claim_outbox("w", at(299), LEASE, 10) == []
    [again] = await repository.claim_outbox("w", at(300), LEASE, 10)
    assert again.attempts == 1
    # Without a lease there is nothing to finish.
    assert await repository.finish_outbox("out_1", "someone-else", retry) is False
    assert await repository.finish_outbox("out_missing", "w", retry) is False


@pytest.mark.parametrize("final", [OutboxStatus.DONE, OutboxStatus.DEAD])
async def test_finished_messages_are_never_claimed_again(
    repository: Repository, final: OutboxStatus
) -> None:
    await repository.apply(Change(outbox=(outbox("out_1"),)))
    await repository.claim_outbox("w", at(0), LEASE, 1)
    await repository.finish_outbox("out_1", "w", OutboxResult(final, error="gone"))

    assert await repository.claim_outbox("w", at(10**6), LEASE, 10) == []
    stored = await repository.get_outbox("out_1")
    assert stored is not None
    assert (stored.status, stored.attempts, stored.next_attempt_at) == (final, 1, T0)


async def test_requeue_puts_a_dead_message_back_in_line(repository: Repository) -> None:
    await repository.apply(Change(outbox=(outbox("out_1"), outbox("out_2"))))
    await repository.claim_outbox("w", at(0), LEASE, 2)
    await repository.finish_outbox("out_1", "w", OutboxResult(OutboxStatus.DEAD, error="410"))
    await repository.finish_outbox("out_2", "w", OutboxResult(OutboxStatus.DONE))

    again = await repository.requeue_outbox("out_1", at(50), event("delivery_retried"))

    assert again is not None
    assert (again.status, again.attempts, again.next_attempt_at) == (
        OutboxStatus.PENDING,
        0,
        at(50),
    )
    assert (again.lease_owner, again.lease_expires_at, again.last_error) == (None, None, "410")
    assert await repository.get_outbox("out_1") == again
    assert [m.id for m in await repository.claim_outbox("w", at(50), LEASE, 10)] == ["out_1"]
    assert [r.event.event for r in await repository.audit_records()] == ["delivery_retried"]
    # Only dead messages can be requeued.
    assert await repository.requeue_outbox("out_2", at(60), event("x")) is None
    assert await repository.requeue_outbox("out_1", at(60), event("x")) is None
    assert await repository.requeue_outbox("out_missing", at(60), event("x")) is None
    assert len(await repository.audit_records()) == 1


async def test_finish_stores_the_posted_card(repository: Repository) -> None:
    await repository.apply(
        Change(
            request=request(),
            outbox=(outbox("out_1", kind=OutboxKind.POST_CARD), outbox("out_2")),
        )
    )
    await repository.claim_outbox("w", at(0), LEASE, 2)
    slack = CardRef("req_0001", "slack", "junior", {"channel": "C1", "ts": "1.2"}, at(1))
    web = CardRef("req_0001", "web", "junior", {"path": "/r/req_0001"}, at(2))

    await repository.finish_outbox("out_1", "w", OutboxResult(OutboxStatus.DONE, card=slack))
    await repository.finish_outbox("out_2", "w", OutboxResult(OutboxStatus.DONE, card=web))
    lost = CardRef("req_0001", "teams", "junior", {}, at(3))
    await repository.finish_outbox("out_2", "w", OutboxResult(OutboxStatus.DONE, card=lost))

    assert list(await repository.cards("req_0001")) == [slack, web]
    assert list(await repository.cards("req_other")) == []


async def test_list_and_count_outbox_filter(repository: Repository) -> None:
    await repository.apply(
        Change(
            outbox=(
                outbox("out_1", kind=OutboxKind.WEBHOOK, agent_id="a"),
                outbox("out_2", kind=OutboxKind.WEBHOOK, agent_id="b"),
                outbox("out_3", kind=OutboxKind.POST_CARD, agent_id="a"),
                outbox("out_4", kind=OutboxKind.WEBHOOK, agent_id="a"),
            )
        )
    )
    await repository.claim_outbox("w", at(0), LEASE, 1)
    await repository.finish_outbox("out_1", "w", OutboxResult(OutboxStatus.DEAD))

    assert ids(await repository.list_outbox()) == ["out_1", "out_2", "out_3", "out_4"]
    assert ids(await repository.list_outbox(kind=OutboxKind.WEBHOOK, agent_id="a")) == [
        "out_1",
        "out_4",
    ]
    assert ids(await repository.list_outbox(status=OutboxStatus.DEAD)) == ["out_1"]
    assert ids(await repository.list_outbox(status=OutboxStatus.PENDING, limit=2)) == [
        "out_2",
        "out_3",
    ]
    assert await repository.count_outbox(OutboxKind.WEBHOOK, OutboxStatus.PENDING) == 2
    assert await repository.count_outbox(OutboxKind.WEBHOOK, OutboxStatus.DEAD) == 1
    assert await repository.count_outbox(OutboxKind.REMIND, OutboxStatus.PENDING) == 0


# -- agents -----------------------------------------------------------------------------


async def test_agent_state_is_upserted(repository: Repository) -> None:
    assert await repository.agent_state("invoice-bot") is None
    stopped = AgentState("invoice-bot", True, "runaway refunds", "slack:U9", at(1))
    await repository.apply(Change(agent_state=stopped, audit=(event("stopped"),)))
    assert await repository.agent_state("invoice-bot") == stopped

    started = AgentState("invoice-bot", False, "fixed", "slack:U8", at(2))
    await repository.apply(Change(agent_state=started))
    assert await repository.agent_state("invoice-bot") == started
    assert await repository.agent_state("other") is None


async def test_agent_keys_replace_earlier_ones(repository: Repository) -> None:
    assert await repository.agent_for_key("k1") is None
    await repository.set_agent_key("invoice-bot", "k1", at(0))
    await repository.set_agent_key("refund-bot", "k9", at(0))
    assert await repository.agent_for_key("k1") == "invoice-bot"

    await repository.set_agent_key("invoice-bot", "k2", at(1))
    assert await repository.agent_for_key("k1") is None
    assert await repository.agent_for_key("k2") == "invoice-bot"
    assert await repository.agent_for_key("k9") == "refund-bot"

    # Setting the current key again keeps it; an old key can be made current again.
    await repository.set_agent_key("invoice-bot", "k2", at(2))
    assert await repository.agent_for_key("k2") == "invoice-bot"
    await repository.set_agent_key("invoice-bot", "k1", at(3))
    assert await repository.agent_for_key("k1") == "invoice-bot"
    assert await repository.agent_for_key("k2") is None

    # A key handed to another agent moves with it.
    await repository.set_agent_key("refund-bot", "k1", at(4))
    assert await repository.agent_for_key("k1") == "refund-bot"
    assert await repository.agent_for_key("k9") is None


# -- audit ------------------------------------------------------------------------------


async def test_audit_chain_is_intact_after_mixed_writes(repository: Repository) -> None:
    original = request()
    await repository.apply(
        Change(
            request=original,
            outbox=(outbox("out_1"),),
            audit=(event("submitted"), event("routed", data={"lane": "escalate"})),
        )
    )
    await repository.claim_outbox("w", at(0), LEASE, 1)
    await repository.finish_outbox(
        "out_1",
        "w",
        OutboxResult(OutboxStatus.DEAD, error="410", audit=(event("delivery_failed"),)),
    )
    await repository.requeue_outbox("out_1", at(5), event("delivery_retried", actor="web:ann"))
    await repository.apply(
        Change(
            agent_state=AgentState("invoice-bot", True, "x", "web:ann", at(6)),
            audit=(event("stopped", request_id=None, risk=None, actor="web:ann"),),
        )
    )
    stored = await repository.get(original.id)
    assert stored is not None
    await repository.apply(
        Change(
            request=decided(stored),
            expected_version=stored.version,
            audit=(event("voted", at=at(7)), event("resolved", at=at(8), reason="modified")),
        )
    )

    records = await repository.audit_records()

    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.event.event for r in records] == [
        "submitted",
        "routed",
        "delivery_failed",
        "delivery_retried",
        "stopped",
        "voted",
        "resolved",
    ]
    assert records[1].event == event("routed", data={"lane": "escalate"})
    assert verify_chain(records).ok
    assert verify_chain(records).checked == 7


async def test_audit_records_filters(repository: Repository) -> None:
    await repository.apply(
        Change(
            audit=(
                event("submitted", at=at(1), request_id="req_1", risk="high"),
                event("routed", at=at(2), request_id="req_1", risk="high"),
                event("submitted", at=at(3), request_id="req_2", risk="low"),
                event("voted", at=at(4), request_id="req_1", risk="high", actor="slack:U1"),
                event("stopped", at=at(5), request_id=None, risk=None, actor="slack:U1"),
            )
        )
    )

    assert seqs(await repository.audit_records(since=at(3))) == [3, 4, 5]
    assert seqs(await repository.audit_records(request_id="req_1")) == [1, 2, 4]
    assert seqs(await repository.audit_records(risk="high")) == [1, 2, 4]
    assert seqs(await repository.audit_records(actor="slack:U1")) == [4, 5]
    assert seqs(await repository.audit_records(last=2)) == [4, 5]
    assert seqs(await repository.audit_records(risk="high", last=2)) == [2, 4]
    assert seqs(await repository.audit_records(last=10)) == [1, 2, 3, 4, 5]
    assert seqs(await repository.audit_records(since=at(2), request_id="req_1", last=1)) == [4]
    assert await repository.audit_records(request_id="req_none") == []


async def test_audit_event_fields_round_trip(repository: Repository) -> None:
    written = event(
        "voted",
        at=at(1).astimezone(timezone(timedelta(hours=-5))),
        reason='ünïcode ✓ "quoted"',
        data={"nested": {"list": [1, 2.5, None, True, "x"]}, "big": 2**62, "neg": -0.0},
    )
    await repository.apply(Change(audit=(written,)))

    [record] = await repository.audit_records()

    assert record.event == written
    assert verify_chain([record]).ok


# -- health -----------------------------------------------------------------------------


async def test_ping_answers(repository: Repository) -> None:
    await repository.ping()


async def test_a_claim_takes_one_lane_and_skips_busy_destinations(
    repository: Repository,
) -> None:
    other = dataclasses.replace(
        outbox("out_b", due=at(1)),
        payload={"agent_id": "b", "url": "http://127.0.0.1:9001/hook", "body": {}},
    )
    alert = dataclasses.replace(
        outbox("out_alert", due=at(0), kind=OutboxKind.ALERT, request_id=None),
        payload={"channel": "slack", "alert": {}},
    )
    await repository.apply(Change(outbox=(outbox("out_a", due=at(0)), other, alert)))

    busy = ["webhook:http://127.0.0.1:9000"]
    webhooks = await repository.claim_outbox(
        "w", at(10), LEASE, 10, kinds=[OutboxKind.WEBHOOK], busy=busy
    )
    assert [m.id for m in webhooks] == ["out_b"]
    alerts = await repository.claim_outbox("w", at(10), LEASE, 10, kinds=[OutboxKind.ALERT])
    assert [m.id for m in alerts] == ["out_alert"]
    rest = await repository.claim_outbox("w2", at(10), LEASE, 10)
    assert [m.id for m in rest] == ["out_a"]


async def test_running_leases_are_renewed_only_by_their_owner(repository: Repository) -> None:
    await repository.apply(Change(outbox=(outbox("out_1"), outbox("out_2"))))
    await repository.claim_outbox("slow", at(0), LEASE, 2)

    assert await repository.renew_outbox(["out_1"], "someone-else", at(100)) == []
    assert list(await repository.renew_outbox(["out_1", "out_missing"], "slow", at(100))) == [
        "out_1"
    ]
    # Renewed past the first lease: not due for another worker at 61 s; the other one is.
    taken = await repository.claim_outbox("fresh", at(61), LEASE, 10)
    assert [m.id for m in taken] == ["out_2"]
    # A worker never claims again a row it holds, even once expired (it may be running).
    later = await repository.claim_outbox("slow", at(200), LEASE, 10)
    assert [m.id for m in later] == ["out_2"]
