"""Standing approvals and prediction models over every repository backend.

The use count is the part that must hold under concurrency: however many replicas race for
a grant's last use, exactly one request is approved by it and the others wait for a person.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import Change, Status, verify_chain
from bot.core.errors import StandingExhausted
from bot.core.learning import PredictionModel, StandingApproval, StandingUse
from bot.core.ports import Repository
from routing import Risk
from storage import SqlRepository
from tests.contract._builders import T0, at, event, request
from tests.support.world import World, make_config, new_request


def grant(grant_id: str = "sa_0001", **changes: object) -> StandingApproval:
    base = StandingApproval(
        id=grant_id,
        grantor="web:sam",
        agent_id="invoice-bot",
        kind="invoice",
        when='amount <= 200.0 && action.payload.vendor == "ACME"',
        max_risk=Risk.MEDIUM,
        max_uses=2,
        reason="routine ACME invoices this afternoon",
        created_at=T0,
        expires_at=at(7200),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def model(**changes: object) -> PredictionModel:
    features = ("confidence", "amount_log")
    parameters = {"coef": [0.25, -1.5], "intercept": 0.125, "mean": [0.5, 1.0], "scale": [1, 2]}
    metrics = {"auc": 0.93, "threshold": 0.7}
    base = PredictionModel(
        version=0,
        created_at=T0,
        created_by="cli",
        window_start=T0 - timedelta(days=40),
        window_end=T0,
        features=features,
        parameters=parameters,
        metrics=metrics,
        sha256=PredictionModel.digest(features, parameters, metrics),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def test_a_grant_round_trips_and_lists_by_agent_kind_and_activity(
    repository: Repository,
) -> None:
    first = grant()
    await repository.add_standing(first, (event("standing_granted", request_id=None),))
    await repository.add_standing(grant("sa_0002", kind="refund", when=None), ())
    await repository.add_standing(grant("sa_0003", expires_at=at(60)), ())

    assert await repository.standing_approval("sa_0001") == first
    assert await repository.standing_approval("sa_nope") is None
    everything = await repository.standing_approvals()
    assert [g.id for g in everything] == ["sa_0001", "sa_0002", "sa_0003"]
    invoices = await repository.standing_approvals(agent_id="invoice-bot", kind="invoice")
    assert [g.id for g in invoices] == ["sa_0001", "sa_0003"]
    later = await repository.standing_approvals(kind="invoice", active_at=at(61))
    assert [g.id for g in later] == ["sa_0001"]
    assert await repository.standing_approvals(agent_id="other") == []
    assert [r.event.event for r in await repository.audit_records()] == ["standing_granted"]


async def test_uses_are_counted_with_the_request_and_stop_at_the_cap(
    repository: Repository,
) -> None:
    await repository.add_standing(grant(max_uses=2), ())
    for n in (1, 2):
        rid = f"req_{n:04d}"
        await repository.apply(
            Change(
                request=request(rid, status=Status.APPROVED),
                audit=(event(request_id=rid),),
                standing_use=StandingUse("sa_0001", at(n)),
            )
        )
        stored = await repository.standing_approval("sa_0001")
        assert stored is not None and stored.uses == n

    with pytest.raises(StandingExhausted):
        await repository.apply(
            Change(
                request=request("req_0003"),
                audit=(event(request_id="req_0003"),),
                standing_use=StandingUse("sa_0001", at(3)),
            )
        )
    # Refused whole: no request, no audit event, no third use.
    assert await repository.get("req_0003") is None
    assert len(await repository.audit_records()) == 2
    assert (await repository.standing_approvals(active_at=at(3))) == []


async def test_an_expired_revoked_or_unknown_grant_refuses_the_change(
    repository: Repository,
) -> None:
    await repository.add_standing(grant(expires_at=at(60)), ())
    await repository.add_standing(grant("sa_0002"), ())
    revoked = await repository.revoke_standing(
        "sa_0002", "web:max", at(5), event("standing_revoked", request_id=None)
    )
    assert revoked is not None and revoked.revoked_by == "web:max"
    assert revoked.revoked_at == at(5)
    # A second revoke changes nothing and writes nothing.
    again = event("standing_revoked", request_id=None)
    assert await repository.revoke_standing("sa_0002", "web:sam", at(6), again) is None
    assert await repository.revoke_standing("sa_none", "web:sam", at(6), again) is None
    assert len(await repository.audit_records()) == 1

    for grant_id, when in (("sa_0001", at(60)), ("sa_0002", at(10)), ("sa_none", at(1))):
        with pytest.raises(StandingExhausted):
            await repository.apply(
                Change(request=request(), standing_use=StandingUse(grant_id, when))
            )
    assert await repository.get("req_0001") is None


async def test_models_are_versioned_and_one_at_a_time_active(repository: Repository) -> None:
    first = await repository.add_model(model(), event("model_trained", request_id=None))
    second = await repository.add_model(
        model(version=99, active=True), event("model_trained", request_id=None)
    )
    assert (first.version, second.version) == (1, 2)
    assert not second.active and first.intact and second.intact
    assert [m.version for m in await repository.prediction_models()] == [2, 1]
    assert await repository.active_model() is None

    activate = event("model_activated", request_id=None)
    assert await repository.activate_model(1, at(10), activate)
    assert await repository.activate_model(2, at(20), activate)
    active = await repository.active_model()
    assert active is not None and active.version == 2 and active.activated_at == at(20)
    assert dict(active.parameters) == dict(first.parameters)
    assert [m.active for m in await repository.prediction_models()] == [True, False]
    assert not await repository.activate_model(7, at(30), activate)
    assert await repository.activate_model(None, at(40), activate)
    assert await repository.active_model() is None

    records = await repository.audit_records()
    assert [r.event.event for r in records] == ["model_trained"] * 2 + ["model_activated"] * 3
    assert [r.event.data.get("version") for r in records[:2]] == [1, 2]
    assert verify_chain(records, await repository.audit_head()).ok


# -- ten replicas racing for the last use ----------------------------------------------------


async def _race(repositories: Sequence[Repository]) -> list[dict[str, object]]:
    clock = ManualClock(T0)
    worlds = [World(repo, make_config(), clock) for repo in repositories]
    await repositories[0].add_standing(grant(max_uses=3, uses=2, when=None), ())
    # Every replica connected and its stop state read already, so the ten submits reach
    # the grant at the same moment rather than one connection set-up after another.
    for w in worlds:
        await w.repo.standing_approvals()
        await w.engine._agent_stopped("invoice-bot")
    # Low confidence: escalates at medium risk to senior, where web:sam reviews.
    submits = [
        w.engine.submit("invoice-bot", new_request(confidence=0.3, amount=50.0)) for w in worlds
    ]
    return [dict(s.response) for s in await asyncio.gather(*submits)]


def _check_exactly_one(responses: list[dict[str, object]]) -> None:
    approved = [r for r in responses if r["status"] == "approved"]
    assert len(approved) == 1, responses
    assert approved[0]["standing_approval"] == "sa_0001"
    assert all(r["status"] == "pending" for r in responses if r is not approved[0])
    assert all("standing_approval" not in r for r in responses if r is not approved[0])


async def test_ten_submits_racing_for_the_last_use_approve_exactly_one(
    repository: Repository,
) -> None:
    _check_exactly_one(await _race([repository] * 10))
    stored = await repository.standing_approval("sa_0001")
    assert stored is not None and stored.uses == 3


@pytest.fixture
async def replicas(sql_url: str) -> AsyncIterator[list[SqlRepository]]:
    """Ten repositories, each with its own connection pool, on one database."""
    repos = [SqlRepository.connect(sql_url) for _ in range(10)]
    try:
        yield repos
    finally:
        for repo in repos:
            await repo.close()


async def test_ten_replicas_racing_for_the_last_use_approve_exactly_one(
    replicas: list[SqlRepository],
) -> None:
    _check_exactly_one(await _race(replicas))
    stored = await replicas[3].standing_approval("sa_0001")
    assert stored is not None and stored.uses == 3
    page = await replicas[5].list_requests(limit=50)
    assert sorted(r.status.value for r in page.items) == ["approved"] + ["pending"] * 9
