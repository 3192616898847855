"""Standing approvals in the engine: who may grant, what a grant covers, what a use writes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, Status
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.learning import GrantRequest
from bot.engine.standing import grant, revoke
from routing import Risk
from storage import InMemoryRepository
from tests.support.world import World, make_config, new_request

T0 = datetime(2026, 5, 4, 14, 0, tzinfo=UTC)


def world(**routing: Any) -> World:
    return World(InMemoryRepository(), make_config(routing=routing or None), ManualClock(T0))


def ask(**changes: Any) -> GrantRequest:
    fields: dict[str, Any] = {
        "grantor": "web:sam",
        "agent_id": "invoice-bot",
        "kind": "invoice",
        "ttl": timedelta(hours=2),
        "max_uses": 10,
        "reason": "ACME invoices while the ERP sync is down",
        "when": 'amount <= 200.0 && action.payload.vendor == "ACME"',
    }
    fields.update(changes)
    return GrantRequest(**fields)


async def granted(w: World, **changes: Any) -> str:
    made = await grant(
        w.repo, w.config.policy, w.engine.agents, ask(**changes), w.clock.now(), channel="cli"
    )
    return made.id


def acme(amount: float = 120.0, **fields: Any) -> dict[str, Any]:
    # Low confidence: escalates at medium risk, starting at senior (sam and sue).
    fields.setdefault("confidence", 0.3)
    return {
        "kind": "invoice",
        "payload": {"invoice": "INV-9", "vendor": "ACME"},
        "amount": amount,
        **fields,
    }


async def test_a_matching_request_is_approved_as_the_grantors_vote() -> None:
    w = world(review_sample_rate=0.0)
    grant_id = await granted(w)

    result = await w.engine.submit("invoice-bot", new_request(**acme()))

    body = dict(result.response)
    assert body["status"] == "approved" and body["standing_approval"] == grant_id
    assert body["lane"] == "escalate" and body["reasons"] == ["low_confidence"]
    stored = await w.engine.get(str(body["id"]))
    assert stored.status is Status.APPROVED and stored.decided_at == T0
    (vote,) = stored.votes
    assert (vote.reviewer, vote.channel, vote.verdict.value) == ("web:sam", "standing", "approve")
    assert grant_id in vote.rationale and vote.action_sha256 == stored.action.sha256
    # Audited like any approval, and the agent's webhook is queued; no card for anyone.
    events = [(r.event.event, r.event.actor) for r in await w.repo.audit_records()]
    assert events[-3:] == [
        ("routed", "system"),
        ("voted", "web:sam"),
        ("resolved", "web:sam"),
    ]
    voted = (await w.repo.audit_records())[-2].event
    assert voted.channel == "standing" and voted.data["standing_approval"] == grant_id
    kinds = [m.kind for m in await w.repo.list_outbox()]
    assert kinds == [OutboxKind.WEBHOOK]
    webhook = (await w.repo.list_outbox())[0].payload["body"]["data"]
    assert webhook["status"] == "approved" and webhook["votes"][0]["channel"] == "standing"
    assert (await w.repo.standing_approval(grant_id)).uses == 1  # type: ignore[union-attr]
    counted = w.metrics.registry.get_sample_value(
        "signoff_verdicts_total", {"verdict": "approve", "channel": "standing"}
    )
    assert counted == 1.0


async def test_requests_outside_the_grant_still_go_to_a_person() -> None:
    w = world(review_sample_rate=0.0)
    await granted(w, max_uses=100)
    outside = [
        acme(amount=250.0),  # the condition does not hold
        {**acme(), "payload": {"vendor": "Globex"}},
        {**acme(), "kind": "payment"},  # another kind
        acme(reversible=False),  # two approvals, high risk
        acme(domain="legal"),  # a high-risk rule matches
        acme(requested_by="web:sam"),  # the grantor asked for it
    ]
    for fields in outside:
        result = await w.engine.submit("invoice-bot", new_request(**fields))
        assert result.response["status"] == "pending", fields
        assert "standing_approval" not in result.response
    # Autonomous items never touch a grant.
    result = await w.engine.submit("invoice-bot", new_request(**acme(confidence=0.95)))
    assert "standing_approval" not in result.response


async def test_the_cap_expiry_and_revocation_end_a_grant() -> None:
    w = world(review_sample_rate=0.0)
    capped = await granted(w, max_uses=2, when=None)
    statuses = [
        (await w.engine.submit("invoice-bot", new_request(**acme()))).response["status"]
        for _ in range(3)
    ]
    assert statuses == ["approved", "approved", "pending"]

    expiring = await granted(w, ttl=timedelta(minutes=30), when=None)
    w.clock.advance(timedelta(minutes=31))
    assert (await w.engine.submit("invoice-bot", new_request(**acme()))).response[
        "status"
    ] == "pending"

    revoked = await granted(w, when=None)
    await revoke(w.repo, revoked, "web:max", w.clock.now(), channel="cli", policy=w.config.policy)
    assert (await w.engine.submit("invoice-bot", new_request(**acme()))).response[
        "status"
    ] == "pending"
    grants = {g.id: g for g in await w.repo.standing_approvals()}
    assert grants[capped].uses == 2 and grants[expiring].uses == 0
    assert grants[revoked].revoked_by == "web:max"
    events = [r.event.event for r in await w.repo.audit_records()]
    assert events.count("standing_granted") == 3 and events.count("standing_revoked") == 1


async def test_sampling_posts_some_standing_approvals_for_review_after_the_fact() -> None:
    w = world(review_sample_rate=1.0)
    await granted(w)
    result = await w.engine.submit("invoice-bot", new_request(**acme()))
    stored = await w.engine.get(str(result.response["id"]))
    assert stored.status is Status.APPROVED and stored.review_status is not None
    assert result.response["review"] == "queued"
    assert stored.review_status.value == "open" and stored.tier == "senior"
    kinds = sorted(m.kind.value for m in await w.repo.list_outbox())
    assert kinds == ["post_card", "webhook"]
    assert [r.id for r in await w.engine.pending_for("web:sue")] == [stored.id]


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"grantor": "agent:invoice-bot"}, NotAllowed, "not_a_reviewer"),
        ({"grantor": "web:jan"}, NotAllowed, "not_a_reviewer"),  # junior: medium starts above
        ({"grantor": "web:owner"}, NotAllowed, "agent_owner"),
        ({"max_risk": Risk.HIGH}, NotAllowed, "high_risk"),
        ({"max_risk": Risk.HIGH, "allow_high": True}, NotAllowed, "not_top_tier"),
        ({"agent_id": "nobody"}, NotFound, None),
        ({"reason": "  "}, InvalidInput, "reason"),
        ({"ttl": timedelta(days=31)}, InvalidInput, "ttl"),
        ({"max_uses": 0}, InvalidInput, "max_uses"),
    ],
)
async def test_grant_rules(changes: dict[str, Any], error: type[Exception], code: str) -> None:
    w = world()
    with pytest.raises(error) as caught:
        await granted(w, **changes)
    if isinstance(caught.value, NotAllowed):
        assert caught.value.code == code
    if isinstance(caught.value, InvalidInput):
        assert caught.value.field == code
    assert await w.repo.standing_approvals() == []
    assert await w.repo.audit_records() == []


async def test_a_top_tier_reviewer_may_grant_for_high_risk_with_allow_high() -> None:
    w = world(review_sample_rate=0.0)
    await granted(w, grantor="web:max", max_risk=Risk.HIGH, allow_high=True, when=None)
    # High risk, one approval (regulated domain): covered.
    result = await w.engine.submit("invoice-bot", new_request(**acme(domain="legal")))
    assert result.response["status"] == "approved"
    assert result.response["risk"] == "high"


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("amount <= ", "does not compile: line 1, column"),
        ("vendor == 'ACME'", "unknown variable(s) 'vendor'"),
        ("", "empty"),
    ],
)
async def test_a_condition_that_does_not_compile_is_refused_clearly(
    when: str, problem: str
) -> None:
    w = world()
    with pytest.raises(InvalidInput) as caught:
        await granted(w, when=when)
    assert caught.value.field == "when" and problem in caught.value.problem
    assert "standing_approval'" not in caught.value.problem


async def test_a_condition_that_fails_at_evaluation_does_not_approve() -> None:
    w = world(review_sample_rate=0.0)
    await granted(w, when='action.payload.missing == "x"')
    result = await w.engine.submit("invoice-bot", new_request(**acme()))
    assert result.response["status"] == "pending"


async def test_only_the_grantor_or_the_top_tier_may_revoke() -> None:
    w = world()
    grant_id = await granted(w)
    policy = w.config.policy
    with pytest.raises(NotAllowed):
        await revoke(w.repo, grant_id, "web:sue", T0, channel="cli", policy=policy)
    done = await revoke(w.repo, grant_id, "web:sam", T0, channel="cli", policy=policy)
    assert done.revoked_at == T0
    with pytest.raises(NotFound):
        await revoke(w.repo, grant_id, "web:sam", T0, channel="cli", policy=policy)
    with pytest.raises(NotFound):
        await revoke(w.repo, "sa_nope", "web:sam", T0, channel="cli", policy=policy)


async def test_a_replayed_submit_answers_the_same_and_uses_the_grant_once() -> None:
    w = world(review_sample_rate=0.0)
    grant_id = await granted(w)
    first = await w.engine.submit(
        "invoice-bot", new_request(**acme()), idempotency_key="k1", body_sha256="b1"
    )
    again = await w.engine.submit(
        "invoice-bot", new_request(**acme()), idempotency_key="k1", body_sha256="b1"
    )
    assert first.created and not again.created
    assert dict(again.response) == dict(first.response)
    assert again.response["standing_approval"] == grant_id
    assert (await w.repo.standing_approval(grant_id)).uses == 1  # type: ignore[union-attr]


async def test_a_stopped_agent_is_rejected_whatever_its_grants() -> None:
    w = world()
    await granted(w, when=None)
    await w.engine.set_stopped("invoice-bot", True, actor="web:max", reason="x", channel="web")
    result = await w.engine.submit("invoice-bot", new_request(**acme()))
    assert result.response["status"] == "rejected"
    assert "standing_approval" not in result.response


# -- the replica's copy of the grants -------------------------------------------------------


class Ticks:
    """A monotonic clock the test moves by hand (the engine's copies are trusted by it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ticking(w: World) -> Ticks:
    ticks = Ticks()
    w.engine._monotonic = ticks
    return ticks


def status_of(result: Any) -> str:
    return str(result.response["status"])


async def test_a_grant_made_through_the_engine_applies_to_the_next_submit() -> None:
    w = world(review_sample_rate=0.0)
    ticking(w)  # the copy never ages: only the grant itself may refresh it
    assert status_of(await w.engine.submit("invoice-bot", new_request(**acme()))) == "pending"
    made = await w.engine.grant_standing(ask(when=None), channel="web")
    result = await w.engine.submit("invoice-bot", new_request(**acme()))
    assert status_of(result) == "approved" and result.response["standing_approval"] == made.id


async def test_a_grant_made_elsewhere_is_seen_once_announced_or_after_the_ttl() -> None:
    w = world(review_sample_rate=0.0)
    ticks = ticking(w)
    assert status_of(await w.engine.submit("invoice-bot", new_request(**acme()))) == "pending"
    # Granted by another replica (or the CLI): this one's copy still has no grant ...
    await granted(w, when=None)
    assert status_of(await w.engine.submit("invoice-bot", new_request(**acme()))) == "pending"
    # ... until the `standing` notification drops it,
    w.engine.forget_standing()
    assert status_of(await w.engine.submit("invoice-bot", new_request(**acme()))) == "approved"
    # and without one, once the copy is older than the TTL.
    payment = {**acme(), "kind": "payment"}
    assert status_of(await w.engine.submit("invoice-bot", new_request(**payment))) == "pending"
    await granted(w, when=None, kind="payment")
    assert status_of(await w.engine.submit("invoice-bot", new_request(**payment))) == "pending"
    ticks.now += w.engine.agent_state_ttl
    assert status_of(await w.engine.submit("invoice-bot", new_request(**payment))) == "approved"


async def test_a_grant_revoked_elsewhere_never_approves_from_an_old_copy() -> None:
    w = world(review_sample_rate=0.0)
    ticking(w)  # the copy never ages and no notification comes
    grant_id = await granted(w, when=None)
    assert status_of(await w.engine.submit("invoice-bot", new_request(**acme()))) == "approved"
    await revoke(w.repo, grant_id, "web:max", w.clock.now(), channel="cli", policy=w.config.policy)

    # The copy still lists the grant; the submit's own transaction refuses the use.
    result = await w.engine.submit("invoice-bot", new_request(**acme()))
    assert status_of(result) == "pending" and "standing_approval" not in result.response
    assert (await w.repo.standing_approval(grant_id)).uses == 1  # type: ignore[union-attr]
    stored = await w.engine.get(str(result.response["id"]))
    assert stored.votes == () and stored.status is Status.PENDING


async def test_concurrent_submits_share_one_read_of_the_grants() -> None:
    w = world(review_sample_rate=0.0)
    await granted(w, when=None, max_uses=100)
    reads = 0
    read = w.repo.standing_approvals

    async def counted(**query: Any) -> Any:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return await read(**query)

    w.repo.standing_approvals = counted  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(w.engine.submit("invoice-bot", new_request(**acme())) for _ in range(10))
    )
    assert reads == 1
    assert [status_of(r) for r in results] == ["approved"] * 10
