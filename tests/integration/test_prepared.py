"""Prepared before it fails: in prediction mode active, a request that proceeds with a score
just under the threshold has its review card posted to the tier a predicted escalation
would reach, and a standing approval never covers what the model sends to a person.

Over every repository backend, with a hand-made model whose score is set by the amount:
5 scores 0.23, 30 scores 0.61 (inside the band 0.5 to 0.7), 50 scores 0.72.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.domain import AuditEvent, ReviewStatus, Status
from bot.core.learning import GrantRequest, PredictionModel
from bot.oversight.predict import MODEL_KIND, ActiveModel
from bot.server.app import build_services
from bot.server.config import parse_config
from tests.conftest import RepoFactory
from tests.integration.test_web_inbox import KEY, as_reviewer, hashes, make_app
from tests.integration.test_web_inbox import TIERS as WEB_TIERS
from tests.support.world import TIERS, World, new_request

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
EVENT = AuditEvent(event="model_trained", at=NOW, actor="test", channel="cli")


def by_amount() -> PredictionModel:
    features = ("amount_log",)
    parameters = {
        "kind": MODEL_KIND,
        "mean": [0.0],
        "scale": [1.0],
        "coef": [1.0],
        "intercept": -3.0,
        "rate_prior": 0.1,
    }
    metrics: dict[str, Any] = {"evaluation": {"auc": 0.95}}
    return PredictionModel(
        version=0,
        created_at=NOW,
        created_by="test",
        window_start=NOW - timedelta(days=40),
        window_end=NOW,
        features=features,
        parameters=parameters,
        metrics=metrics,
        sha256=PredictionModel.digest(features, parameters, metrics),
    )


async def world(repo_factory: RepoFactory, mode: str, **prediction: Any) -> World:
    config = parse_config(
        {
            "agents": [{"id": "invoice-bot", "key_sha256": "0" * 64}],
            "tiers": TIERS,
            # No sampling: a review card can only come from preparation.
            "routing": {"review_sample_rate": 0.0, "autonomous_sample_rate": 0.0},
            "prediction": {"mode": mode, "threshold": 0.7, **prediction},
        },
        env={},
    )
    repo = await repo_factory()
    stored = await repo.add_model(by_amount(), EVENT)
    await repo.activate_model(stored.version, NOW, EVENT)
    w = World(repo, config, ManualClock(NOW))
    model = ActiveModel(repo)
    await model.refresh()
    w.engine.predictor = model
    return w


def invoice(amount: float, confidence: float = 0.9) -> Any:
    return new_request(
        summary=f"Pay {amount} EUR to ACME",
        payload={"invoice": "INV-7", "vendor": "ACME"},
        confidence=confidence,
        amount=amount,
        currency="EUR",
        context={"summary": "ACME's monthly invoice", "transaction": {"po": "PO-12"}},
    )


async def submitted(w: World, new: Any) -> Any:
    result = await w.engine.submit("invoice-bot", new)
    await w.worker.drain()
    return result.response, await w.engine.get(str(result.response["id"]))


async def test_a_score_just_under_the_threshold_posts_the_card_ahead(
    repo_factory: RepoFactory,
) -> None:
    w = await world(repo_factory, "active", prepare_margin=0.2)
    response, near = await submitted(w, invoice(30))
    # It proceeds: the agent is told approved, in the lane its confidence chose.
    assert response["status"] == "approved" and near.lane.value == "autonomous"
    assert near.predicted_escalation == pytest.approx(0.607, abs=0.001)
    # And it is prepared: open for review at senior (where medium risk starts, as a
    # predicted escalation would), its card posted there with the agent's context.
    assert near.status is Status.APPROVED and near.review_status is ReviewStatus.OPEN
    assert near.tier == "senior" and near.reasons == ()
    assert [(c.channel, c.tier) for c in await w.repo.cards(near.id)] == [("web", "senior")]
    assert near.context["transaction"] == {"po": "PO-12"}
    routed = [
        r.event for r in await w.repo.audit_records(request_id=near.id) if r.event.event == "routed"
    ]
    assert [e.data.get("prepared") for e in routed] == [True]
    assert [r.id for r in await w.engine.pending_for("web:sam")] == [near.id]
    assert await w.engine.pending_for("web:jan") == []  # junior is below where it went

    _, low = await submitted(w, invoice(5))
    assert low.status is Status.APPROVED and low.review_status is None and low.tier is None
    assert await w.repo.cards(low.id) == []
    _, high = await submitted(w, invoice(50))
    assert high.status is Status.PENDING and high.reasons == ("predicted_escalation",)
    events = [r.event for r in await w.repo.audit_records() if r.event.event == "routed"]
    assert sum(1 for e in events if e.data.get("prepared")) == 1


@pytest.mark.parametrize(
    ("mode", "prediction"),
    [("shadow", {"prepare_margin": 0.2}), ("active", {"prepare_margin": 0.0})],
)
async def test_shadow_mode_or_a_zero_margin_prepares_nothing(
    repo_factory: RepoFactory, mode: str, prediction: dict[str, Any]
) -> None:
    w = await world(repo_factory, mode, **prediction)
    _, near = await submitted(w, invoice(30))
    assert near.status is Status.APPROVED and near.review_status is None
    assert near.predicted_escalation is not None and await w.repo.cards(near.id) == []


async def test_a_standing_approval_leaves_what_the_model_escalates_to_a_person(
    repo_factory: RepoFactory,
) -> None:
    w = await world(repo_factory, "active")
    grant = await w.engine.grant_standing(
        GrantRequest(
            grantor="web:sam",
            agent_id="invoice-bot",
            kind="invoice",
            ttl=timedelta(hours=2),
            max_uses=10,
            reason="ACME invoices",
            when='action.payload.vendor == "ACME"',
        ),
        channel="web",
    )
    response, flagged = await submitted(w, invoice(50))
    assert response["status"] == "pending" and "standing_approval" not in response
    assert flagged.reasons == ("predicted_escalation",) and flagged.votes == ()
    # An unsure agent on a low-scored invoice escalates for its confidence: the grant
    # approves that one as before.
    response, unsure = await submitted(w, invoice(5, confidence=0.3))
    assert response["status"] == "approved" and response["standing_approval"] == grant.id
    assert unsure.reasons == ("low_confidence",)
    stored = await w.repo.standing_approval(grant.id)
    assert stored is not None and stored.uses == 1


async def test_the_reviewers_queue_flags_a_prepared_item(repo_factory: RepoFactory) -> None:
    config = parse_config(
        {
            "agents": [
                {"id": "invoice-bot", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}
            ],
            "tiers": WEB_TIERS,
            "web": {"reviewers": hashes()},
            "routing": {"review_sample_rate": 0.0},
            "prediction": {"mode": "active", "threshold": 0.7, "prepare_margin": 0.2},
        },
        env={},
    )
    repo = await repo_factory()
    stored = await repo.add_model(by_amount(), EVENT)
    await repo.activate_model(stored.version, NOW, EVENT)
    services = await build_services(
        config, repo=repo, clock=ManualClock(NOW), start_scheduler=False
    )
    async with services.stack:
        app = make_app(services)
        headers = {"Authorization": f"Bearer {KEY}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://s", headers=headers
        ) as agent:
            body = {
                "action": {"kind": "invoice", "summary": "Pay ACME", "payload": {"n": 1}},
                "confidence": 0.75,
                "currency": "EUR",
            }
            near = (await agent.post("/v1/requests", json={**body, "amount": 30})).json()
            low = (await agent.post("/v1/requests", json={**body, "amount": 5})).json()
        assert near["status"] == low["status"] == "approved"
        async with as_reviewer(app, "alice") as alice:  # a manager: acts on senior items
            rows = (await alice.get("/")).text.split('data-request-id="')[1:]
        (row,) = rows  # the low-scored item is in nobody's queue
        assert row.startswith(near["id"])
        assert "likely to need you (61%)" in row, row
        assert "check after the fact" in row, row
