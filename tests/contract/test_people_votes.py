"""People, not accounts (issue 14 section 2), on every repository backend: the engine's
counting rules read votes back from memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import Status, Verdict
from bot.core.errors import NotAllowed
from bot.core.ports import Repository
from bot.engine.wire import request_json
from bot.server.config import parse_config
from tests.support.world import TIERS, World

LEAD = ["slack:U0DDD", "teams:2f1c-aad-object-id", "web:max"]
TWO_PERSON = {"reversible": False, "confidence": 0.9}


def world(repository: Repository, *, owner: str = "web:owner") -> World:
    config = parse_config(
        {
            "agents": [{"id": "invoice-bot", "key_sha256": "0" * 64, "owner": owner}],
            "tiers": [
                *TIERS[:2],
                {**TIERS[2], "reviewers": [*TIERS[2]["reviewers"], *LEAD[:2], "slack:U0OWN"]},
            ],
            "people": [
                {"id": "ops-lead", "name": "Operations lead", "identities": LEAD},
                {"id": "owner", "identities": ["web:owner", "slack:U0OWN"]},
            ],
        },
        env={},
    )
    return World(repository, config, ManualClock())


async def _refusal(w: World, request_id: str, reviewer: str, **kw: Any) -> NotAllowed:
    with pytest.raises(NotAllowed) as refused:
        await w.engine.vote(
            request_id, reviewer, Verdict.APPROVE, channel="slack", rationale="ok", **kw
        )
    return refused.value


async def test_a_second_identity_of_one_person_is_refused(repository: Repository) -> None:
    w = world(repository)
    rid = await w.submit(**TWO_PERSON)
    await w.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="fine")

    refused = await _refusal(w, rid, "slack:U0DDD")
    assert refused.code == "second_vote" and refused.message == "already voted as web:max"
    stored = await repository.get(rid)
    assert stored is not None and stored.status is Status.PENDING and len(stored.votes) == 1

    done = await w.engine.vote(rid, "web:mia", Verdict.APPROVE, channel="web", rationale="ok")
    assert done.status is Status.APPROVED


async def test_votes_carry_the_person_through_storage_and_audit(repository: Repository) -> None:
    w = world(repository)
    rid = await w.submit(**TWO_PERSON)
    await w.engine.vote(rid, "slack:U0DDD", Verdict.APPROVE, channel="slack", rationale="ok")
    await w.engine.vote(rid, "web:mia", Verdict.APPROVE, channel="web", rationale="ok")
    stored = await repository.get(rid)
    assert stored is not None
    assert [v.to_json()["person"] for v in stored.votes] == ["ops-lead", "web:mia"]
    assert [v["person"] for v in request_json(stored)["votes"]] == ["ops-lead", "web:mia"]
    [listed] = (await repository.list_requests(limit=5)).items
    assert [v.person for v in listed.votes] == ["ops-lead", "web:mia"]
    voted = [r.event for r in await repository.audit_records() if r.event.event == "voted"]
    assert [e.data["person"] for e in voted] == ["ops-lead", "web:mia"]


async def test_the_requester_is_blocked_on_every_identity(repository: Repository) -> None:
    w = world(repository)
    rid = await w.submit(confidence=0.2, requested_by="web:max")
    refused = await _refusal(w, rid, "teams:2f1c-aad-object-id")
    assert refused.code == "self_approval"


async def test_the_owner_is_blocked_on_every_identity(repository: Repository) -> None:
    w = world(repository)
    rid = await w.submit(confidence=0.2)
    request = await repository.get(rid)
    assert request is not None
    with pytest.raises(NotAllowed) as refused:
        w.engine.check_vote(request, "slack:U0OWN", Verdict.APPROVE)
    assert refused.value.code == "agent_owner"


async def test_an_approver_voided_by_a_modify_may_approve_the_new_action(
    repository: Repository,
) -> None:
    w = world(repository)
    rid = await w.submit(**TWO_PERSON)
    await w.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="fine")
    modified = await w.engine.vote(
        rid,
        "web:mia",
        Verdict.MODIFY,
        channel="web",
        rationale="smaller",
        modified_payload={"invoice": "INV-123", "cap": 10},
    )
    assert modified.status is Status.PENDING
    # The same person, through another account, on the NEW action: allowed, and decisive.
    done = await w.engine.vote(
        rid, "slack:U0DDD", Verdict.APPROVE, channel="slack", rationale="ok now"
    )
    assert done.status is Status.MODIFIED
    stored = await repository.get(rid)
    assert stored is not None and stored.status is Status.MODIFIED
    # The modifier may not approve their own edit a second time.
    rid2 = await w.submit(**TWO_PERSON)
    await w.engine.vote(
        rid2,
        "web:mia",
        Verdict.MODIFY,
        channel="web",
        rationale="edit",
        modified_payload={"x": 1},
    )
    refused = await _refusal(w, rid2, "web:mia")
    assert refused.code == "second_vote"
